"""``/admin/v1``: staff endpoints over the control plane. Parse, check the role, call one service
method, answer — every change is audited by the service under the staff member's name.

Roles: operator (STI) manages partners, contracts, team, keys and suspensions; finance (SAIF)
records fees, budgets, acceptance, fines (imposing and lifting) and approves priced terms;
auditor reads everything, including the audit log, and changes nothing. The routes check the
role early; the services check it again where it depends on the data (lifting a fine, priced
terms on activate/migrate), so the rule holds on every door.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import msgspec
from litestar import Request, Response, Router, delete, get, post
from litestar.datastructures import State
from litestar.params import JSONBody, PathParameter, QueryParameter

from dataflow.api.admin.auth import ROLES_OPT, require_role, staff_guard, staff_of
from dataflow.api.admin.errors import contracts_exception_handlers
from dataflow.api.admin.schemas import (
    MAX_ID,
    AwareDatetime,
    ContactIn,
    ContractIn,
    EventIn,
    KeyIn,
    MemberIn,
    PartnerIn,
    SanctionIn,
    TermsIn,
)
from dataflow.api.errors import Problem
from dataflow.api.routes.common import document_problems
from dataflow.api.state import ApiState
from dataflow.contracts.actors import EVENT_ROLES
from dataflow.contracts.errors import InvalidInput, KeyNotFound
from dataflow.contracts.models import ContractKind, Role, SanctionKind
from dataflow.contracts.reports import usage_csv, usage_report
from dataflow.contracts.service import ContractsService

__all__ = ["EVENT_ROLES", "admin_router"]

T = TypeVar("T")
ANY_STAFF = (Role.OPERATOR, Role.FINANCE, Role.AUDITOR)
OPERATOR = (Role.OPERATOR,)
FINANCE = (Role.FINANCE,)
# contract events and sanctions: the exact role depends on the body, checked once it is decoded
EVENT_DOERS = tuple(r for r in Role if any(r in roles for roles in EVENT_ROLES.values()))
SANCTIONERS = (Role.OPERATOR, Role.FINANCE)
JSON = "application/json"
AUDIT_LIMIT = 10_000  # entries per answer

# Path ids are PostgreSQL integers: out of range is a 400, not a driver overflow (500).
Id = Annotated[int, PathParameter(ge=1, le=MAX_ID)]
KeyId = Annotated[str, PathParameter(min_length=1, max_length=64)]


def _roles(*roles: Role) -> dict[str, Any]:
    """A route's ``opt``: the roles ``staff_guard`` admits, checked before anything is decoded."""
    return {ROLES_OPT: roles}


def _contracts(state: State) -> ContractsService:
    api: ApiState = state.api
    return api.contracts


async def _call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Service calls block on the database: run them off the event loop."""
    return await asyncio.to_thread(fn, *args, **kwargs)


def _json(obj: Any, status: int = 200) -> Response[bytes]:
    return Response(msgspec.json.encode(obj), media_type=JSON, status_code=status)


def _no_hash(obj: msgspec.Struct) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.to_builtins(obj)
    data.pop("secret_hash", None)
    return data


@get("/partners", opt=_roles(*ANY_STAFF))
async def list_partners(request: Request[Any, Any, Any], state: State) -> Response[bytes]:
    service = _contracts(state)
    partners = await _call(service.partners)
    ents = await _call(service.entitlements)
    return _json([{"partner": p, "entitlement": ents.get(p.id)} for p in partners])


@post("/partners", opt=_roles(*OPERATOR))
async def create_partner(
    request: Request[Any, Any, Any], state: State, data: JSONBody[PartnerIn]
) -> Response[bytes]:
    staff = staff_of(request)
    p = await _call(
        _contracts(state).register_partner,
        data.name,
        data.plan,
        cnpj=data.cnpj,
        representative=data.representative,
        email=data.email,
        actor=staff.actor,
    )
    return _json(p, 201)


@get("/partners/{partner_id:int}", opt=_roles(*ANY_STAFF))
async def show_partner(
    request: Request[Any, Any, Any], state: State, partner_id: Id
) -> Response[bytes]:
    service = _contracts(state)

    def load() -> dict[str, Any]:
        return {
            "partner": service.partner(partner_id),
            "entitlement": service.entitlement(partner_id),
            "contacts": service.contacts(partner_id),
            "members": service.members(partner_id, include_removed=True),
            "sanctions": service.sanctions(partner_id),
        }

    return _json(await _call(load))


@post("/partners/{partner_id:int}/contacts", opt=_roles(*OPERATOR))
async def add_contact(
    request: Request[Any, Any, Any],
    state: State,
    partner_id: Id,
    data: JSONBody[ContactIn],
) -> Response[bytes]:
    staff = staff_of(request)
    c = await _call(
        _contracts(state).add_contact,
        partner_id,
        kind=data.kind,
        name=data.name,
        email=data.email,
        phone=data.phone,
        actor=staff.actor,
    )
    return _json(c, 201)


@get("/partners/{partner_id:int}/contracts", opt=_roles(*ANY_STAFF))
async def partner_contracts(
    request: Request[Any, Any, Any], state: State, partner_id: Id
) -> Response[bytes]:
    service = _contracts(state)
    await _call(service.partner, partner_id)  # 404 for an unknown partner
    return _json(await _call(service.contracts, partner_id))


@post("/partners/{partner_id:int}/contracts", opt=_roles(*OPERATOR))
async def create_contract(
    request: Request[Any, Any, Any],
    state: State,
    partner_id: Id,
    data: JSONBody[ContractIn],
) -> Response[bytes]:
    staff = staff_of(request)
    service = _contracts(state)
    if data.kind is ContractKind.SANDBOX:
        if data.start is None or data.end is None:
            raise InvalidInput("window", "a sandbox authorization needs start and end")
        c = await _call(
            service.authorize_sandbox,
            partner_id,
            start=data.start,
            end=data.end,
            modality=data.modality,
            sla=data.sla,
            secrecy_term_accepted=data.secrecy_term_accepted,
            monthly_cap=data.monthly_cap,
            tables=frozenset(data.tables) if data.tables is not None else None,
            rate_per_second=data.rate_per_second,
            rate_per_minute=data.rate_per_minute,
            actor=staff.actor,
        )
    else:
        c = await _call(
            service.request_supply,
            partner_id,
            data.kind,
            sla=data.sla,
            tables=frozenset(data.tables) if data.tables is not None else None,
            rate_per_second=data.rate_per_second,
            rate_per_minute=data.rate_per_minute,
            actor=staff.actor,
        )
    return _json(c, 201)


@get("/contracts/{contract_id:int}", opt=_roles(*ANY_STAFF))
async def show_contract(
    request: Request[Any, Any, Any], state: State, contract_id: Id
) -> Response[bytes]:
    return _json(await _call(_contracts(state).contract, contract_id))


@post("/contracts/{contract_id:int}/events", opt=_roles(*EVENT_DOERS))
async def contract_event(
    request: Request[Any, Any, Any],
    state: State,
    contract_id: Id,
    data: JSONBody[EventIn],
) -> Response[bytes]:
    staff = require_role(request, *EVENT_ROLES[data.event])
    c = await _call(
        _contracts(state).transition,
        contract_id,
        data.event,
        actor=staff.actor,
        budget_ufemg=data.budget_ufemg,
        terms_toml=data.terms_toml,
        new_end=data.new_end,
        reason=data.reason,
    )
    return _json(c)


@post("/contracts/{contract_id:int}/secrecy", opt=_roles(*OPERATOR))
async def contract_secrecy(
    request: Request[Any, Any, Any], state: State, contract_id: Id
) -> Response[bytes]:
    staff = staff_of(request)
    return _json(await _call(_contracts(state).accept_secrecy_term, contract_id, actor=staff.actor))


@get("/budgets/overdue", opt=_roles(Role.FINANCE, Role.OPERATOR))
async def overdue_budgets(request: Request[Any, Any, Any], state: State) -> Response[bytes]:
    return _json(await _call(_contracts(state).overdue_budgets))


@post("/partners/{partner_id:int}/members", opt=_roles(*OPERATOR))
async def add_member(
    request: Request[Any, Any, Any],
    state: State,
    partner_id: Id,
    data: JSONBody[MemberIn],
) -> Response[bytes]:
    staff = staff_of(request)
    m = await _call(
        _contracts(state).add_member, partner_id, data.name, email=data.email, actor=staff.actor
    )
    return _json(m, 201)


@delete("/members/{member_id:int}", status_code=200, opt=_roles(*OPERATOR))
async def remove_member(
    request: Request[Any, Any, Any], state: State, member_id: Id
) -> Response[bytes]:
    staff = staff_of(request)
    revoked = await _call(_contracts(state).remove_member, member_id, actor=staff.actor)
    return _json({"member_id": member_id, "revoked_keys": revoked})


@get("/partners/{partner_id:int}/keys", opt=_roles(Role.OPERATOR, Role.AUDITOR))
async def list_keys(
    request: Request[Any, Any, Any], state: State, partner_id: Id
) -> Response[bytes]:
    keys = await _call(_contracts(state).keys, partner_id)
    return _json([_no_hash(k) for k in keys])


@post("/partners/{partner_id:int}/keys", opt=_roles(*OPERATOR))
async def create_key(
    request: Request[Any, Any, Any], state: State, partner_id: Id, data: JSONBody[KeyIn]
) -> Response[bytes]:
    staff = staff_of(request)
    key = await _call(
        _contracts(state).create_key,
        partner_id,
        member_id=data.member_id,
        tables=frozenset(data.tables) if data.tables is not None else None,
        actor=staff.actor,
    )
    return _json({"key": key, "note": "shown once; only its hash is stored"}, 201)


@post("/keys/{key_id:str}/revoke", opt=_roles(*OPERATOR))
async def revoke_key(
    request: Request[Any, Any, Any], state: State, key_id: KeyId
) -> Response[bytes]:
    staff = staff_of(request)
    if not await _call(_contracts(state).revoke_key, key_id, actor=staff.actor):
        raise KeyNotFound(key_id)
    return _json({"key_id": key_id, "revoked": True})


@post("/keys/{key_id:str}/rotate", opt=_roles(*OPERATOR))
async def rotate_key(
    request: Request[Any, Any, Any], state: State, key_id: KeyId
) -> Response[bytes]:
    staff = staff_of(request)
    key = await _call(_contracts(state).rotate_key, key_id, actor=staff.actor)
    return _json({"key": key, "replaces": key_id}, 201)


@get("/sanctions", opt=_roles(*ANY_STAFF))
async def list_sanctions(request: Request[Any, Any, Any], state: State) -> Response[bytes]:
    return _json(await _call(_contracts(state).sanctions))


@post("/partners/{partner_id:int}/sanctions", opt=_roles(*SANCTIONERS))
async def impose_sanction(
    request: Request[Any, Any, Any],
    state: State,
    partner_id: Id,
    data: JSONBody[SanctionIn],
) -> Response[bytes]:
    roles = FINANCE if data.kind is SanctionKind.FINE else OPERATOR
    staff = require_role(request, *roles)
    service = _contracts(state)
    if data.kind is SanctionKind.WARNING:
        s = await _call(service.warn, partner_id, data.reason, actor=staff.actor)
    elif data.kind is SanctionKind.SUSPENSION:
        s = await _call(
            service.suspend,
            partner_id,
            data.reason,
            until=data.until,
            days=data.days,
            actor=staff.actor,
        )
    else:
        s = await _call(
            service.fine,
            partner_id,
            data.reason,
            data.amount_ufemg,
            percent=data.percent,
            month=data.month,
            actor=staff.actor,
        )
    return _json(s, 201)


@post("/sanctions/{sanction_id:int}/lift", opt=_roles(Role.OPERATOR, Role.FINANCE))
async def lift_sanction(
    request: Request[Any, Any, Any], state: State, sanction_id: Id
) -> Response[bytes]:
    # which role may lift depends on the sanction (fines are finance's): the service decides
    staff = staff_of(request)
    return _json(await _call(_contracts(state).lift, sanction_id, actor=staff.actor))


@post("/contracts/{contract_id:int}/approved-terms", opt=_roles(*FINANCE))
async def approve_terms(
    request: Request[Any, Any, Any],
    state: State,
    contract_id: Id,
    data: JSONBody[TermsIn],
) -> Response[bytes]:
    staff = staff_of(request)
    return _json(
        await _call(
            _contracts(state).approve_terms, contract_id, data.terms_toml, actor=staff.actor
        )
    )


@get("/audit", opt=_roles(Role.AUDITOR))
async def audit_log(
    state: State,
    partner_id: Annotated[int | None, QueryParameter(ge=1, le=MAX_ID)] = None,
    entity: Annotated[str | None, QueryParameter(max_length=64)] = None,
    action: Annotated[str | None, QueryParameter(max_length=64)] = None,
    since: Annotated[
        AwareDatetime | None,
        QueryParameter(
            description="RFC 3339 instant with its offset, e.g. 2026-01-01T00:00:00-03:00"
        ),
    ] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=AUDIT_LIMIT)] = 200,
) -> Response[bytes]:
    if since is not None and since.tzinfo is None:  # Litestar drops the type's tz constraint
        raise Problem(
            400,
            "invalid-request",
            "Invalid request",
            "since: an instant needs its offset (…Z or …-03:00); a bare date-time is ambiguous",
            parameter="since",
        )
    entries = await _call(
        _contracts(state).audit,
        partner_id=partner_id,
        entity=entity,
        action=action,
        since=since,
        limit=limit,
    )
    return _json(entries)


@get("/partners/{partner_id:int}/usage.csv", opt=_roles(*ANY_STAFF))
async def usage_report_csv(
    request: Request[Any, Any, Any], state: State, partner_id: Id
) -> Response[bytes]:
    rows = await _call(usage_report, _contracts(state), partner_id)
    return Response(usage_csv(rows).encode(), media_type="text/csv")


@get("/partners/{partner_id:int}/usage.png", opt=_roles(*ANY_STAFF))
async def usage_report_png(
    request: Request[Any, Any, Any], state: State, partner_id: Id
) -> Response[bytes]:
    service = _contracts(state)
    partner = await _call(service.partner, partner_id)
    rows = await _call(usage_report, service, partner_id)
    api: ApiState = state.api  # drawn on the charts' own thread (staff reports: not cached)
    png = await api.charts.render(rows, f"{partner.name}: monthly data accesses")
    return Response(png, media_type="image/png")


admin_router = Router(
    path="/admin/v1",
    route_handlers=document_problems(
        [
            list_partners,
            create_partner,
            show_partner,
            add_contact,
            partner_contracts,
            create_contract,
            show_contract,
            contract_event,
            contract_secrecy,
            approve_terms,
            overdue_budgets,
            add_member,
            remove_member,
            list_keys,
            create_key,
            revoke_key,
            rotate_key,
            list_sanctions,
            impose_sanction,
            lift_sanction,
            audit_log,
            usage_report_csv,
            usage_report_png,
        ],
        400,
        401,
        403,
        404,
        409,
        422,
    ),
    guards=[staff_guard],  # before any parameter or body is decoded
    exception_handlers=contracts_exception_handlers,
)

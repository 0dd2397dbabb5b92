"""`dataflow partner|contract|member|key|sanction|audit|report|staff …`: the operators' CLI.

Every command runs migrations first (the service does) and writes the audit log as
``cli:<user>`` (or the staff member ``DATAFLOW_STAFF_TOKEN`` names). Ids are printed last so
scripts can capture them. The module runs to ~670 lines because every lifecycle event is its own
command declaring only its own options (STYLE: a command's help is its manual).
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any

import msgspec
import typer

from dataflow.contracts.actors import Actor
from dataflow.contracts.errors import ContractsError
from dataflow.contracts.lifecycle import EndReason, Event
from dataflow.contracts.models import ContractKind, Plan, Role
from dataflow.contracts.repository import make_engine
from dataflow.contracts.service import ContractsService
from dataflow.contracts.terms import ContractTerms
from dataflow.settings import Settings

__all__ = [
    "audit_app",
    "cli_actor",
    "contract_app",
    "db_app",
    "key_app",
    "member_app",
    "partner_app",
    "report_app",
    "sanction_app",
    "staff_app",
]

partner_app = typer.Typer(help="Partners (data recipients).", no_args_is_help=True)
contract_app = typer.Typer(
    help="Paid supply requests/contracts and sandbox authorizations (lifecycle).",
    no_args_is_help=True,
)
member_app = typer.Typer(
    help="The authorized team of a partner (Art. 35 I e).", no_args_is_help=True
)
key_app = typer.Typer(help="API keys (held by team members).", no_args_is_help=True)
sanction_app = typer.Typer(help="Sanctions (Art. 45).", no_args_is_help=True)
audit_app = typer.Typer(help="The append-only audit log.", no_args_is_help=True)
report_app = typer.Typer(help="Monitoring reports (Art. 38–39).", no_args_is_help=True)
staff_app = typer.Typer(help="Staff credentials for the admin/finance API.", no_args_is_help=True)


def _service(ctx: typer.Context) -> ContractsService:
    settings: Settings = ctx.obj
    return ContractsService(make_engine(settings.database_url))


def cli_actor(settings: Settings, service: ContractsService) -> Actor:
    """Who runs this command: the staff member ``DATAFLOW_STAFF_TOKEN`` proves, else an operator.

    The CLI works on the database directly, so whoever runs it is trusted as an operator (STI),
    the CLI's everyday user, and recorded as ``cli:<login>``. Finance actions (fees, budgets,
    priced terms, fines, billing) need a finance credential in ``DATAFLOW_STAFF_TOKEN``; the
    audit log then names that person and the login (``staff:Ana(finance) via cli:root``).
    """
    login = f"cli:{getpass.getuser()}"
    if not settings.staff_token:
        return Actor(login, Role.OPERATOR)
    cred = service.staff_by_token(settings.staff_token)
    if cred is None:
        typer.echo(
            "error: DATAFLOW_STAFF_TOKEN is not an active staff credential (expected a dfa_… "
            "token from `dataflow staff create`); unset it to act as an operator",
            err=True,
        )
        raise typer.Exit(1)
    return Actor(f"staff:{cred.name}({cred.role}) via {login}", cred.role)


def _actor(ctx: typer.Context) -> Actor:
    settings: Settings = ctx.obj
    return cli_actor(settings, ContractsService(make_engine(settings.database_url), migrate=False))


@contextmanager
def _errors() -> Iterator[None]:
    """Domain errors end the command with their message and exit code 1."""
    try:
        yield
    except ContractsError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None


def _json(obj: Any) -> None:
    typer.echo(msgspec.json.encode(obj).decode())


def _tables(value: str | None) -> frozenset[str] | None:
    return None if not value else frozenset(t.strip() for t in value.split(",") if t.strip())


# -- partners ---------------------------------------------------------------------------------


@partner_app.command("create")
def partner_create(
    ctx: typer.Context,
    name: str,
    plan: Annotated[Plan, typer.Option(help="sandbox (price waived) or continuous (paid).")],
    cap: Annotated[int | None, typer.Option(help="Monthly access cap.", min=0)] = None,
    contract: Annotated[
        Path | None, typer.Option(help="Contract terms (TOML).", exists=True, dir_okay=False)
    ] = None,
    cnpj: Annotated[str | None, typer.Option(help="CNPJ (numeric or alphanumeric).")] = None,
    start: Annotated[
        datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Sandbox: first day (today).")
    ] = None,
    end: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="Sandbox: last day (12 months; Art. 36)."),
    ] = None,
    representative: Annotated[
        str | None, typer.Option(help="Legal representative: first member, signs the secrecy term.")
    ] = None,
) -> None:
    """Register a partner with its contract in force at once; its id is printed last.

    A sandbox goes through `contract authorize`'s guards: ≤ 12 months (Art. 36), the secrecy
    term signed by the representative, a team member (Art. 35). Priced terms (--contract for
    continuous) need a finance credential in DATAFLOW_STAFF_TOKEN.
    """
    toml = contract.read_text(encoding="utf-8") if contract is not None else None
    with _errors():
        partner = _service(ctx).create_partner(
            name,
            plan,
            monthly_cap=cap,
            contract_toml=toml,
            cnpj=cnpj,
            start=start.date() if start else None,
            end=end.date() if end else None,
            representative=representative,
            actor=_actor(ctx),
        )
    if toml is not None:  # flagged at creation, never blocking (e.g. franchise under the floor)
        for warning in ContractTerms.from_toml(toml, source=str(contract)).warnings():
            typer.echo(f"warning: {warning}", err=True)
    typer.echo(f"partner {partner.name!r} ({partner.plan}) created with id:", err=True)
    typer.echo(str(partner.id))


@partner_app.command("register")
def partner_register(
    ctx: typer.Context,
    name: str,
    plan: Annotated[Plan, typer.Option(help="Intended plan.")],
    cnpj: Annotated[str | None, typer.Option(help="CNPJ (numeric or alphanumeric).")] = None,
    representative: Annotated[str | None, typer.Option(help="Legal representative.")] = None,
    email: Annotated[str | None, typer.Option(help="Representative's e-mail.")] = None,
) -> None:
    """Register a partner with no contract yet (then `contract request` or `contract authorize`)."""
    with _errors():
        p = _service(ctx).register_partner(
            name, plan, cnpj=cnpj, representative=representative, email=email, actor=_actor(ctx)
        )
    typer.echo(f"partner {p.name!r} registered (no data until a contract is in force):", err=True)
    typer.echo(str(p.id))


@partner_app.command("list")
def partner_list(ctx: typer.Context) -> None:
    """Partners with their current status, one JSON object a line."""
    service = _service(ctx)
    ents = service.entitlements()
    for p in service.partners():
        e = ents[p.id]
        _json(
            {
                "id": p.id,
                "name": p.name,
                "cnpj": p.cnpj,
                "plan": p.plan,
                "status": e.status,
                "reason": e.status_reason,
                "cap": e.monthly_cap,
            }
        )


@partner_app.command("show")
def partner_show(ctx: typer.Context, partner: int) -> None:
    """A partner, its contracts, team, keys (ids only), sanctions and entitlement as JSON."""
    service = _service(ctx)
    with _errors():
        _json(
            {
                "partner": service.partner(partner),
                "entitlement": service.entitlement(partner),
                "contracts": service.contracts(partner),
                "contacts": service.contacts(partner),
                "members": service.members(partner, include_removed=True),
                "keys": [
                    {"key_id": k.key_id, "member_id": k.member_id, "revoked_at": k.revoked_at}
                    for k in service.keys(partner)
                ],
                "sanctions": service.sanctions(partner),
            }
        )


@partner_app.command("contact")
def partner_contact(
    ctx: typer.Context,
    partner: int,
    name: str,
    kind: Annotated[str, typer.Option(help="legal, technical or billing.")] = "technical",
    email: Annotated[str | None, typer.Option()] = None,
    phone: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Add a contact person."""
    with _errors():
        c = _service(ctx).add_contact(
            partner, kind=kind, name=name, email=email, phone=phone, actor=_actor(ctx)
        )
    typer.echo(str(c.id))


@partner_app.command("suspend")
def partner_suspend(
    ctx: typer.Context,
    partner: int,
    reason: Annotated[str, typer.Option(help="CGMD-SEF deliberation or motive.")],
    days: Annotated[float | None, typer.Option(help="Length; access resumes by itself.")] = None,
) -> None:
    """Suspend supply (Art. 45 II); takes effect on every API worker within seconds."""
    with _errors():
        s = _service(ctx).suspend(partner, reason, days=days, actor=_actor(ctx))
    until = s.until.isoformat() if s.until else "lifted"
    typer.echo(f"partner {partner} suspended until {until} (sanction id below)", err=True)
    typer.echo(str(s.id))


@partner_app.command("resume")
def partner_resume(ctx: typer.Context, partner: int) -> None:
    """Lift every suspension of the partner that is in force."""
    service = _service(ctx)
    now = datetime.now(UTC)
    with _errors():
        lifted = [
            service.lift(s.id, actor=_actor(ctx)).id
            for s in service.sanctions(partner)
            if s.kind == "suspension" and s.lifted_at is None and (s.until is None or s.until > now)
        ]
    typer.echo(f"lifted sanctions: {lifted or 'none in force'}")


@partner_app.command("warn")
def partner_warn(ctx: typer.Context, partner: int, reason: Annotated[str, typer.Option()]) -> None:
    """Record a warning (Art. 45 I)."""
    with _errors():
        typer.echo(str(_service(ctx).warn(partner, reason, actor=_actor(ctx)).id))


@partner_app.command("fine")
def partner_fine(
    ctx: typer.Context,
    partner: int,
    reason: Annotated[str, typer.Option()],
    amount: Annotated[
        str | None, typer.Option(help="Amount in UFEMG, e.g. 500 or 123.4567.")
    ] = None,
    percent: Annotated[str | None, typer.Option(help="% of the month's supply value.")] = None,
    month: Annotated[
        str | None, typer.Option(help="First invoice month that bills it (default: this one).")
    ] = None,
) -> None:
    """Impose a fine (Art. 45 III; finance): billing puts it on the next invoice it drafts."""
    with _errors():
        fine = _service(ctx).fine(
            partner, reason, amount, percent=percent, month=month, actor=_actor(ctx)
        )
    typer.echo(str(fine.id))


# -- contracts --------------------------------------------------------------------------------


@contract_app.command("request")
def contract_request(
    ctx: typer.Context,
    partner: int,
    kind: Annotated[ContractKind, typer.Option(help="continuous or on_demand (Art. 8).")],
    sla: Annotated[str | None, typer.Option(help="Service level agreement.")] = None,
) -> None:
    """Open a paid supply request; it waits for the analysis fee (Art. 9). Id printed last."""
    with _errors():
        c = _service(ctx).request_supply(partner, kind, sla=sla, actor=_actor(ctx))
    typer.echo(str(c.id))


@contract_app.command("authorize")
def contract_authorize(
    ctx: typer.Context,
    partner: int,
    start: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="First day.")],
    end: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="Last day (≤ 12 months).")],
    cap: Annotated[int | None, typer.Option(help="Monthly access cap (Art. 37).", min=0)] = None,
    modality: Annotated[ContractKind, typer.Option()] = ContractKind.CONTINUOUS,
    sla: Annotated[str | None, typer.Option()] = None,
    tables: Annotated[str | None, typer.Option(help="Comma-separated table ids.")] = None,
    secrecy_accepted: Annotated[
        bool, typer.Option(help="The secrecy/LGPD commitment is signed.")
    ] = False,
    rate_per_second: Annotated[int | None, typer.Option(min=1)] = None,
    rate_per_minute: Annotated[int | None, typer.Option(min=1)] = None,
) -> None:
    """Authorize sandbox participation (Art. 35); activate it with `contract activate`."""
    with _errors():
        c = _service(ctx).authorize_sandbox(
            partner,
            start=start.date(),
            end=end.date(),
            modality=modality,
            sla=sla,
            secrecy_term_accepted=secrecy_accepted,
            monthly_cap=cap,
            tables=_tables(tables),
            rate_per_second=rate_per_second,
            rate_per_minute=rate_per_minute,
            actor=_actor(ctx),
        )
    typer.echo(str(c.id))


def _transition(ctx: typer.Context, contract: int, event: Event, **facts: Any) -> None:
    with _errors():
        c = _service(ctx).transition(contract, event, actor=_actor(ctx), **facts)
    typer.echo(f"contract {c.id} is now {c.state}")


def _read_terms(path: Path | None) -> str | None:
    return path.read_text(encoding="utf-8") if path else None


TermsFile = Annotated[
    Path | None, typer.Option(help="Contract terms (TOML).", exists=True, dir_okay=False)
]


# Each event command declares only the options its event uses, so its help is its manual.
@contract_app.command("pay-fee")
def contract_pay_fee(ctx: typer.Context, contract: int) -> None:
    """Record the paid analysis fee DAE (Art. 9); starts the budget deadline."""
    _transition(ctx, contract, Event.PAY_FEE)


@contract_app.command("issue-budget")
def contract_issue_budget(
    ctx: typer.Context,
    contract: int,
    budget: Annotated[str | None, typer.Option(help="Budget in UFEMG.")] = None,
) -> None:
    """Issue the budget (--budget UFEMG; Art. 12/13)."""
    _transition(ctx, contract, Event.ISSUE_BUDGET, budget_ufemg=budget)


@contract_app.command("accept")
def contract_accept(ctx: typer.Context, contract: int) -> None:
    """Record acceptance and payment of the budget (Art. 14)."""
    _transition(ctx, contract, Event.ACCEPT)


@contract_app.command("activate")
def contract_activate(ctx: typer.Context, contract: int, terms: TermsFile = None) -> None:
    """Put the contract (--terms for continuous) or authorization in force."""
    _transition(ctx, contract, Event.ACTIVATE, terms_toml=_read_terms(terms))


@contract_app.command("extend")
def contract_extend(
    ctx: typer.Context,
    contract: int,
    new_end: Annotated[
        datetime | None, typer.Option(formats=["%Y-%m-%d"], help="New last day.")
    ] = None,
) -> None:
    """Extend a sandbox authorization (--new-end; 18 months at most)."""
    _transition(ctx, contract, Event.EXTEND, new_end=new_end.date() if new_end else None)


@contract_app.command("suspend")
def contract_suspend(ctx: typer.Context, contract: int) -> None:
    """Suspend the contract or authorization (Art. 41)."""
    _transition(ctx, contract, Event.SUSPEND)


@contract_app.command("resume")
def contract_resume(ctx: typer.Context, contract: int) -> None:
    """Resume a suspended contract or authorization."""
    _transition(ctx, contract, Event.RESUME)


@contract_app.command("end")
def contract_end(
    ctx: typer.Context,
    contract: int,
    reason: Annotated[EndReason | None, typer.Option(help="Why it ends.")] = None,
) -> None:
    """End it (--reason expiry|request for sandbox, term for paid)."""
    _transition(ctx, contract, Event.END, reason=reason)


@contract_app.command("migrate")
def contract_migrate(ctx: typer.Context, contract: int, terms: TermsFile = None) -> None:
    """Migrate a sandbox to paid supply (--terms; Art. 40 III)."""
    _transition(ctx, contract, Event.MIGRATE, terms_toml=_read_terms(terms))


@contract_app.command("cancel")
def contract_cancel(ctx: typer.Context, contract: int) -> None:
    """Cancel (Art. 41) or withdraw a request."""
    _transition(ctx, contract, Event.CANCEL)


@contract_app.command("secrecy")
def contract_secrecy(
    ctx: typer.Context,
    contract: int,
    signed_by: Annotated[str | None, typer.Option(help="Who signed it for the partner.")] = None,
) -> None:
    """Record the signed secrecy/LGPD commitment (Art. 35 I f)."""
    with _errors():
        _service(ctx).accept_secrecy_term(contract, signed_by=signed_by, actor=_actor(ctx))
    typer.echo(f"contract {contract}: secrecy term accepted")


@contract_app.command("approve-terms")
def contract_approve_terms(
    ctx: typer.Context,
    contract: int,
    terms: Annotated[
        Path, typer.Option(help="Contract terms (TOML).", exists=True, dir_okay=False)
    ],
) -> None:
    """Finance's sign-off on priced terms: an operator may then activate/migrate with them."""
    with _errors():
        _service(ctx).approve_terms(contract, terms.read_text(encoding="utf-8"), actor=_actor(ctx))
    typer.echo(f"contract {contract}: terms approved")


@contract_app.command("list")
def contract_list(ctx: typer.Context, partner: int | None = None) -> None:
    """Contracts, one JSON object a line."""
    for c in _service(ctx).contracts(partner):
        _json(c)


@contract_app.command("overdue")
def contract_overdue(ctx: typer.Context) -> None:
    """Requests whose budget is late (30 days on demand, 60 continuous); exit 1 if any."""
    late = _service(ctx).overdue_budgets()
    for c in late:
        _json({"contract": c.id, "partner": c.partner_id, "kind": c.kind, "due": c.budget_due})
    if late:
        raise typer.Exit(1)


@contract_app.command("sweep")
def contract_sweep(ctx: typer.Context) -> None:
    """End sandbox authorizations whose window has passed (Art. 40 I)."""
    ended = _service(ctx).sweep(actor=_actor(ctx))
    typer.echo(f"ended {len(ended)} expired authorization(s): {[c.id for c in ended]}")


# -- team and keys ----------------------------------------------------------------------------


@member_app.command("add")
def member_add(
    ctx: typer.Context, partner: int, name: str, email: Annotated[str | None, typer.Option()] = None
) -> None:
    """Credential a new member of the authorized team; the member id is printed last."""
    with _errors():
        m = _service(ctx).add_member(partner, name, email=email, actor=_actor(ctx))
    typer.echo(str(m.id))


@member_app.command("remove")
def member_remove(ctx: typer.Context, member: int) -> None:
    """Remove a member from the team; every key they hold is revoked."""
    with _errors():
        revoked = _service(ctx).remove_member(member, actor=_actor(ctx))
    typer.echo(f"member {member} removed; revoked keys: {revoked}")


@member_app.command("set-password")
def member_set_password(
    ctx: typer.Context,
    member: int,
    stdin: Annotated[
        bool, typer.Option("--stdin", help="Read the password from standard input (scripts).")
    ] = False,
) -> None:
    """Set a member's console password (their login is their e-mail; never their API key)."""
    import sys

    if stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    with _errors():
        _service(ctx).set_member_password(member, password, actor=_actor(ctx))
    typer.echo(f"member {member}: console password set")


@member_app.command("invite")
def member_invite(ctx: typer.Context, member: int) -> None:
    """A one-time console invitation (7 days) to set a password; its path is printed last."""
    with _errors():
        token = _service(ctx).invite_member(member, actor=_actor(ctx))
    typer.echo(f"/console/convite?token={token}")


@member_app.command("list")
def member_list(ctx: typer.Context, partner: int) -> None:
    with _errors():
        for m in _service(ctx).members(partner, include_removed=True):
            _json(m)


@key_app.command("create")
def key_create(
    ctx: typer.Context,
    partner: int,
    member: Annotated[int | None, typer.Option(help="Team member (default: the only one).")] = None,
    tables: Annotated[str | None, typer.Option(help="Restrict to these table ids.")] = None,
) -> None:
    """Create an API key for PARTNER; the key is printed last, and only this once."""
    with _errors():
        key = _service(ctx).create_key(
            partner, member_id=member, tables=_tables(tables), actor=_actor(ctx)
        )
    typer.echo("new API key (store it now: it is not shown again):", err=True)
    typer.echo(key)


@key_app.command("revoke")
def key_revoke(ctx: typer.Context, key_id: str) -> None:
    """Revoke a key by its id (the 16 hex characters after 'df_')."""
    if not _service(ctx).revoke_key(key_id, actor=_actor(ctx)):
        typer.echo(f"error: no active key {key_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {key_id}")


@key_app.command("rotate")
def key_rotate(ctx: typer.Context, key_id: str) -> None:
    """Replace a key (same member and scope); the old one stops working. New key printed last."""
    with _errors():
        key = _service(ctx).rotate_key(key_id, actor=_actor(ctx))
    typer.echo(f"{key_id} revoked; new API key (store it now):", err=True)
    typer.echo(key)


@key_app.command("list")
def key_list(ctx: typer.Context, partner: int) -> None:
    """Key ids and their state (never the secret)."""
    with _errors():
        for k in _service(ctx).keys(partner):
            data = msgspec.to_builtins(k)
            data.pop("secret_hash")
            _json(data)


# -- sanctions, audit, reports, staff ---------------------------------------------------------


@sanction_app.command("list")
def sanction_list(ctx: typer.Context, partner: int | None = None) -> None:
    for s in _service(ctx).sanctions(partner):
        _json(s)


@sanction_app.command("lift")
def sanction_lift(ctx: typer.Context, sanction: int) -> None:
    """Lift a sanction (a suspension ends at once)."""
    with _errors():
        _service(ctx).lift(sanction, actor=_actor(ctx))
    typer.echo(f"sanction {sanction} lifted")


@audit_app.command("list")
def audit_list(
    ctx: typer.Context,
    partner: int | None = None,
    entity: Annotated[str | None, typer.Option(help="partner, contract, member, key, …")] = None,
    action: Annotated[str | None, typer.Option(help="e.g. sanction.suspension")] = None,
    since: Annotated[datetime | None, typer.Option(help="ISO date or time (UTC).")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 200,
) -> None:
    """Audit entries (who, when, what, before/after), oldest first, one JSON object a line."""
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    for e in _service(ctx).audit(
        partner_id=partner, entity=entity, action=action, since=since, limit=limit
    ):
        _json(e)


@report_app.command("usage")
def report_usage(
    ctx: typer.Context,
    partner: int,
    out: Annotated[Path, typer.Option(help="Directory for the CSV and PNG.")] = Path(),
) -> None:
    """Monthly usage vs cap and window (Art. 38–39) as CSV and a PNG chart."""
    from dataflow.contracts.reports import usage_chart_png, usage_csv, usage_report

    service = _service(ctx)
    with _errors():
        p = service.partner(partner)
        rows = usage_report(service, partner)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"usage-{partner}-{date.today().isoformat()}"
    (out / f"{stem}.csv").write_text(usage_csv(rows), encoding="utf-8")
    (out / f"{stem}.png").write_bytes(usage_chart_png(rows, f"{p.name}: monthly data accesses"))
    typer.echo(f"{len(rows)} month(s) for partner {partner}: {out / stem}.csv and .png")


@staff_app.command("create")
def staff_create(
    ctx: typer.Context, name: str, role: Annotated[Role, typer.Option(help="Staff role.")]
) -> None:
    """Create an admin/finance API credential; the token is printed last, only this once."""
    token = _service(ctx).create_staff(name, role, actor=_actor(ctx))
    typer.echo(f"{role} credential for {name} (store it now):", err=True)
    typer.echo(token)


@staff_app.command("revoke")
def staff_revoke(ctx: typer.Context, key_id: str) -> None:
    if not _service(ctx).revoke_staff(key_id, actor=_actor(ctx)):
        typer.echo(f"error: no active staff credential {key_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {key_id}")


# -- database schema --------------------------------------------------------------------------

db_app = typer.Typer(help="The control-plane database schema (Alembic).", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Bring the database to the newest revision (every command does this on start-up), as
    DATAFLOW_MIGRATION_DATABASE_URL (the schema owner) when it is set."""
    from dataflow.contracts.schema import ensure_schema

    settings: Settings = ctx.obj
    ensure_schema(make_engine(settings.owner_database_url))
    typer.echo("database at head")


@db_app.command("grant-app-role")
def db_grant_app_role(
    ctx: typer.Context,
    role: str,
    sql: Annotated[bool, typer.Option("--sql", help="Print the statements, run nothing.")] = False,
) -> None:
    """Make ROLE the app's least-privilege PostgreSQL role: no ownership, and on audit_log only
    SELECT and INSERT. Runs as DATAFLOW_MIGRATION_DATABASE_URL (the schema owner) when set; rerun
    after each `db upgrade`. The app then connects as ROLE (DATAFLOW_DATABASE_URL)."""
    from dataflow.contracts.privileges import app_role_grants, grant_app_role
    from dataflow.contracts.schema import ensure_schema

    settings: Settings = ctx.obj
    engine = make_engine(settings.owner_database_url)
    with _errors():
        ensure_schema(engine)
        if sql:
            with engine.connect() as conn:
                statements = app_role_grants(conn, role)
        else:
            statements = grant_app_role(engine, role)
    typer.echo("\n".join(f"{s};" for s in statements))
    if not sql:
        typer.echo(f"granted: {role} is the app's role (no UPDATE/DELETE/TRUNCATE on audit_log)")


@db_app.command("check")
def db_check(ctx: typer.Context) -> None:
    """Exit 1 if the tables in code and the migrated database differ (a revision is missing)."""
    from dataflow.contracts.schema import ensure_schema, schema_diff

    settings: Settings = ctx.obj
    engine = make_engine(settings.owner_database_url)
    ensure_schema(engine)
    diff = schema_diff(engine)
    for change in diff:
        typer.echo(repr(change))
    if diff:
        typer.echo("error: add a revision (`dataflow db revision -m WHY`)", err=True)
        raise typer.Exit(1)
    typer.echo("migrations match the tables")


@db_app.command("revision")
def db_revision(
    ctx: typer.Context, message: Annotated[str, typer.Option("-m", "--message")]
) -> None:
    """Autogenerate a revision from the difference between the tables and the database."""
    from alembic import command

    from dataflow.contracts.schema import alembic_config, ensure_schema

    settings: Settings = ctx.obj
    engine = make_engine(settings.owner_database_url)
    ensure_schema(engine)
    with engine.begin() as conn:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.revision(cfg, message=message, autogenerate=True)

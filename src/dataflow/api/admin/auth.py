"""Staff authentication: ``dfa_`` credentials with a role, never partner keys.

Like the partner KeyRing, credentials are a snapshot refreshed every ``refresh_seconds``, so a
revoked credential stops working within that time on every worker.

``staff_guard`` runs on every admin route as a Litestar guard, and guards run before path and
query parameters and bodies are decoded: a caller who is not staff, or whose role the route does
not admit (``opt["roles"]``), is refused before anything it sent is parsed. Routes whose role
depends on the body (contract events, sanctions) admit the union and check the exact role with
``require_role`` once the body is decoded.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.handlers import BaseRouteHandler

from dataflow.api.errors import Problem
from dataflow.api.state import ApiState
from dataflow.contracts.actors import Actor
from dataflow.contracts.keys import STAFF_PREFIX, parse_key, secret_matches
from dataflow.contracts.models import Role, StaffCredential
from dataflow.contracts.service import ContractsService

__all__ = ["ROLES_OPT", "Staff", "StaffRing", "require_role", "staff_guard", "staff_of"]

ROLES_OPT = "roles"  # a route's ``opt`` entry: the roles it admits
_STAFF_KEY = "dataflow.staff"  # scope entry: who the guard authenticated


@dataclass(frozen=True, slots=True)
class Staff:
    key_id: str
    name: str
    role: Role

    @property
    def actor(self) -> Actor:
        """This person as the services see them: the audit log's name and their role."""
        return Actor(f"staff:{self.name}({self.role})", self.role)


class StaffRing:
    def __init__(self, contracts: ContractsService, *, refresh_seconds: float = 2.0) -> None:
        self._contracts = contracts
        self._refresh = refresh_seconds
        self._creds: dict[str, StaffCredential] = {}
        self._loaded_at = float("-inf")
        self._lock = asyncio.Lock()

    async def _ensure_fresh(self) -> None:
        if time.monotonic() - self._loaded_at < self._refresh:
            return
        async with self._lock:
            if time.monotonic() - self._loaded_at < self._refresh:
                return
            creds = await asyncio.to_thread(self._contracts.staff_credentials)
            self._creds = {c.key_id: c for c in creds}
            self._loaded_at = time.monotonic()

    async def authenticate(self, connection: ASGIConnection[Any, Any, Any, Any]) -> Staff:
        scheme, _, token = connection.headers.get("authorization", "").partition(" ")
        parsed = parse_key(token.strip(), STAFF_PREFIX) if scheme.lower() == "bearer" else None
        await self._ensure_fresh()
        cred = self._creds.get(parsed[0]) if parsed else None
        if parsed is None or cred is None or not secret_matches(parsed[1], cred.secret_hash):
            raise Problem(
                401,
                "staff-unauthenticated",
                "Staff credential required",
                "the admin API takes a staff credential ('Authorization: Bearer dfa_…'); "
                "partner API keys are not accepted here",
                headers={"WWW-Authenticate": 'Bearer realm="dataflow-admin"'},
            )
        return Staff(key_id=cred.key_id, name=cred.name, role=cred.role)


def _ring(state: State) -> StaffRing:
    ring: StaffRing | None = state.get("staff_ring")
    if ring is None:  # one per worker, built on first use from the app's services
        api: ApiState = state.api
        ring = StaffRing(api.contracts)
        state.staff_ring = ring
    return ring


def _check(staff: Staff, method: str, path: str, roles: tuple[Role, ...]) -> None:
    if staff.role not in roles:
        allowed = ", ".join(r.value for r in roles) or "(none: the route declares no roles)"
        raise Problem(
            403,
            "role-forbidden",
            "Not allowed for your role",
            f"{method} {path} needs the role {allowed}; you are {staff.role}",
            role=staff.role.value,
        )


async def staff_guard(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Authenticate the staff member and check the route's roles (none declared: nobody)."""
    staff = await _ring(connection.app.state).authenticate(connection)
    roles: tuple[Role, ...] = tuple(handler.opt.get(ROLES_OPT, ()))
    _check(staff, str(connection.scope.get("method", "")), connection.url.path, roles)
    connection.scope[_STAFF_KEY] = staff  # type: ignore[literal-required]


def staff_of(request: Request[Any, Any, Any]) -> Staff:
    """The staff member ``staff_guard`` authenticated for this request."""
    staff: Staff = request.scope[_STAFF_KEY]  # type: ignore[literal-required]
    return staff


def require_role(request: Request[Any, Any, Any], *roles: Role) -> Staff:
    """The authenticated staff member, if their role is one of ``roles`` (known only once the
    body is decoded); else 403."""
    staff = staff_of(request)
    _check(staff, request.method, request.url.path, roles)
    return staff

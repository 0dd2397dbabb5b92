"""Staff authentication: ``dfa_`` credentials with a role, never partner keys.

Like the partner KeyRing, credentials are a snapshot refreshed every ``refresh_seconds``, so a
revoked credential stops working within that time on every worker.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.datastructures import State

from dataflow.api.errors import Problem
from dataflow.api.state import ApiState
from dataflow.contracts.actors import Actor
from dataflow.contracts.keys import STAFF_PREFIX, parse_key, secret_matches
from dataflow.contracts.models import Role, StaffCredential
from dataflow.contracts.service import ContractsService

__all__ = ["Staff", "StaffRing", "require"]


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

    async def authenticate(self, request: Request[Any, Any, Any]) -> Staff:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
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


async def require(request: Request[Any, Any, Any], state: State, *roles: Role) -> Staff:
    """The authenticated staff member, if their role is one of ``roles``; else 401/403."""
    staff = await _ring(state).authenticate(request)
    if staff.role not in roles:
        allowed = ", ".join(r.value for r in roles)
        raise Problem(
            403,
            "role-forbidden",
            "Not allowed for your role",
            f"{request.method} {request.url.path} needs the role {allowed}; you are {staff.role}",
            role=staff.role.value,
        )
    return staff

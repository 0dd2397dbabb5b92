"""API-key authentication against a periodically refreshed snapshot of keys and entitlements.

Revocations, suspensions and plan changes reach every worker within ``refresh_seconds``; the key
itself is never logged. A key verified against a snapshot is remembered with that snapshot and
forgotten when it is replaced (the hash and the constant-time comparison cost ~8 µs a request),
so a revoked key or a suspended partner is refused exactly as soon as before.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.types import Scope

from dataflow.api.errors import Problem
from dataflow.api.observe import scope_header
from dataflow.contracts.keys import key_scope, parse_key, secret_matches
from dataflow.contracts.models import Entitlement, KeyCredential
from dataflow.contracts.service import ContractsService

__all__ = ["Caller", "KeyRing"]

_MAX_VERIFIED = 10_000


@dataclass(frozen=True, slots=True)
class Caller:
    key: KeyCredential
    entitlement: Entitlement

    @property
    def partner_id(self) -> int:
        return self.key.partner_id

    @property
    def key_id(self) -> str:
        return self.key.key_id

    @property
    def tables(self) -> frozenset[str] | None:
        """The tables this key may read now: the key's scope within the contract's (None: all)."""
        return key_scope(self.key.tables, self.entitlement.tables)

    def may_read(self, table: str) -> bool:
        scope = self.tables
        return scope is None or table in scope


class KeyRing:
    def __init__(self, contracts: ContractsService, *, refresh_seconds: float = 2.0) -> None:
        self._contracts = contracts
        self._refresh = refresh_seconds
        self._keys: dict[str, KeyCredential] = {}
        self._entitlements: dict[int, Entitlement] = {}
        # Keys verified against the current snapshot, by the header's token; emptied with
        # every reload, and bounded (only keys that verified are kept).
        self._verified: dict[str, Caller] = {}
        self._loaded_at = float("-inf")
        self._lock = asyncio.Lock()

    def _load(self) -> tuple[dict[str, KeyCredential], dict[int, Entitlement]]:
        keys = {k.key_id: k for k in self._contracts.credentials()}
        return keys, self._contracts.entitlements()

    async def _ensure_fresh(self) -> None:
        if time.monotonic() - self._loaded_at < self._refresh:
            return
        async with self._lock:
            if time.monotonic() - self._loaded_at < self._refresh:
                return
            self._keys, self._entitlements = await asyncio.to_thread(self._load)
            self._verified = {}
            self._loaded_at = time.monotonic()

    async def authenticate(self, request: Request[Any, Any, Any]) -> Caller:
        return await self.authenticate_scope(request.scope)

    async def authenticate_scope(self, scope: Scope) -> Caller:
        """The caller whose key the request's ``Authorization`` header carries (401 if none)."""
        header = (scope_header(scope, b"authorization") or b"").decode("latin-1")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Problem(
                401,
                "unauthenticated",
                "API key required",
                "send your key as 'Authorization: Bearer <key>'",
                headers={"WWW-Authenticate": 'Bearer realm="dataflow"'},
            )
        await self._ensure_fresh()
        known = self._verified.get(token)
        if known is not None:
            return known
        parsed = parse_key(token.strip())
        cred = self._keys.get(parsed[0]) if parsed else None
        entitlement = self._entitlements.get(cred.partner_id) if cred else None
        if (
            parsed is None
            or cred is None
            or entitlement is None
            or not secret_matches(parsed[1], cred.secret_hash)
        ):
            raise Problem(
                401,
                "invalid-key",
                "Invalid API key",
                "the key is unknown or revoked; ask your operator for a new one",
                headers={"WWW-Authenticate": 'Bearer realm="dataflow", error="invalid_token"'},
            )
        caller = Caller(key=cred, entitlement=entitlement)
        if len(self._verified) >= _MAX_VERIFIED:
            self._verified = {}
        self._verified[token] = caller
        return caller

"""API-key authentication against a periodically refreshed snapshot of the active keys.

Revocations reach every worker within ``refresh_seconds``; the key itself is never logged.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from litestar import Request

from dataflow.api.errors import Problem
from dataflow.contracts.keys import parse_key, secret_matches
from dataflow.contracts.service import ContractsService

__all__ = ["Caller", "KeyRing"]


@dataclass(frozen=True, slots=True)
class Caller:
    partner_id: int
    key_id: str
    monthly_cap: int | None


class KeyRing:
    def __init__(self, contracts: ContractsService, *, refresh_seconds: float = 2.0) -> None:
        self._contracts = contracts
        self._refresh = refresh_seconds
        self._keys: dict[str, tuple[str, int, int | None]] = {}
        self._loaded_at = 0.0
        self._lock = asyncio.Lock()

    async def _ensure_fresh(self) -> None:
        if time.monotonic() - self._loaded_at < self._refresh:
            return
        async with self._lock:
            if time.monotonic() - self._loaded_at < self._refresh:
                return
            rows = await asyncio.to_thread(self._contracts.active_keys)
            self._keys = {k: (h, p, cap) for k, h, p, cap in rows}
            self._loaded_at = time.monotonic()

    async def authenticate(self, request: Request[Any, Any, Any]) -> Caller:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Problem(
                401,
                "unauthenticated",
                "API key required",
                "send your key as 'Authorization: Bearer <key>'",
                headers={"WWW-Authenticate": 'Bearer realm="dataflow"'},
            )
        parsed = parse_key(token.strip())
        await self._ensure_fresh()
        entry = self._keys.get(parsed[0]) if parsed else None
        if parsed is None or entry is None or not secret_matches(parsed[1], entry[0]):
            raise Problem(
                401,
                "invalid-key",
                "Invalid API key",
                "the key is unknown or revoked; ask your operator for a new one",
                headers={"WWW-Authenticate": 'Bearer realm="dataflow", error="invalid_token"'},
            )
        return Caller(partner_id=entry[1], key_id=parsed[0], monthly_cap=entry[2])

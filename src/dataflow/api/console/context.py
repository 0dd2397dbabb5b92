"""What the console's handlers share, built once per worker: services, settings, secrets."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from litestar.datastructures import State

from dataflow.billing.reading.reports import BillingReports
from dataflow.billing.reference import BillingReference
from dataflow.billing.service import BillingService
from dataflow.contracts.service import ContractsService, SessionPolicy
from dataflow.settings import Settings

__all__ = ["ConsoleState", "console_secret", "console_state"]


@dataclass(slots=True)
class ConsoleState:
    contracts: ContractsService
    billing: BillingService
    reports: BillingReports
    reference: BillingReference
    policy: SessionPolicy
    secure_cookies: bool  # Secure on every console cookie, whatever scheme the app sees
    _cache: dict[str, tuple[float, Any]] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings, contracts: ContractsService) -> ConsoleState:
        reference = BillingReference.load(settings.datasets_dir)
        billing = BillingService(
            contracts.engine, reference, grace_days=settings.billing_grace_days
        )
        return cls(
            contracts=contracts,
            billing=billing,
            reports=BillingReports(contracts.engine),
            reference=reference,
            policy=SessionPolicy(idle_minutes=settings.console_idle_minutes),
            secure_cookies=settings.console_secure_cookies,
        )

    def cached(self, key: str, seconds: float, compute: Callable[[], Any]) -> Any:
        """A value computed at most every ``seconds`` per worker (the public page's figures)."""
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None and now - hit[0] < seconds:
            return hit[1]
        value = compute()
        self._cache[key] = (now, value)
        return value


def console_state(state: State) -> ConsoleState:
    console: ConsoleState = state.console
    return console


def console_secret(settings: Settings) -> str:
    """The key that signs CSRF tokens: ``DATAFLOW_CONSOLE_SECRET``, else a file made once under
    the data directory (0600), so every worker and restart of one installation agree."""
    if settings.console_secret:
        return settings.console_secret
    path = settings.data_dir / "console.secret"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another worker is writing it right now
            text = path.read_text(encoding="ascii").strip()
            if text:
                return text
            time.sleep(0.02)
        raise RuntimeError(f"{path} is empty: delete it and restart") from None
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        secret = secrets.token_hex(32)
        fh.write(secret)
    return secret

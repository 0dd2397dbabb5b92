"""What every part of the control plane shares: the engine, the clock, the transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine

from dataflow.contracts.errors import PartnerNotFound
from dataflow.contracts.models import Partner
from dataflow.contracts.repository import ContractsRepository as Repo

SAO_PAULO = ZoneInfo("America/Sao_Paulo")


class ServiceBase:
    """Engine, clock and transactions shared by every part of the control plane."""

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Callable[[], datetime] | None = None,
        migrate: bool = True,
    ) -> None:
        self.engine = engine
        self._clock = clock or (lambda: datetime.now(UTC))
        if migrate:
            from dataflow.contracts.schema import ensure_schema  # Alembic: only when migrating

            ensure_schema(engine)

    # -- time -------------------------------------------------------------------------------

    def now(self) -> datetime:
        return self._clock()

    def today(self) -> date:
        """Days (windows, deadlines) are America/Sao_Paulo days."""
        return self.now().astimezone(SAO_PAULO).date()

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    def _partner_or_raise(self, conn: Connection, partner_id: int) -> Partner:
        p = Repo.get_partner(conn, partner_id)
        if p is None:
            raise PartnerNotFound(partner_id)
        return p

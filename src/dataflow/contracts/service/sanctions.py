"""Sanctions (Art. 45): warnings, suspensions, fines."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from sqlalchemy import update

from dataflow.contracts.errors import InvalidInput, SanctionNotFound
from dataflow.contracts.models import Sanction, SanctionKind
from dataflow.contracts.repository import ContractsRepository as Repo
from dataflow.contracts.service.base import SAO_PAULO, ServiceBase
from dataflow.contracts.tables import sanctions as sanctions_table


class SanctionsOps(ServiceBase):
    def _sanction(
        self,
        partner_id: int,
        kind: SanctionKind,
        reason: str,
        *,
        until: datetime | None = None,
        amount_ufemg: str | None = None,
        actor: str,
    ) -> Sanction:
        if not reason.strip():
            raise InvalidInput("reason", "a sanction needs the CGMD-SEF deliberation or motive")
        now = self.now()
        with self._tx() as conn:
            self._partner_or_raise(conn, partner_id)
            sid = Repo.insert(
                conn,
                sanctions_table,
                partner_id=partner_id,
                kind=kind.value,
                reason=reason,
                imposed_at=now,
                starts_at=now,
                until=until,
                amount_ufemg=amount_ufemg,
                imposed_by=actor,
            )
            sanction = Repo.get_sanction(conn, sid)
            Repo.audit(
                conn,
                actor=actor,
                action=f"sanction.{kind}",
                entity="sanction",
                entity_id=sid,
                partner_id=partner_id,
                after=sanction,
                at=now,
            )
            assert sanction is not None
            return sanction

    def warn(self, partner_id: int, reason: str, *, actor: str = "system") -> Sanction:
        return self._sanction(partner_id, SanctionKind.WARNING, reason, actor=actor)

    def suspend(
        self,
        partner_id: int,
        reason: str,
        *,
        until: datetime | None = None,
        days: float | None = None,
        actor: str = "system",
    ) -> Sanction:
        """Suspend supply for a period (Art. 45 II); access resumes by itself at ``until``."""
        if days is not None:
            if days <= 0:
                raise InvalidInput("days", "a suspension lasts a positive number of days")
            until = self.now() + timedelta(days=days)
        if until is not None and until <= self.now():
            raise InvalidInput("until", f"{until.isoformat()} is not in the future")
        return self._sanction(partner_id, SanctionKind.SUSPENSION, reason, until=until, actor=actor)

    def fine(
        self, partner_id: int, reason: str, amount_ufemg: Decimal | str, *, actor: str = "system"
    ) -> Sanction:
        """A fine in UFEMG (Art. 45 III); billing turns it into an invoice line."""
        try:
            amount = Decimal(str(amount_ufemg))
        except InvalidOperation:
            raise InvalidInput("amount", f"{amount_ufemg!r} is not a number") from None
        if not amount.is_finite() or amount <= 0:
            raise InvalidInput("amount", "a fine is a positive amount of UFEMG")
        amount = amount.quantize(Decimal("0.0001"))
        return self._sanction(
            partner_id, SanctionKind.FINE, reason, amount_ufemg=str(amount), actor=actor
        )

    def lift(self, sanction_id: int, *, actor: str = "system") -> Sanction:
        """End a suspension early (or withdraw a warning or fine)."""
        now = self.now()
        with self._tx() as conn:
            before = Repo.get_sanction(conn, sanction_id)
            if before is None or before.lifted_at is not None:
                raise SanctionNotFound(sanction_id)
            conn.execute(
                update(sanctions_table)
                .where(sanctions_table.c.id == sanction_id)
                .values(lifted_at=now)
            )
            after = Repo.get_sanction(conn, sanction_id)
            Repo.audit(
                conn,
                actor=actor,
                action="sanction.lift",
                entity="sanction",
                entity_id=sanction_id,
                partner_id=before.partner_id,
                before=before,
                after=after,
                at=now,
            )
            assert after is not None
            return after

    def fines(self, month: str) -> dict[int, list[Sanction]]:
        """Fines imposed in a billing month (America/Sao_Paulo), not withdrawn, per partner:
        what billing turns into invoice lines (Art. 45 III)."""
        out: dict[int, list[Sanction]] = {}
        for s in self.sanctions():
            local = s.imposed_at.astimezone(SAO_PAULO).strftime("%Y-%m")
            if s.kind is SanctionKind.FINE and s.lifted_at is None and local == month:
                out.setdefault(s.partner_id, []).append(s)
        return out

    def sanctions(self, partner_id: int | None = None) -> list[Sanction]:
        with self.engine.connect() as conn:
            return Repo.sanctions(conn, partner_id)

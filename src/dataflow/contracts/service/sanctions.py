"""Sanctions (Art. 45): warnings, suspensions, fines."""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from sqlalchemy import update

from dataflow.contracts.actors import SYSTEM, Actor
from dataflow.contracts.errors import InvalidInput, SanctionNotFound
from dataflow.contracts.models import Role, Sanction, SanctionKind
from dataflow.contracts.repository import ContractsRepository as Repo
from dataflow.contracts.service.base import SAO_PAULO, ServiceBase
from dataflow.contracts.tables import sanctions as sanctions_table

_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
MAX_SUSPENSION_DAYS = 3650  # ten years; beyond that, end the contract instead


def _positive(value: Decimal | str, what: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise InvalidInput(what, f"{value!r} is not a number") from None
    if not number.is_finite() or number <= 0:
        raise InvalidInput(what, "a fine is a positive amount of UFEMG or percentage")
    return number


class SanctionsOps(ServiceBase):
    def _sanction(
        self,
        partner_id: int,
        kind: SanctionKind,
        reason: str,
        *,
        until: datetime | None = None,
        amount_ufemg: str | None = None,
        percent: str | None = None,
        bill_month: str | None = None,
        actor: Actor,
    ) -> Sanction:
        # Art. 45: warnings and suspensions are the operators'; fines are money, finance's.
        actor.require(
            Role.FINANCE if kind is SanctionKind.FINE else Role.OPERATOR,
            action=f"imposing a {kind} (Art. 45)",
        )
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
                percent=percent,
                bill_month=bill_month,
                imposed_by=actor.name,
            )
            sanction = Repo.get_sanction(conn, sid)
            Repo.audit(
                conn,
                actor=actor.name,
                action=f"sanction.{kind}",
                entity="sanction",
                entity_id=sid,
                partner_id=partner_id,
                after=sanction,
                at=now,
            )
            assert sanction is not None
            return sanction

    def warn(self, partner_id: int, reason: str, *, actor: Actor = SYSTEM) -> Sanction:
        return self._sanction(partner_id, SanctionKind.WARNING, reason, actor=actor)

    def suspend(
        self,
        partner_id: int,
        reason: str,
        *,
        until: datetime | None = None,
        days: float | None = None,
        actor: Actor = SYSTEM,
    ) -> Sanction:
        """Suspend supply for a period (Art. 45 II); access resumes by itself at ``until``."""
        if days is not None:
            if not (math.isfinite(days) and 0 < days <= MAX_SUSPENSION_DAYS):
                raise InvalidInput(
                    "days", f"a suspension lasts more than 0 and at most {MAX_SUSPENSION_DAYS} days"
                )
            until = self.now() + timedelta(days=days)
        if until is not None and until.tzinfo is None:
            raise InvalidInput("until", f"{until.isoformat()} has no timezone (add Z or -03:00)")
        if until is not None and until <= self.now():
            raise InvalidInput("until", f"{until.isoformat()} is not in the future")
        return self._sanction(partner_id, SanctionKind.SUSPENSION, reason, until=until, actor=actor)

    def fine(
        self,
        partner_id: int,
        reason: str,
        amount_ufemg: Decimal | str | None = None,
        *,
        percent: Decimal | str | None = None,
        month: str | None = None,
        actor: Actor = SYSTEM,
    ) -> Sanction:
        """An Art. 45 III fine: a fixed amount in UFEMG or a percentage of a month's supply.

        The one record of the decision, whichever door it comes in by (``partner fine``,
        ``billing fine``, the admin API): billing bills it on the partner's first monthly draft
        for ``month`` (default: this month, America/Sao_Paulo) or later.
        """
        if (amount_ufemg is None) == (percent is None):
            raise InvalidInput("amount", "a fine is either an amount in UFEMG or a percentage")
        amount = None if amount_ufemg is None else _positive(amount_ufemg, "amount")
        pct = None if percent is None else _positive(percent, "percent")
        if pct is not None and pct > 100:
            raise InvalidInput("percent", "a percentage of the month's supply is at most 100")
        bill_month = month or f"{self.now().astimezone(SAO_PAULO):%Y-%m}"
        if not _MONTH.fullmatch(bill_month):
            raise InvalidInput("month", f"{bill_month!r}: expected YYYY-MM")
        return self._sanction(
            partner_id,
            SanctionKind.FINE,
            reason,
            amount_ufemg=None if amount is None else str(amount.quantize(Decimal("0.0001"))),
            percent=None if pct is None else str(pct),
            bill_month=bill_month,
            actor=actor,
        )

    def lift(self, sanction_id: int, *, actor: Actor = SYSTEM) -> Sanction:
        """End a suspension early, or withdraw a warning or a fine (a fine: finance only).

        A withdrawn fine leaves its draft at the next billing run; one already on an issued
        invoice is credited back by the next run (a credit note naming the sanction).
        """
        now = self.now()
        with self._tx() as conn:
            before = Repo.get_sanction(conn, sanction_id)
            if before is None or before.lifted_at is not None:
                raise SanctionNotFound(sanction_id)
            actor.require(
                Role.FINANCE if before.kind is SanctionKind.FINE else Role.OPERATOR,
                action=f"lifting a {before.kind} (Art. 45)",
            )
            conn.execute(
                update(sanctions_table)
                .where(sanctions_table.c.id == sanction_id)
                .values(lifted_at=now)
            )
            after = Repo.get_sanction(conn, sanction_id)
            Repo.audit(
                conn,
                actor=actor.name,
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

    def sanction(self, sanction_id: int) -> Sanction:
        with self.engine.connect() as conn:
            found = Repo.get_sanction(conn, sanction_id)
        if found is None:
            raise SanctionNotFound(sanction_id)
        return found

    def sanctions(self, partner_id: int | None = None) -> list[Sanction]:
        with self.engine.connect() as conn:
            return Repo.sanctions(conn, partner_id)

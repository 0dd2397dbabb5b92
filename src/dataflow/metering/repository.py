"""SQL side of settlement: apply stream entries idempotently, read the ledger back."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from dataflow.contracts.tables import usage_ledger
from dataflow.metering.models import EntryKind, StreamEntry, stream_order
from dataflow.metering.tables import access_records, settlement_watermarks

__all__ = ["SettlementRepository"]


class SettlementRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        access_records.create(engine, checkfirst=True)
        settlement_watermarks.create(engine, checkfirst=True)

    def watermark(self, partner_id: int) -> str:
        with self._engine.connect() as conn:
            value = conn.execute(
                select(settlement_watermarks.c.last_id).where(
                    settlement_watermarks.c.partner_id == partner_id
                )
            ).scalar_one_or_none()
        return str(value) if value else "0-0"

    def apply(self, partner_id: int, entries: Sequence[StreamEntry]) -> set[str]:
        """Apply entries in one transaction; return the months whose ledger was recomputed.

        Re-applying entries already applied changes nothing: records are keyed by stream id,
        releases and completions set values, and the ledger is recomputed from the records.
        """
        if not entries:
            return set()
        with self._engine.begin() as conn:
            months = self._apply(conn, partner_id, entries)
            for month in months:
                self._recompute(conn, partner_id, month)
            self._advance(conn, partner_id, entries[-1].id)
        return months

    def _insert_ignore(self, conn: Connection) -> object:
        if conn.dialect.name == "postgresql":
            return postgresql.insert(access_records).on_conflict_do_nothing(
                index_elements=["partner_id", "record_id"]
            )
        if conn.dialect.name == "sqlite":
            return sqlite.insert(access_records).on_conflict_do_nothing(
                index_elements=["partner_id", "record_id"]
            )
        raise NotImplementedError(f"settlement on {conn.dialect.name}")

    def _apply(self, conn: Connection, partner_id: int, entries: Sequence[StreamEntry]) -> set[str]:
        months: set[str] = set()
        rows = [
            {
                "partner_id": partner_id,
                "record_id": e.id,
                "month": e.month,
                "key_id": e.key_id,
                "table_id": e.table,
                "release": e.release,
                "member_id": e.member_id,
                "accessed_at_ms": e.at_ms,
                "released": False,
            }
            for e in entries
            if e.kind is EntryKind.ACCESS
        ]
        if rows:
            conn.execute(self._insert_ignore(conn), rows)  # type: ignore[call-overload]
            months.update(r["month"] for r in rows)  # type: ignore[misc]
        released = [{"p": partner_id, "ref": e.ref} for e in entries if e.kind is EntryKind.RELEASE]
        if released:
            conn.execute(
                update(access_records)
                .where(
                    access_records.c.partner_id == bindparam("p"),
                    access_records.c.record_id == bindparam("ref"),
                )
                .values(released=True),
                released,
            )
            months.update(e.month for e in entries if e.kind is EntryKind.RELEASE)
        done = [
            {"p": partner_id, "ref": e.ref, "st": e.status, "by": e.bytes, "ms": e.latency_ms}
            for e in entries
            if e.kind is EntryKind.COMPLETE
        ]
        if done:
            conn.execute(
                update(access_records)
                .where(
                    access_records.c.partner_id == bindparam("p"),
                    access_records.c.record_id == bindparam("ref"),
                )
                .values(status=bindparam("st"), bytes=bindparam("by"), latency_ms=bindparam("ms")),
                done,
            )
        return months

    @staticmethod
    def _recompute(conn: Connection, partner_id: int, month: str) -> None:
        n = conn.execute(
            select(func.count()).where(
                access_records.c.partner_id == partner_id,
                access_records.c.month == month,
                access_records.c.released.is_(False),
            )
        ).scalar_one()
        now = datetime.now(UTC)
        updated = conn.execute(
            update(usage_ledger)
            .where(usage_ledger.c.partner_id == partner_id, usage_ledger.c.month == month)
            .values(accesses=n, settled_at=now)
        ).rowcount
        if not updated:
            conn.execute(
                insert(usage_ledger).values(
                    partner_id=partner_id, month=month, accesses=n, settled_at=now
                )
            )

    @staticmethod
    def _advance(conn: Connection, partner_id: int, last_id: str) -> None:
        now = datetime.now(UTC)
        current = conn.execute(
            select(settlement_watermarks.c.last_id)
            .where(settlement_watermarks.c.partner_id == partner_id)
            .with_for_update()
        ).scalar_one_or_none()
        if current is None:
            conn.execute(
                insert(settlement_watermarks).values(
                    partner_id=partner_id, last_id=last_id, settled_at=now
                )
            )
        elif stream_order(last_id) > stream_order(str(current)):
            conn.execute(
                update(settlement_watermarks)
                .where(settlement_watermarks.c.partner_id == partner_id)
                .values(last_id=last_id, settled_at=now)
            )

    def ledger(self, month: str) -> dict[int, int]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(usage_ledger.c.partner_id, usage_ledger.c.accesses).where(
                    usage_ledger.c.month == month
                )
            ).all()
        return {int(r[0]): int(r[1]) for r in rows}

    def records(self, month: str) -> dict[int, int]:
        """Unreleased access records per partner for the month."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(access_records.c.partner_id, func.count())
                .where(access_records.c.month == month, access_records.c.released.is_(False))
                .group_by(access_records.c.partner_id)
            ).all()
        return {int(r[0]): int(r[1]) for r in rows}

"""SQL side of settlement: apply stream entries idempotently, read the ledger back."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, bindparam, func, insert, select, update

from dataflow.contracts.schema import ensure_schema
from dataflow.contracts.tables import usage_ledger
from dataflow.metering.models import EntryKind, StreamEntry, stream_order
from dataflow.metering.tables import access_records, settlement_watermarks

__all__ = ["SettlementRepository"]


class SettlementRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        ensure_schema(engine)  # Alembic, like every package's tables

    def watermark(self, partner_id: int) -> str:
        with self._engine.connect() as conn:
            value = conn.execute(
                select(settlement_watermarks.c.last_id).where(
                    settlement_watermarks.c.partner_id == partner_id
                )
            ).scalar_one_or_none()
        return str(value) if value else "0-0"

    def apply(self, partner_id: int, entries: Sequence[StreamEntry]) -> set[str]:
        """Apply entries and advance the watermark in one transaction; return touched months.

        Re-applying entries already applied changes nothing: a record is inserted only if its
        id is new, a release counts only if it flips ``released``, and the ledger moves by
        exactly what changed — so the ledger stays O(batch), not O(month), to maintain.
        """
        if not entries:
            return set()
        with self._engine.begin() as conn:
            delta: dict[str, int] = defaultdict(int)
            # A completion usually arrives in the same batch as its access: fold it into the
            # insert instead of one UPDATE per access; only the others are updated.
            completions = {e.ref: e for e in entries if e.kind is EntryKind.COMPLETE}
            self._insert_new(conn, partner_id, entries, delta, completions)
            self._release(conn, partner_id, entries, delta)
            self._complete(conn, partner_id, list(completions.values()))
            for month, n in delta.items():
                if n:
                    self._add_to_ledger(conn, partner_id, month, n)
            last = entries[-1]
            self._advance(conn, partner_id, last.stream_id or last.id)
        return {m for m, n in delta.items() if n}

    @staticmethod
    def _insert_new(
        conn: Connection,
        partner_id: int,
        entries: Sequence[StreamEntry],
        delta: dict[str, int],
        completions: dict[str, StreamEntry],
    ) -> None:
        accesses = [e for e in entries if e.kind is EntryKind.ACCESS]
        if not accesses:
            return
        seen: set[str] = set()
        ids = [e.id for e in accesses]
        for i in range(0, len(ids), 500):  # bounded IN lists
            seen.update(
                str(r[0])
                for r in conn.execute(
                    select(access_records.c.record_id).where(
                        access_records.c.partner_id == partner_id,
                        access_records.c.record_id.in_(ids[i : i + 500]),
                    )
                )
            )
        rows = []
        for e in accesses:
            if e.id in seen:
                continue  # delivered again: already applied
            seen.add(e.id)
            delta[e.month] += 1
            done = completions.pop(e.id, None)
            rows.append(
                {
                    "status": done.status if done else None,
                    "bytes": done.bytes if done else None,
                    "latency_ms": done.latency_ms if done else None,
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
            )
        if rows:
            # A concurrent settler inserting the same ids makes this fail on the unique key:
            # the transaction rolls back and the entries are applied on the next round.
            conn.execute(insert(access_records), rows)

    @staticmethod
    def _release(
        conn: Connection, partner_id: int, entries: Sequence[StreamEntry], delta: dict[str, int]
    ) -> None:
        for e in entries:
            if e.kind is not EntryKind.RELEASE:
                continue
            flipped = conn.execute(
                update(access_records)
                .where(
                    access_records.c.partner_id == partner_id,
                    access_records.c.record_id == e.ref,
                    access_records.c.released.is_(False),
                )
                .values(released=True)
            ).rowcount
            delta[e.month] -= flipped

    @staticmethod
    def _complete(conn: Connection, partner_id: int, entries: Sequence[StreamEntry]) -> None:
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

    @staticmethod
    def _add_to_ledger(conn: Connection, partner_id: int, month: str, n: int) -> None:
        now = datetime.now(UTC)
        updated = conn.execute(
            update(usage_ledger)
            .where(usage_ledger.c.partner_id == partner_id, usage_ledger.c.month == month)
            .values(accesses=usage_ledger.c.accesses + n, settled_at=now)
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

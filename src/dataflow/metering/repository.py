"""SQL side of settlement: apply stream entries idempotently, read the ledger back.

One transaction per batch: lock the partner's watermark, insert the access records (bulk, through
the driver: this runs for every access), flip releases, amend completions, move the ledger and the
stream tally by what changed, advance the watermark.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, func, insert, select, update

from dataflow.contracts.schema import ensure_schema
from dataflow.contracts.tables import usage_ledger
from dataflow.metering.models import EntryKind, StreamEntry, stream_order
from dataflow.metering.tables import (
    access_records,
    settled_stream_tallies,
    settlement_watermarks,
)

__all__ = ["SettlementRepository", "StreamTally"]

_RECORD_COLUMNS = (
    "partner_id",
    "record_id",
    "month",
    "key_id",
    "table_id",
    "release",
    "member_id",
    "accessed_at_ms",
    "status",
    "bytes",
    "latency_ms",
    "released",
)

StreamTally = dict[int, int]  # partner → access entries less release entries, settled


class SettlementRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        ensure_schema(engine)  # Alembic, like every package's tables
        mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        marks = ", ".join([mark] * len(_RECORD_COLUMNS))
        # Plain driver executemany: SQLAlchemy's per-row parameter processing cost more than the
        # insert itself. ON CONFLICT DO NOTHING keeps a re-delivered record a no-op, and the
        # driver's row count says how many were new (what the ledger moves by).
        self._insert_sql = (
            f"INSERT INTO {access_records.name} ({', '.join(_RECORD_COLUMNS)}) VALUES ({marks}) "
            "ON CONFLICT (partner_id, record_id) DO NOTHING"
        )
        self._complete_sql = (
            f"UPDATE {access_records.name} SET status = {mark}, bytes = {mark}, "
            f"latency_ms = {mark} WHERE partner_id = {mark} AND record_id = {mark}"
        )

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

        Re-applying entries already applied changes nothing: entries at or before the watermark
        (read under a lock, so concurrent settlers serialize) are skipped, a record is inserted
        only if its id is new, a release counts only if it flips ``released`` — and the ledger
        moves by exactly what changed, so it stays O(batch), not O(month), to maintain.
        """
        if not entries:
            return set()
        with self._engine.begin() as conn:
            current = self._lock_watermark(conn, partner_id)
            done = stream_order(current) if current is not None else (0, 0)
            fresh = [e for e in entries if e.order > done]
            delta: dict[str, int] = defaultdict(int)
            tally: dict[str, list[int]] = defaultdict(lambda: [0, 0])
            # A completion usually arrives in the same batch as its access: fold it into the
            # insert instead of one UPDATE per access; only the others are updated.
            completions = {e.ref: e for e in fresh if e.kind is EntryKind.COMPLETE}
            self._insert_new(conn, partner_id, fresh, delta, tally, completions)
            self._release(conn, partner_id, fresh, delta, tally)
            self._complete(conn, partner_id, list(completions.values()))
            for month, n in delta.items():
                if n:
                    self._add_to_ledger(conn, partner_id, month, n)
            for month, (accesses, releases) in tally.items():
                self._add_to_tally(conn, partner_id, month, accesses, releases)
            last = entries[-1]
            self._advance(conn, partner_id, current, last.stream_id or last.id)
        return {m for m, n in delta.items() if n}

    def _insert_new(
        self,
        conn: Connection,
        partner_id: int,
        entries: Sequence[StreamEntry],
        delta: dict[str, int],
        tally: dict[str, list[int]],
        completions: dict[str, StreamEntry],
    ) -> None:
        by_month: dict[str, list[tuple[object, ...]]] = defaultdict(list)
        for e in entries:
            if e.kind is not EntryKind.ACCESS:
                continue
            done = completions.pop(e.id, None) if e.status is None else e
            by_month[e.month].append(
                (
                    partner_id,
                    e.id,
                    e.month,
                    e.key_id,
                    e.table,
                    e.release,
                    e.member_id,
                    e.at_ms,
                    done.status if done else None,
                    done.bytes if done else None,
                    done.latency_ms if done else None,
                    False,
                )
            )
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            for month, rows in by_month.items():
                tally[month][0] += len(rows)
                cursor.executemany(self._insert_sql, rows)
                delta[month] += max(int(cursor.rowcount), 0)
        finally:
            cursor.close()

    @staticmethod
    def _release(
        conn: Connection,
        partner_id: int,
        entries: Sequence[StreamEntry],
        delta: dict[str, int],
        tally: dict[str, list[int]],
    ) -> None:
        for e in entries:
            if e.kind is not EntryKind.RELEASE:
                continue
            tally[e.month][1] += 1
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

    def _complete(self, conn: Connection, partner_id: int, entries: Sequence[StreamEntry]) -> None:
        done = [(e.status, e.bytes, e.latency_ms, partner_id, e.ref) for e in entries]
        if done:
            cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            try:
                cursor.executemany(self._complete_sql, done)
            finally:
                cursor.close()

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
    def _add_to_tally(
        conn: Connection, partner_id: int, month: str, accesses: int, releases: int
    ) -> None:
        t = settled_stream_tallies
        updated = conn.execute(
            update(t)
            .where(t.c.partner_id == partner_id, t.c.month == month)
            .values(accesses=t.c.accesses + accesses, releases=t.c.releases + releases)
        ).rowcount
        if not updated:
            conn.execute(
                insert(t).values(
                    partner_id=partner_id, month=month, accesses=accesses, releases=releases
                )
            )

    @staticmethod
    def _lock_watermark(conn: Connection, partner_id: int) -> str | None:
        """The partner's watermark, locked until commit (a write first: SQLite locks on write)."""
        w = settlement_watermarks
        conn.execute(
            update(w).where(w.c.partner_id == partner_id).values(settled_at=datetime.now(UTC))
        )
        value = conn.execute(
            select(w.c.last_id).where(w.c.partner_id == partner_id).with_for_update()
        ).scalar_one_or_none()
        return None if value is None else str(value)

    @staticmethod
    def _advance(conn: Connection, partner_id: int, current: str | None, last_id: str) -> None:
        now = datetime.now(UTC)
        w = settlement_watermarks
        if current is None:
            # A concurrent first settler inserting too fails on the key and rolls back.
            conn.execute(insert(w).values(partner_id=partner_id, last_id=last_id, settled_at=now))
        elif stream_order(last_id) > stream_order(current):
            conn.execute(
                update(w)
                .where(w.c.partner_id == partner_id)
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

    def settled_stream(self, month: str) -> tuple[dict[int, str], StreamTally]:
        """Every partner's watermark, and what its stream carried up to it for the month
        (access entries less release entries): the trimmed part of the stream, as settled."""
        t, w = settled_stream_tallies, settlement_watermarks
        with self._engine.begin() as conn:  # one snapshot of both
            marks = {
                int(p): str(last) for p, last in conn.execute(select(w.c.partner_id, w.c.last_id))
            }
            tallies = {
                int(p): int(a) - int(r)
                for p, a, r in conn.execute(
                    select(t.c.partner_id, t.c.accesses, t.c.releases).where(t.c.month == month)
                )
            }
        return marks, tallies

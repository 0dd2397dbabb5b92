"""The SQL store: engine creation, row mapping and the audit trail. Callers own the transaction."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
from sqlalchemy import (
    Connection,
    Engine,
    RowMapping,
    Table,
    create_engine,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import make_url

from dataflow.contracts.models import (
    AuditEntry,
    Contact,
    Contract,
    ContractKind,
    ContractState,
    Member,
    Partner,
    Plan,
    Sanction,
    SanctionKind,
)
from dataflow.contracts.tables import (
    audit_log,
    contacts,
    contracts,
    members,
    partners,
    sanctions,
    usage_ledger,
)

__all__ = [
    "ContractsRepository",
    "as_utc",
    "decode_tables",
    "encode_tables",
    "make_engine",
    "snapshot",
]


def make_engine(database_url: str) -> Engine:
    """An engine for the URL; SQLite gets WAL and a busy timeout so CLI and server can share it."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            _use_wal(cur)
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    if url.get_backend_name() == "postgresql" and url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    return create_engine(url, pool_pre_ping=True)


def _use_wal(cur: sqlite3.Cursor, *, patience_s: float = 30.0) -> None:
    """Switch the file to WAL once: the mode persists in the file, later connections only read it.

    Switching needs an exclusive lock and SQLite answers "database is locked" at once, without
    its busy handler, when other connections open the same new file at that moment (workers
    starting together): retry until one of them has switched it.
    """
    deadline = time.monotonic() + patience_s
    while True:
        try:
            if cur.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; we only ever store UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def encode_tables(tables: frozenset[str] | None) -> str | None:
    return None if tables is None else json.dumps(sorted(tables))


def decode_tables(raw: str | None) -> frozenset[str] | None:
    return None if raw is None else frozenset(json.loads(raw))


def snapshot(obj: msgspec.Struct | None) -> dict[str, Any] | None:
    """A JSON-ready picture of a value object for the audit log (secrets never included)."""
    if obj is None:
        return None
    data: dict[str, Any] = msgspec.to_builtins(obj)
    data.pop("secret_hash", None)
    return data


def _partner(r: RowMapping) -> Partner:
    return Partner(
        id=r["id"],
        name=r["name"],
        cnpj=r["cnpj"],
        plan=Plan(r["plan"]),
        monthly_cap=r["monthly_cap"],
        contract_toml=r["contract_toml"],
        created_at=as_utc(r["created_at"]) or r["created_at"],
    )


def _contract(r: RowMapping) -> Contract:
    return Contract(
        id=r["id"],
        partner_id=r["partner_id"],
        kind=ContractKind(r["kind"]),
        state=ContractState(r["state"]),
        resume_state=ContractState(r["resume_state"]) if r["resume_state"] else None,
        modality=r["modality"],
        terms_toml=r["terms_toml"],
        sla=r["sla"],
        start_date=r["start_date"],
        end_date=r["end_date"],
        monthly_cap=r["monthly_cap"],
        tables=decode_tables(r["tables"]),
        rate_per_second=r["rate_per_second"],
        rate_per_minute=r["rate_per_minute"],
        secrecy_term_accepted=bool(r["secrecy_term_accepted"]),
        secrecy_signed_by=r["secrecy_signed_by"],
        approved_terms_toml=r["approved_terms_toml"],
        requested_at=as_utc(r["requested_at"]),
        fee_paid_at=as_utc(r["fee_paid_at"]),
        budget_due=r["budget_due"],
        budget_issued_at=as_utc(r["budget_issued_at"]),
        budget_ufemg=r["budget_ufemg"],
        accepted_at=as_utc(r["accepted_at"]),
        ended_at=as_utc(r["ended_at"]),
        end_reason=r["end_reason"],
        successor_id=r["successor_id"],
    )


def _member(r: RowMapping) -> Member:
    return Member(
        id=r["id"],
        partner_id=r["partner_id"],
        name=r["name"],
        email=r["email"],
        added_at=as_utc(r["added_at"]) or r["added_at"],
        removed_at=as_utc(r["removed_at"]),
    )


def _sanction(r: RowMapping) -> Sanction:
    return Sanction(
        id=r["id"],
        partner_id=r["partner_id"],
        kind=SanctionKind(r["kind"]),
        reason=r["reason"],
        imposed_at=as_utc(r["imposed_at"]) or r["imposed_at"],
        starts_at=as_utc(r["starts_at"]) or r["starts_at"],
        until=as_utc(r["until"]),
        amount_ufemg=r["amount_ufemg"],
        lifted_at=as_utc(r["lifted_at"]),
        imposed_by=r["imposed_by"],
        percent=r["percent"],
        bill_month=r["bill_month"],
    )


def _contact(r: RowMapping) -> Contact:
    return Contact(
        id=r["id"],
        partner_id=r["partner_id"],
        kind=r["kind"],
        name=r["name"],
        email=r["email"],
        phone=r["phone"],
    )


def _audit(r: RowMapping) -> AuditEntry:
    return AuditEntry(
        id=r["id"],
        at=as_utc(r["at"]) or r["at"],
        actor=r["actor"],
        action=r["action"],
        entity=r["entity"],
        entity_id=r["entity_id"],
        partner_id=r["partner_id"],
        before=json.loads(r["before"]) if r["before"] else None,
        after=json.loads(r["after"]) if r["after"] else None,
    )


class ContractsRepository:
    """Stateless queries; the caller owns the connection and the transaction."""

    @staticmethod
    def insert(conn: Connection, table: Table, **values: Any) -> int:
        pk = next(iter(table.primary_key.columns))
        return int(conn.execute(insert(table).values(**values).returning(pk)).scalar_one())

    @staticmethod
    def audit(
        conn: Connection,
        *,
        actor: str,
        action: str,
        entity: str,
        entity_id: object,
        partner_id: int | None,
        before: msgspec.Struct | None = None,
        after: msgspec.Struct | None = None,
        at: datetime | None = None,
    ) -> None:
        def dump(obj: msgspec.Struct | None) -> str | None:
            data = snapshot(obj)
            return None if data is None else json.dumps(data, sort_keys=True, default=str)

        conn.execute(
            insert(audit_log).values(
                at=at or datetime.now(UTC),
                actor=actor,
                action=action,
                entity=entity,
                entity_id=str(entity_id),
                partner_id=partner_id,
                before=dump(before),
                after=dump(after),
            )
        )

    @staticmethod
    def audit_entries(
        conn: Connection,
        *,
        partner_id: int | None = None,
        entity: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        limit: int = 200,
        before_id: int | None = None,
        newest_first: bool = False,
    ) -> list[AuditEntry]:
        q = select(audit_log).order_by(audit_log.c.id.desc() if newest_first else audit_log.c.id)
        if before_id is not None:
            q = q.where(audit_log.c.id < before_id)
        if partner_id is not None:
            q = q.where(audit_log.c.partner_id == partner_id)
        if entity is not None:
            q = q.where(audit_log.c.entity == entity)
        if action is not None:
            q = q.where(audit_log.c.action == action)
        if since is not None:
            q = q.where(audit_log.c.at >= since)
        rows = conn.execute(q.limit(limit)).mappings().all()
        return [_audit(r) for r in rows]

    @staticmethod
    def get_partner(conn: Connection, partner_id: int) -> Partner | None:
        row = conn.execute(select(partners).where(partners.c.id == partner_id)).mappings().first()
        return None if row is None else _partner(row)

    @staticmethod
    def partners(conn: Connection, ids: Collection[int] | None = None) -> list[Partner]:
        q = select(partners).order_by(partners.c.id)
        if ids is not None:
            q = q.where(partners.c.id.in_(list(ids)))
        rows = conn.execute(q).mappings().all()
        return [_partner(r) for r in rows]

    @staticmethod
    def update_partner(conn: Connection, partner_id: int, **values: Any) -> None:
        conn.execute(update(partners).where(partners.c.id == partner_id).values(**values))

    @staticmethod
    def get_contract(conn: Connection, contract_id: int, *, lock: bool = False) -> Contract | None:
        q = select(contracts).where(contracts.c.id == contract_id)
        if lock:  # serialises concurrent transitions on PostgreSQL (SQLite locks the database)
            q = q.with_for_update()
        row = conn.execute(q).mappings().first()
        return None if row is None else _contract(row)

    @staticmethod
    def contracts(
        conn: Connection,
        partner_id: int | None = None,
        *,
        partner_ids: Collection[int] | None = None,
    ) -> list[Contract]:
        q = select(contracts).order_by(contracts.c.id)
        if partner_id is not None:
            q = q.where(contracts.c.partner_id == partner_id)
        if partner_ids is not None:
            q = q.where(contracts.c.partner_id.in_(list(partner_ids)))
        return [_contract(r) for r in conn.execute(q).mappings().all()]

    @staticmethod
    def update_contract(conn: Connection, contract_id: int, **values: Any) -> None:
        conn.execute(update(contracts).where(contracts.c.id == contract_id).values(**values))

    @staticmethod
    def get_member(conn: Connection, member_id: int) -> Member | None:
        row = conn.execute(select(members).where(members.c.id == member_id)).mappings().first()
        return None if row is None else _member(row)

    @staticmethod
    def members(conn: Connection, partner_id: int, *, active_only: bool = True) -> list[Member]:
        q = select(members).where(members.c.partner_id == partner_id).order_by(members.c.id)
        if active_only:
            q = q.where(members.c.removed_at.is_(None))
        return [_member(r) for r in conn.execute(q).mappings().all()]

    @staticmethod
    def contacts(conn: Connection, partner_id: int) -> list[Contact]:
        q = select(contacts).where(contacts.c.partner_id == partner_id).order_by(contacts.c.id)
        return [_contact(r) for r in conn.execute(q).mappings().all()]

    @staticmethod
    def get_sanction(conn: Connection, sanction_id: int) -> Sanction | None:
        q = select(sanctions).where(sanctions.c.id == sanction_id)
        row = conn.execute(q).mappings().first()
        return None if row is None else _sanction(row)

    @staticmethod
    def sanctions(
        conn: Connection,
        partner_id: int | None = None,
        *,
        partner_ids: Collection[int] | None = None,
    ) -> list[Sanction]:
        q = select(sanctions).order_by(sanctions.c.id)
        if partner_id is not None:
            q = q.where(sanctions.c.partner_id == partner_id)
        if partner_ids is not None:
            q = q.where(sanctions.c.partner_id.in_(list(partner_ids)))
        return [_sanction(r) for r in conn.execute(q).mappings().all()]

    @staticmethod
    def record_usage(conn: Connection, *, partner_id: int, month: str, accesses: int) -> None:
        """Set the settled count of a month (idempotent: the meter's count is the truth)."""
        now = datetime.now(UTC)
        updated = conn.execute(
            update(usage_ledger)
            .where(usage_ledger.c.partner_id == partner_id, usage_ledger.c.month == month)
            .values(accesses=accesses, settled_at=now)
        ).rowcount
        if not updated:
            conn.execute(
                insert(usage_ledger).values(
                    partner_id=partner_id, month=month, accesses=accesses, settled_at=now
                )
            )

    @staticmethod
    def usage_for_month(conn: Connection, month: str) -> dict[int, int]:
        rows = conn.execute(
            select(usage_ledger.c.partner_id, usage_ledger.c.accesses).where(
                usage_ledger.c.month == month
            )
        ).all()
        return {int(r[0]): int(r[1]) for r in rows}

    @staticmethod
    def usage(conn: Connection, *, partner_id: int, month: str) -> int:
        value = conn.execute(
            select(usage_ledger.c.accesses).where(
                usage_ledger.c.partner_id == partner_id, usage_ledger.c.month == month
            )
        ).scalar_one_or_none()
        return int(value or 0)

    @staticmethod
    def usage_totals(conn: Connection) -> dict[str, int]:
        rows = conn.execute(
            select(usage_ledger.c.month, func.sum(usage_ledger.c.accesses)).group_by(
                usage_ledger.c.month
            )
        ).all()
        return {str(r[0]): int(r[1] or 0) for r in rows}

    @staticmethod
    def usage_by_month(conn: Connection, partner_id: int) -> dict[str, int]:
        rows = conn.execute(
            select(usage_ledger.c.month, usage_ledger.c.accesses).where(
                usage_ledger.c.partner_id == partner_id
            )
        ).all()
        return {str(r[0]): int(r[1]) for r in rows}

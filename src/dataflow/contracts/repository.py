"""The SQL store: engine creation and the queries of the control plane."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event, insert, select, update
from sqlalchemy.engine import make_url

from dataflow.contracts.models import ApiKeyRecord, KeyCredential, Partner, Plan
from dataflow.contracts.tables import api_keys, metadata, partners, usage_ledger

__all__ = ["ContractsRepository", "make_engine"]


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
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    if url.get_backend_name() == "postgresql" and url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    return create_engine(url, pool_pre_ping=True)


class ContractsRepository:
    """Stateless queries; the caller owns the connection and the transaction."""

    @staticmethod
    def create_schema(engine: Engine) -> None:
        metadata.create_all(engine)

    @staticmethod
    def add_partner(
        conn: Connection,
        *,
        name: str,
        plan: Plan,
        monthly_cap: int | None,
        contract_toml: str | None,
    ) -> Partner:
        now = datetime.now(UTC)
        pid = conn.execute(
            insert(partners)
            .values(
                name=name,
                plan=plan.value,
                monthly_cap=monthly_cap,
                contract_toml=contract_toml,
                created_at=now,
            )
            .returning(partners.c.id)
        ).scalar_one()
        return Partner(
            id=pid,
            name=name,
            plan=plan,
            monthly_cap=monthly_cap,
            contract_toml=contract_toml,
            created_at=now,
        )

    @staticmethod
    def get_partner(conn: Connection, partner_id: int) -> Partner | None:
        row = conn.execute(select(partners).where(partners.c.id == partner_id)).mappings().first()
        if row is None:
            return None
        return Partner(
            id=row["id"],
            name=row["name"],
            plan=Plan(row["plan"]),
            monthly_cap=row["monthly_cap"],
            contract_toml=row["contract_toml"],
            created_at=row["created_at"],
        )

    @staticmethod
    def add_key(conn: Connection, record: ApiKeyRecord) -> None:
        conn.execute(
            insert(api_keys).values(
                key_id=record.key_id,
                partner_id=record.partner_id,
                secret_hash=record.secret_hash,
                created_at=record.created_at,
            )
        )

    @staticmethod
    def revoke_key(conn: Connection, key_id: str) -> bool:
        res = conn.execute(
            update(api_keys)
            .where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )
        return res.rowcount > 0

    @staticmethod
    def credentials(conn: Connection) -> list[KeyCredential]:
        """Every unrevoked key."""
        rows = conn.execute(
            select(api_keys.c.key_id, api_keys.c.secret_hash, api_keys.c.partner_id).where(
                api_keys.c.revoked_at.is_(None)
            )
        ).all()
        return [KeyCredential(key_id=r[0], secret_hash=r[1], partner_id=r[2]) for r in rows]

    @staticmethod
    def partners(conn: Connection) -> list[Partner]:
        rows = conn.execute(select(partners)).mappings().all()
        return [
            Partner(
                id=r["id"],
                name=r["name"],
                plan=Plan(r["plan"]),
                monthly_cap=r["monthly_cap"],
                contract_toml=r["contract_toml"],
                created_at=r["created_at"],
            )
            for r in rows
        ]

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

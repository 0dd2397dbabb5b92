"""Staff credentials for the admin and finance API."""

from __future__ import annotations

from sqlalchemy import select, update

from dataflow.contracts.actors import SYSTEM, Actor
from dataflow.contracts.keys import STAFF_PREFIX, hash_secret, new_key, parse_key, secret_matches
from dataflow.contracts.models import Role, StaffCredential
from dataflow.contracts.repository import ContractsRepository as Repo
from dataflow.contracts.service.base import ServiceBase
from dataflow.contracts.tables import admin_credentials


class StaffOps(ServiceBase):
    def create_staff(self, name: str, role: Role, *, actor: Actor = SYSTEM) -> str:
        """A staff credential for the admin API; the token is returned once, only its hash kept."""
        key_id, secret, full = new_key(STAFF_PREFIX)
        now = self.now()
        with self._tx() as conn:
            conn.execute(
                admin_credentials.insert().values(
                    key_id=key_id,
                    name=name,
                    role=role.value,
                    secret_hash=hash_secret(secret),
                    created_at=now,
                )
            )
            cred = StaffCredential(key_id=key_id, name=name, role=role, secret_hash="")
            Repo.audit(
                conn,
                actor=actor.name,
                action="staff.create",
                entity="staff",
                entity_id=key_id,
                partner_id=None,
                after=cred,
                at=now,
            )
        return full

    def revoke_staff(self, key_id: str, *, actor: Actor = SYSTEM) -> bool:
        now = self.now()
        with self._tx() as conn:
            res = conn.execute(
                update(admin_credentials)
                .where(
                    admin_credentials.c.key_id == key_id, admin_credentials.c.revoked_at.is_(None)
                )
                .values(revoked_at=now)
            )
            if res.rowcount:
                Repo.audit(
                    conn,
                    actor=actor.name,
                    action="staff.revoke",
                    entity="staff",
                    entity_id=key_id,
                    partner_id=None,
                    at=now,
                )
            return bool(res.rowcount)

    def staff_by_token(self, token: str) -> StaffCredential | None:
        """The active credential a ``dfa_…`` token proves, or None."""
        parsed = parse_key(token.strip(), STAFF_PREFIX)
        if parsed is None:
            return None
        found = next((c for c in self.staff_credentials() if c.key_id == parsed[0]), None)
        return found if found and secret_matches(parsed[1], found.secret_hash) else None

    def staff_credentials(self) -> list[StaffCredential]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(admin_credentials).where(admin_credentials.c.revoked_at.is_(None))
            ).mappings()
            return [
                StaffCredential(
                    key_id=r["key_id"],
                    name=r["name"],
                    role=Role(r["role"]),
                    secret_hash=r["secret_hash"],
                )
                for r in rows
            ]

"""The authorized team (Art. 35 I e) and its API keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select, update

from dataflow.contracts.actors import SYSTEM, Actor
from dataflow.contracts.errors import InvalidInput, KeyNotFound, MemberNotFound
from dataflow.contracts.keys import hash_secret, new_key
from dataflow.contracts.lifecycle import current_contract
from dataflow.contracts.models import ApiKeyRecord, Contract, KeyCredential, Member
from dataflow.contracts.repository import ContractsRepository as Repo
from dataflow.contracts.repository import as_utc, decode_tables, encode_tables
from dataflow.contracts.service.base import ServiceBase
from dataflow.contracts.tables import api_keys, members


def _key_record(r: object) -> ApiKeyRecord:
    m = r._mapping  # type: ignore[attr-defined]
    return ApiKeyRecord(
        key_id=m["key_id"],
        partner_id=m["partner_id"],
        member_id=m["member_id"],
        secret_hash=m["secret_hash"],
        tables=decode_tables(m["tables"]),
        created_at=as_utc(m["created_at"]) or m["created_at"],
        revoked_at=as_utc(m["revoked_at"]),
        revoke_reason=m["revoke_reason"],
    )


def _scope_problem(tables: frozenset[str] | None, contract: Contract | None) -> str | None:
    """Why a key cannot have ``tables`` under ``contract``; None when it can.

    A key narrows its contract's tables, never widens them: the API reads the intersection
    anyway, and a scope the contract does not cover is refused here so nobody believes it works.
    """
    if tables is None:
        return None
    if not tables:
        return "an empty list gives the key no table; omit tables to follow the contract's"
    if contract is None:
        return (
            "the partner has no contract yet, and a key's tables can only narrow a contract's; "
            "create the key without tables (it follows the contract) or after the contract"
        )
    if contract.tables is None:
        return None
    outside = sorted(tables - contract.tables)
    if not outside:
        return None
    allowed = ", ".join(sorted(contract.tables)) or "none"
    return (
        f"{', '.join(outside)} not covered by contract {contract.id} (its tables: {allowed}); "
        "a key can only narrow its contract's tables"
    )


class TeamOps(ServiceBase):
    def _insert_member(
        self,
        conn: Connection,
        partner_id: int,
        name: str,
        email: str | None,
        now: datetime,
        actor: Actor,
    ) -> Member:
        mid = Repo.insert(
            conn, members, partner_id=partner_id, name=name, email=email, added_at=now
        )
        member = Repo.get_member(conn, mid)
        assert member is not None
        Repo.audit(
            conn,
            actor=actor.name,
            action="member.add",
            entity="member",
            entity_id=mid,
            partner_id=partner_id,
            after=member,
            at=now,
        )
        return member

    def add_member(
        self, partner_id: int, name: str, *, email: str | None = None, actor: Actor = SYSTEM
    ) -> Member:
        """Credential a new member of the authorized team (Art. 35 I e)."""
        now = self.now()
        with self._tx() as conn:
            self._partner_or_raise(conn, partner_id)
            return self._insert_member(conn, partner_id, name, email, now, actor)

    def remove_member(self, member_id: int, *, actor: Actor = SYSTEM) -> list[str]:
        """Remove a member from the team and revoke every key they hold; the revoked key ids."""
        now = self.now()
        with self._tx() as conn:
            before = Repo.get_member(conn, member_id)
            if before is None or before.removed_at is not None:
                raise MemberNotFound(member_id)
            conn.execute(update(members).where(members.c.id == member_id).values(removed_at=now))
            Repo.audit(
                conn,
                actor=actor.name,
                action="member.remove",
                entity="member",
                entity_id=member_id,
                partner_id=before.partner_id,
                before=before,
                after=Repo.get_member(conn, member_id),
                at=now,
            )
            held = conn.execute(
                select(api_keys.c.key_id).where(
                    api_keys.c.member_id == member_id, api_keys.c.revoked_at.is_(None)
                )
            ).scalars()
            revoked = list(held)
            for key_id in revoked:
                self._revoke(conn, key_id, "member removed from the authorized team", actor, now)
            return revoked

    def member(self, member_id: int) -> Member:
        with self.engine.connect() as conn:
            found = Repo.get_member(conn, member_id)
        if found is None:
            raise MemberNotFound(member_id)
        return found

    def key(self, key_id: str) -> ApiKeyRecord:
        with self.engine.connect() as conn:
            found = self._key(conn, key_id)
        if found is None:
            raise KeyNotFound(key_id)
        return found

    def members(self, partner_id: int, *, include_removed: bool = False) -> list[Member]:
        with self.engine.connect() as conn:
            self._partner_or_raise(conn, partner_id)
            return Repo.members(conn, partner_id, active_only=not include_removed)

    # -- API keys -----------------------------------------------------------------------------

    def create_key(
        self,
        partner_id: int,
        *,
        member_id: int | None = None,
        tables: frozenset[str] | None = None,
        actor: Actor = SYSTEM,
    ) -> str:
        """Create a key for a team member and return it in full: the only time it is visible.

        Without ``member_id`` the key goes to the partner's only member; with several members
        the caller must say whose key it is.
        """
        with self._tx() as conn:
            return self._create_key(conn, partner_id, member_id, tables, actor, self.now())

    def _create_key(
        self,
        conn: Connection,
        partner_id: int,
        member_id: int | None,
        tables: frozenset[str] | None,
        actor: Actor,
        now: datetime,
    ) -> str:
        self._partner_or_raise(conn, partner_id)
        team = Repo.members(conn, partner_id)
        if member_id is None:
            if len(team) != 1:
                raise InvalidInput(
                    "member",
                    f"partner {partner_id} has {len(team)} team members: say whose key it is "
                    "(--member ID, see `dataflow member list`)",
                )
            member_id = team[0].id
        if member_id not in {m.id for m in team}:
            raise MemberNotFound(member_id, partner_id)
        problem = _scope_problem(tables, current_contract(Repo.contracts(conn, partner_id)))
        if problem:
            raise InvalidInput("tables", problem)
        key_id, secret, full = new_key()
        conn.execute(
            api_keys.insert().values(
                key_id=key_id,
                partner_id=partner_id,
                member_id=member_id,
                secret_hash=hash_secret(secret),
                tables=encode_tables(tables),
                created_at=now,
            )
        )
        Repo.audit(
            conn,
            actor=actor.name,
            action="key.create",
            entity="key",
            entity_id=key_id,
            partner_id=partner_id,
            after=self._key(conn, key_id),
            at=now,
        )
        return full

    @staticmethod
    def _key(conn: Connection, key_id: str) -> ApiKeyRecord | None:
        row = conn.execute(select(api_keys).where(api_keys.c.key_id == key_id)).first()
        return None if row is None else _key_record(row)

    def _revoke(
        self, conn: Connection, key_id: str, reason: str, actor: Actor, now: datetime
    ) -> bool:
        before = self._key(conn, key_id)
        res = conn.execute(
            update(api_keys)
            .where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=now, revoke_reason=reason)
        )
        if not res.rowcount or before is None:
            return False
        Repo.audit(
            conn,
            actor=actor.name,
            action="key.revoke",
            entity="key",
            entity_id=key_id,
            partner_id=before.partner_id,
            before=before,
            after=self._key(conn, key_id),
            at=now,
        )
        return True

    def revoke_key(self, key_id: str, *, reason: str = "revoked", actor: Actor = SYSTEM) -> bool:
        with self._tx() as conn:
            return self._revoke(conn, key_id, reason, actor, self.now())

    def rotate_key(self, key_id: str, *, actor: Actor = SYSTEM) -> str:
        """A new key for the same member and scope; the old one stops working at once."""
        now = self.now()
        with self._tx() as conn:  # both or neither
            old = self._key(conn, key_id)
            if old is None or old.revoked_at is not None:
                raise KeyNotFound(key_id)
            contract = current_contract(Repo.contracts(conn, old.partner_id))
            problem = _scope_problem(old.tables, contract)
            if problem:  # the contract was narrowed since: the old scope is no longer grantable
                raise InvalidInput(
                    "tables",
                    f"key {key_id}'s scope: {problem}; create a new key for member "
                    f"{old.member_id} with tables the contract covers (`dataflow key create "
                    f"{old.partner_id} --member {old.member_id} --tables …`), then revoke this one",
                )
            new = self._create_key(conn, old.partner_id, old.member_id, old.tables, actor, now)
            self._revoke(conn, key_id, "rotated", actor, now)
            return new

    def keys(self, partner_id: int) -> list[ApiKeyRecord]:
        with self.engine.connect() as conn:
            self._partner_or_raise(conn, partner_id)
            rows = conn.execute(
                select(api_keys)
                .where(api_keys.c.partner_id == partner_id)
                .order_by(api_keys.c.created_at)
            ).all()
        return [_key_record(r) for r in rows]

    def credentials(self) -> list[KeyCredential]:
        """Every unrevoked key of a current team member."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    api_keys.c.key_id,
                    api_keys.c.secret_hash,
                    api_keys.c.partner_id,
                    api_keys.c.member_id,
                    api_keys.c.tables,
                )
                .join(members, members.c.id == api_keys.c.member_id)
                .where(api_keys.c.revoked_at.is_(None), members.c.removed_at.is_(None))
            ).all()
        return [
            KeyCredential(
                key_id=r[0],
                secret_hash=r[1],
                partner_id=r[2],
                member_id=r[3],
                tables=decode_tables(r[4]),
            )
            for r in rows
        ]

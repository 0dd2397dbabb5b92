"""Console sign-in: staff by their credential (or a password set from it), members by password.

A member's console password is never their API key: it is set through a one-time invitation an
operator issues (or ``dataflow member set-password``), hashed with argon2id. Sessions are rows
keyed by the SHA-256 of the cookie's token; every lookup checks that the credential or the
membership that opened the session is still there, so revoking a credential or removing a member
ends their console sessions at once. Sign-in, sign-out, invitations and password changes are
audited like every other change.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec
from sqlalchemy import Connection, RowMapping, func, select, update

from dataflow.contracts.actors import SYSTEM, Actor
from dataflow.contracts.errors import InvalidInput, MemberNotFound
from dataflow.contracts.keys import STAFF_PREFIX, parse_key, secret_matches
from dataflow.contracts.models import ConsoleUser, Role
from dataflow.contracts.passwords import (
    check_password_rules,
    hash_password,
    needs_rehash,
    new_token,
    token_hash,
    verify_password,
)
from dataflow.contracts.repository import ContractsRepository as Repo
from dataflow.contracts.repository import as_utc
from dataflow.contracts.service.base import ServiceBase
from dataflow.contracts.tables import admin_credentials, console_sessions, members

__all__ = ["INVITATION_DAYS", "LoginsOps", "SessionPolicy"]

INVITATION_DAYS = 7
_TOUCH_SECONDS = 30  # last_seen_at is written at most this often (one write per page otherwise)


class SessionPolicy(msgspec.Struct, frozen=True, kw_only=True):
    idle_minutes: float = 30  # a session unused this long ends
    max_hours: float = 12  # and none lives longer than this, used or not


class _Event(msgspec.Struct, frozen=True, kw_only=True):
    """What the audit log records of a sign-in, a sign-out or a password change."""

    via: str
    login: str | None = None


def _looks_like_staff(login: str) -> str | None:
    """The key id when ``login`` names a staff credential (``dfa_<id>`` or the id alone)."""
    key_id = login.removeprefix(f"{STAFF_PREFIX}_").split("_", 1)[0]
    is_hex = len(key_id) == 16 and all(c in "0123456789abcdef" for c in key_id)
    return key_id if is_hex else None


class LoginsOps(ServiceBase):
    # -- passwords -----------------------------------------------------------------------------

    def invite_member(
        self, member_id: int, *, days: int = INVITATION_DAYS, actor: Actor = SYSTEM
    ) -> str:
        """A one-time invitation token for a member to set their console password (shown once)."""
        now = self.now()
        token, digest = new_token()
        with self._tx() as conn:
            member = Repo.get_member(conn, member_id)
            if member is None or member.removed_at is not None:
                raise MemberNotFound(member_id)
            if not member.email:
                raise InvalidInput(
                    "email",
                    f"member {member_id} has no e-mail: the console login is the e-mail "
                    "address; record it first",
                )
            conn.execute(
                update(members)
                .where(members.c.id == member_id)
                .values(invite_hash=digest, invite_expires_at=now + timedelta(days=days))
            )
            Repo.audit(
                conn,
                actor=actor.name,
                action="member.invite",
                entity="member",
                entity_id=member_id,
                partner_id=member.partner_id,
                after=_Event(via="invitation", login=member.email),
                at=now,
            )
        return token

    def accept_invitation(self, token: str, password: str) -> ConsoleUser:
        """Set the invited member's password; the invitation is used up."""
        now = self.now()
        with self._tx() as conn:
            row = (
                conn.execute(select(members).where(members.c.invite_hash == token_hash(token)))
                .mappings()
                .first()
            )
            expires = as_utc(row["invite_expires_at"]) if row is not None else None
            if row is None or row["removed_at"] is not None or expires is None or expires < now:
                raise InvalidInput(
                    "invitation",
                    "this invitation is unknown, used or expired; ask your SEF/MG operator "
                    "for a new one",
                )
            self._set_member_password(conn, row["id"], password, f"member:{row['name']}", now)
            return self._member_user(conn, row["id"])

    def set_member_password(self, member_id: int, password: str, *, actor: Actor = SYSTEM) -> None:
        with self._tx() as conn:
            self._set_member_password(conn, member_id, password, actor.name, self.now())

    def _set_member_password(
        self, conn: Connection, member_id: int, password: str, actor: str, now: datetime
    ) -> None:
        member = Repo.get_member(conn, member_id)
        if member is None or member.removed_at is not None:
            raise MemberNotFound(member_id)
        if not member.email:
            raise InvalidInput("email", f"member {member_id} has no e-mail to sign in with")
        check_password_rules(password, member.email)
        clash = conn.execute(
            select(members.c.id).where(
                func.lower(members.c.email) == member.email.lower(),
                members.c.id != member_id,
                members.c.removed_at.is_(None),
                members.c.password_hash.is_not(None),
            )
        ).first()
        if clash is not None:
            raise InvalidInput(
                "email",
                f"{member.email} already signs in as another member; each console login needs "
                "its own e-mail address",
            )
        conn.execute(
            update(members)
            .where(members.c.id == member_id)
            .values(
                password_hash=hash_password(password),
                password_set_at=now,
                invite_hash=None,
                invite_expires_at=None,
            )
        )
        Repo.audit(
            conn,
            actor=actor,
            action="member.password",
            entity="member",
            entity_id=member_id,
            partner_id=member.partner_id,
            after=_Event(via="password", login=member.email),
            at=now,
        )

    def set_staff_password(self, key_id: str, password: str, *, actor: Actor = SYSTEM) -> str:
        """A console password for a staff credential; returns the login to use with it."""
        now = self.now()
        login = f"{STAFF_PREFIX}_{key_id}"
        check_password_rules(password, login)
        with self._tx() as conn:
            res = conn.execute(
                update(admin_credentials)
                .where(
                    admin_credentials.c.key_id == key_id, admin_credentials.c.revoked_at.is_(None)
                )
                .values(password_hash=hash_password(password), password_set_at=now)
            )
            if not res.rowcount:
                raise InvalidInput("credential", f"no active staff credential {key_id}")
            Repo.audit(
                conn,
                actor=actor.name,
                action="staff.password",
                entity="staff",
                entity_id=key_id,
                partner_id=None,
                after=_Event(via="password", login=login),
                at=now,
            )
        return login

    def member_login(self, member_id: int) -> str | None:
        """The e-mail a member signs in with (None: no console login yet)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(members.c.email, members.c.password_hash).where(members.c.id == member_id)
            ).first()
        return str(row[0]) if row is not None and row[0] and row[1] else None

    # -- signing in --------------------------------------------------------------------------

    def authenticate(self, login: str, secret: str) -> ConsoleUser | None:
        """Who ``login`` + ``secret`` is: a ``dfa_…`` credential (any login), a staff password
        (login ``dfa_<id>``) or a member's password (login = e-mail); None when nothing matches."""
        login = login.strip()
        parsed = parse_key(secret.strip(), STAFF_PREFIX)
        with self.engine.connect() as conn:
            if parsed is not None:
                row = self._staff_row(conn, parsed[0])
                ok = row is not None and secret_matches(parsed[1], str(row["secret_hash"]))
                return self._staff_user(row) if ok and row is not None else None
            key_id = _looks_like_staff(login)
            if key_id is not None:
                row = self._staff_row(conn, key_id)
                stored = str(row["password_hash"] or "") or None if row is not None else None
                ok = verify_password(secret, stored)
                return self._staff_user(row) if ok and row is not None else None
            rows = (
                conn.execute(
                    select(members.c.id, members.c.password_hash).where(
                        func.lower(members.c.email) == login.lower(),
                        members.c.removed_at.is_(None),
                        members.c.password_hash.is_not(None),
                    )
                )
                .mappings()
                .all()
            )
            if not rows:
                verify_password(secret, None)  # the same time as a real check
                return None
            for r in rows:
                if verify_password(secret, r["password_hash"]):
                    if needs_rehash(r["password_hash"]):
                        self.set_member_password(r["id"], secret)
                    return self._member_user(conn, r["id"])
            return None

    @staticmethod
    def _staff_row(conn: Connection, key_id: str) -> dict[str, object] | None:
        row = (
            conn.execute(
                select(admin_credentials).where(
                    admin_credentials.c.key_id == key_id, admin_credentials.c.revoked_at.is_(None)
                )
            )
            .mappings()
            .first()
        )
        return dict(row) if row is not None else None

    @staticmethod
    def _staff_user(row: dict[str, object]) -> ConsoleUser:
        return ConsoleUser(
            kind="staff",
            name=str(row["name"]),
            role=Role(str(row["role"])),
            staff_key_id=str(row["key_id"]),
        )

    @staticmethod
    def _member_user(conn: Connection, member_id: int) -> ConsoleUser:
        member = Repo.get_member(conn, member_id)
        if member is None:
            raise MemberNotFound(member_id)
        return ConsoleUser(
            kind="member", name=member.name, member_id=member.id, partner_id=member.partner_id
        )

    # -- sessions -------------------------------------------------------------------------------

    def open_session(self, user: ConsoleUser, *, via: str) -> str:
        """A new session for ``user``; the token (for the cookie) is returned once."""
        now = self.now()
        token, digest = new_token()
        with self._tx() as conn:
            conn.execute(
                console_sessions.insert().values(
                    token_hash=digest,
                    kind=user.kind,
                    staff_key_id=user.staff_key_id,
                    member_id=user.member_id,
                    created_at=now,
                    last_seen_at=now,
                )
            )
            Repo.audit(
                conn,
                actor=user.actor,
                action="console.sign_in",
                entity="staff" if user.is_staff else "member",
                entity_id=user.staff_key_id if user.is_staff else user.member_id,
                partner_id=user.partner_id,
                after=_Event(via=via),
                at=now,
            )
        return token

    def console_session(
        self, token: str, policy: SessionPolicy
    ) -> tuple[ConsoleUser, str | None] | None:
        """The session's user and its pending message (taken), or None when it is over."""
        now = self.now()
        digest = token_hash(token)
        with self._tx() as conn:
            row = (
                conn.execute(
                    select(console_sessions).where(
                        console_sessions.c.token_hash == digest,
                        console_sessions.c.ended_at.is_(None),
                    )
                )
                .mappings()
                .first()
            )
            if row is None:
                return None
            user = self._session_user(conn, row)
            created = as_utc(row["created_at"]) or now
            seen = as_utc(row["last_seen_at"]) or now
            expired = now - seen > timedelta(
                minutes=policy.idle_minutes
            ) or now - created > timedelta(hours=policy.max_hours)
            if user is None or expired:
                conn.execute(
                    update(console_sessions)
                    .where(console_sessions.c.token_hash == digest)
                    .values(ended_at=now)
                )
                return None
            values: dict[str, object] = {}
            if (now - seen).total_seconds() >= _TOUCH_SECONDS:
                values["last_seen_at"] = now
            if row["flash"] is not None:
                values["flash"] = None
            if values:
                conn.execute(
                    update(console_sessions)
                    .where(console_sessions.c.token_hash == digest)
                    .values(**values)
                )
            return user, row["flash"]

    def _session_user(self, conn: Connection, row: RowMapping) -> ConsoleUser | None:
        if row["kind"] == "staff":
            staff = self._staff_row(conn, row["staff_key_id"])
            return self._staff_user(staff) if staff is not None else None
        member = Repo.get_member(conn, row["member_id"])
        if member is None or member.removed_at is not None:
            return None
        return ConsoleUser(
            kind="member", name=member.name, member_id=member.id, partner_id=member.partner_id
        )

    def flash(self, token: str, message: str) -> None:
        """Leave one message for the session's next page."""
        with self._tx() as conn:
            conn.execute(
                update(console_sessions)
                .where(console_sessions.c.token_hash == token_hash(token))
                .values(flash=message[:2000])
            )

    def end_session(self, token: str, user: ConsoleUser) -> None:
        now = self.now()
        with self._tx() as conn:
            res = conn.execute(
                update(console_sessions)
                .where(
                    console_sessions.c.token_hash == token_hash(token),
                    console_sessions.c.ended_at.is_(None),
                )
                .values(ended_at=now)
            )
            if res.rowcount:
                Repo.audit(
                    conn,
                    actor=user.actor,
                    action="console.sign_out",
                    entity="staff" if user.is_staff else "member",
                    entity_id=user.staff_key_id if user.is_staff else user.member_id,
                    partner_id=user.partner_id,
                    at=now,
                )

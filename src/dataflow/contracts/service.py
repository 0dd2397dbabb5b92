"""Control-plane operations: transactions begin and commit here, at the command boundary.

Every change writes its audit entry (who, when, what, before/after) in the same transaction, so a
change without its entry cannot exist.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, select, update

from dataflow.aggregation.checkdigits import is_valid_cnpj
from dataflow.contracts.errors import (
    ContractNotFound,
    InvalidInput,
    KeyNotFound,
    MemberNotFound,
    PartnerNotFound,
    SanctionNotFound,
)
from dataflow.contracts.guards import EventFacts, apply_event, parse_terms, sandbox_window_error
from dataflow.contracts.keys import STAFF_PREFIX, hash_secret, new_key
from dataflow.contracts.lifecycle import EndReason, Event, is_sandbox, partner_status
from dataflow.contracts.models import (
    ApiKeyRecord,
    AuditEntry,
    Contact,
    Contract,
    ContractKind,
    ContractState,
    Entitlement,
    KeyCredential,
    Member,
    Partner,
    PartnerStatus,
    Plan,
    Role,
    Sanction,
    SanctionKind,
    StaffCredential,
)
from dataflow.contracts.repository import (
    ContractsRepository as Repo,
)
from dataflow.contracts.repository import (
    as_utc,
    decode_tables,
    encode_tables,
)
from dataflow.contracts.schema import ensure_schema
from dataflow.contracts.tables import (
    admin_credentials,
    api_keys,
    contacts,
    contracts,
    members,
    partners,
)
from dataflow.contracts.tables import sanctions as sanctions_table

__all__ = ["ContractsService", "current_contract"]

SAO_PAULO = ZoneInfo("America/Sao_Paulo")
_CLOSED = (ContractState.ENDED, ContractState.CANCELLED)
_IN_FORCE = (ContractState.ACTIVE, ContractState.EXTENDED, ContractState.SUSPENDED)


def current_contract(contracts_of_partner: list[Contract]) -> Contract | None:
    """The contract that governs access: the newest one in force, else the newest still open
    (a pending request), else the newest closed one."""
    in_force = [c for c in contracts_of_partner if c.state in _IN_FORCE]
    open_ = [c for c in contracts_of_partner if c.state not in _CLOSED]
    pool = in_force or open_ or contracts_of_partner
    return max(pool, key=lambda c: c.id) if pool else None


def _plan(kind: ContractKind) -> Plan:
    return Plan.SANDBOX if kind is ContractKind.SANDBOX else Plan.CONTINUOUS


def _sandbox_toml(c: Contract) -> str:
    """Sandbox terms as billing reads them: zero prices, but window and cap (Art. 38–39)."""
    lines = ['kind = "sandbox"', f"start = {c.start_date.isoformat() if c.start_date else ''}"]
    if c.end_date is not None:
        lines.append(f"end = {c.end_date.isoformat()}")
    if c.monthly_cap is not None:
        lines.append(f"cap = {c.monthly_cap}")
    return "\n".join(lines) + "\n"


def _active_suspension(sanctions: list[Sanction], now: datetime) -> Sanction | None:
    for s in sanctions:
        if (
            s.kind is SanctionKind.SUSPENSION
            and s.lifted_at is None
            and s.starts_at <= now
            and (s.until is None or now < s.until)
        ):
            return s
    return None


def derive_entitlement(
    partner: Partner, contract: Contract | None, sanctions: list[Sanction], now: datetime
) -> Entitlement:
    """What the API and meter enforce for a partner right now."""
    if contract is None:
        return Entitlement(
            partner_id=partner.id,
            plan=partner.plan,
            status=PartnerStatus.PENDING,
            status_reason="no contract or authorization yet",
            monthly_cap=partner.monthly_cap,
        )
    status = partner_status(contract.state)
    reason: str | None = None
    if status is PartnerStatus.PENDING:
        reason = f"contract {contract.id} is {contract.state} (not yet in force)"
    elif status is not PartnerStatus.ACTIVE:
        reason = f"contract {contract.id} is {contract.state}"
        if contract.end_reason:
            reason += f" ({contract.end_reason})"
    suspension = _active_suspension(sanctions, now)
    if suspension is not None and status in (PartnerStatus.ACTIVE, PartnerStatus.SUSPENDED):
        status = PartnerStatus.SUSPENDED
        until = f" until {suspension.until.isoformat()}" if suspension.until else ""
        reason = f"suspended by sanction {suspension.id}{until}: {suspension.reason}"
    return Entitlement(
        partner_id=partner.id,
        plan=_plan(contract.kind),
        status=status,
        status_reason=reason,
        monthly_cap=contract.monthly_cap,
        window_start=contract.start_date,
        window_end=contract.end_date,
        tables=contract.tables,
        rate_per_second=contract.rate_per_second,
        rate_per_minute=contract.rate_per_minute,
        contract_id=contract.id,
    )


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


class ContractsService:
    """The control plane. ``clock`` is injectable so lifecycle rules can be tested on any date."""

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Callable[[], datetime] | None = None,
        migrate: bool = True,
    ) -> None:
        self.engine = engine
        self._clock = clock or (lambda: datetime.now(UTC))
        if migrate:
            ensure_schema(engine)

    # -- time -------------------------------------------------------------------------------

    def now(self) -> datetime:
        return self._clock()

    def today(self) -> date:
        """Days (windows, deadlines) are America/Sao_Paulo days."""
        return self.now().astimezone(SAO_PAULO).date()

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    # -- partners ---------------------------------------------------------------------------

    def _partner_or_raise(self, conn: Connection, partner_id: int) -> Partner:
        p = Repo.get_partner(conn, partner_id)
        if p is None:
            raise PartnerNotFound(partner_id)
        return p

    @staticmethod
    def _check_cnpj(cnpj: str | None) -> str | None:
        if cnpj is None:
            return None
        clean = "".join(ch for ch in cnpj.upper() if ch.isalnum())
        if not is_valid_cnpj(clean):
            raise InvalidInput(
                "cnpj",
                f"{cnpj!r} is not a valid CNPJ (14 characters, numeric or alphanumeric, with "
                "matching check digits)",
            )
        return clean

    def register_partner(
        self,
        name: str,
        plan: Plan,
        *,
        cnpj: str | None = None,
        representative: str | None = None,
        email: str | None = None,
        actor: str = "system",
    ) -> Partner:
        """A partner with no contract yet: it can receive no data until one is in force."""
        clean = self._check_cnpj(cnpj)
        now = self.now()
        with self._tx() as conn:
            return self._insert_partner(
                conn, name, plan, clean, None, None, representative, email, now, actor
            )

    def _insert_partner(
        self,
        conn: Connection,
        name: str,
        plan: Plan,
        cnpj: str | None,
        cap: int | None,
        toml: str | None,
        representative: str | None,
        email: str | None,
        now: datetime,
        actor: str,
    ) -> Partner:
        if not name.strip():
            raise InvalidInput("name", "a partner needs a name")
        if (
            cnpj is not None
            and conn.execute(select(partners.c.id).where(partners.c.cnpj == cnpj)).first()
        ):
            raise InvalidInput("cnpj", f"{cnpj} is already registered")
        pid = Repo.insert(
            conn,
            partners,
            name=name,
            cnpj=cnpj,
            plan=plan.value,
            monthly_cap=cap,
            contract_toml=toml,
            created_at=now,
        )
        partner = self._partner_or_raise(conn, pid)
        Repo.audit(
            conn,
            actor=actor,
            action="partner.create",
            entity="partner",
            entity_id=pid,
            partner_id=pid,
            after=partner,
            at=now,
        )
        # The legal representative is the first member of the authorized team (Art. 35 I e).
        self._insert_member(
            conn, pid, representative or f"{name} (representative)", email, now, actor
        )
        return partner

    def create_partner(
        self,
        name: str,
        plan: Plan,
        *,
        monthly_cap: int | None = None,
        contract_toml: str | None = None,
        cnpj: str | None = None,
        actor: str = "system",
    ) -> Partner:
        """Register a partner whose contract is in force at once (the `partner create` shortcut).

        Its terms become an active contract (continuous) or authorization (sandbox): the quick
        path of the CLI and the demo; the full lifecycle starts with ``request_supply`` or
        ``authorize_sandbox`` instead.
        """
        clean = self._check_cnpj(cnpj)
        start = end = None
        if contract_toml is not None:
            start, end, terms_cap = parse_terms(contract_toml, "contract")
            monthly_cap = monthly_cap if monthly_cap is not None else terms_cap
        now = self.now()
        kind = ContractKind.SANDBOX if plan is Plan.SANDBOX else ContractKind.CONTINUOUS
        with self._tx() as conn:
            partner = self._insert_partner(
                conn, name, plan, clean, monthly_cap, contract_toml, None, None, now, actor
            )
            cid = Repo.insert(
                conn,
                contracts,
                partner_id=partner.id,
                kind=kind.value,
                state=ContractState.ACTIVE.value,
                modality=ContractKind.CONTINUOUS.value,
                terms_toml=contract_toml,
                start_date=start,
                end_date=end,
                monthly_cap=monthly_cap,
                secrecy_term_accepted=True,
                requested_at=now,
                accepted_at=now,
                created_at=now,
                updated_at=now,
            )
            contract = Repo.get_contract(conn, cid)
            Repo.audit(
                conn,
                actor=actor,
                action="contract.create",
                entity="contract",
                entity_id=cid,
                partner_id=partner.id,
                after=contract,
                at=now,
            )
            return partner

    def partner(self, partner_id: int) -> Partner:
        with self.engine.connect() as conn:
            return self._partner_or_raise(conn, partner_id)

    def partners(self) -> list[Partner]:
        with self.engine.connect() as conn:
            return Repo.partners(conn)

    def add_contact(
        self,
        partner_id: int,
        *,
        kind: str,
        name: str,
        email: str | None = None,
        phone: str | None = None,
        actor: str = "system",
    ) -> Contact:
        if kind not in ("legal", "technical", "billing"):
            raise InvalidInput("kind", f"{kind!r}: expected legal, technical or billing")
        now = self.now()
        with self._tx() as conn:
            self._partner_or_raise(conn, partner_id)
            cid = Repo.insert(
                conn,
                contacts,
                partner_id=partner_id,
                kind=kind,
                name=name,
                email=email,
                phone=phone,
                created_at=now,
            )
            contact = next(c for c in Repo.contacts(conn, partner_id) if c.id == cid)
            Repo.audit(
                conn,
                actor=actor,
                action="contact.add",
                entity="contact",
                entity_id=cid,
                partner_id=partner_id,
                after=contact,
                at=now,
            )
            return contact

    def contacts(self, partner_id: int) -> list[Contact]:
        with self.engine.connect() as conn:
            self._partner_or_raise(conn, partner_id)
            return Repo.contacts(conn, partner_id)

    # -- contracts and authorizations -------------------------------------------------------

    def request_supply(
        self,
        partner_id: int,
        kind: ContractKind,
        *,
        sla: str | None = None,
        tables: frozenset[str] | None = None,
        rate_per_second: int | None = None,
        rate_per_minute: int | None = None,
        actor: str = "system",
    ) -> Contract:
        """A paid supply request (Art. 8): it waits for the analysis fee (Art. 9)."""
        if kind is ContractKind.SANDBOX:
            raise InvalidInput("kind", "sandbox participation starts with authorize_sandbox")
        now = self.now()
        with self._tx() as conn:
            self._partner_or_raise(conn, partner_id)
            cid = Repo.insert(
                conn,
                contracts,
                partner_id=partner_id,
                kind=kind.value,
                state=ContractState.REQUESTED.value,
                modality=kind.value,
                sla=sla,
                tables=encode_tables(tables),
                rate_per_second=rate_per_second,
                rate_per_minute=rate_per_minute,
                secrecy_term_accepted=False,
                requested_at=now,
                created_at=now,
                updated_at=now,
            )
            return self._after_change(conn, None, cid, "contract.request", actor, now)

    def authorize_sandbox(
        self,
        partner_id: int,
        *,
        start: date,
        end: date,
        modality: ContractKind = ContractKind.CONTINUOUS,
        sla: str | None = None,
        secrecy_term_accepted: bool = False,
        monthly_cap: int | None = None,
        tables: frozenset[str] | None = None,
        rate_per_second: int | None = None,
        rate_per_minute: int | None = None,
        actor: str = "system",
    ) -> Contract:
        """A formal sandbox authorization (Art. 35): window ≤ 12 months (Art. 36), cap (Art. 37)."""
        if modality is ContractKind.SANDBOX:
            raise InvalidInput("modality", "continuous or on_demand (Art. 35 I b)")
        problem = sandbox_window_error(start, end)
        if problem:
            raise InvalidInput("window", problem)
        if monthly_cap is not None and monthly_cap < 0:
            raise InvalidInput("monthly_cap", "must not be negative")
        now = self.now()
        with self._tx() as conn:
            self._partner_or_raise(conn, partner_id)
            cid = Repo.insert(
                conn,
                contracts,
                partner_id=partner_id,
                kind=ContractKind.SANDBOX.value,
                state=ContractState.AUTHORIZED.value,
                modality=modality.value,
                sla=sla,
                start_date=start,
                end_date=end,
                monthly_cap=monthly_cap,
                tables=encode_tables(tables),
                rate_per_second=rate_per_second,
                rate_per_minute=rate_per_minute,
                secrecy_term_accepted=secrecy_term_accepted,
                requested_at=now,
                accepted_at=now,
                created_at=now,
                updated_at=now,
            )
            return self._after_change(conn, None, cid, "contract.authorize", actor, now)

    def accept_secrecy_term(self, contract_id: int, *, actor: str = "system") -> Contract:
        """Record the signed secrecy/LGPD commitment (Art. 35 I f)."""
        now = self.now()
        with self._tx() as conn:
            before = self._contract_or_raise(conn, contract_id, lock=True)
            Repo.update_contract(conn, contract_id, secrecy_term_accepted=True, updated_at=now)
            return self._after_change(conn, before, contract_id, "contract.secrecy", actor, now)

    def _contract_or_raise(
        self, conn: Connection, contract_id: int, *, lock: bool = False
    ) -> Contract:
        c = Repo.get_contract(conn, contract_id, lock=lock)
        if c is None:
            raise ContractNotFound(contract_id)
        return c

    def _after_change(
        self,
        conn: Connection,
        before: Contract | None,
        contract_id: int,
        action: str,
        actor: str,
        now: datetime,
    ) -> Contract:
        after = self._contract_or_raise(conn, contract_id)
        Repo.audit(
            conn,
            actor=actor,
            action=action,
            entity="contract",
            entity_id=contract_id,
            partner_id=after.partner_id,
            before=before,
            after=after,
            at=now,
        )
        self._sync_partner(conn, after.partner_id, actor, now)
        return after

    def _sync_partner(self, conn: Connection, partner_id: int, actor: str, now: datetime) -> None:
        """Mirror the current contract on the partner row (plan, cap, terms billing reads)."""
        c = current_contract(Repo.contracts(conn, partner_id))
        if c is None:
            return
        before = self._partner_or_raise(conn, partner_id)
        toml = _sandbox_toml(c) if is_sandbox(c.kind) else c.terms_toml
        values = {"plan": _plan(c.kind).value, "monthly_cap": c.monthly_cap, "contract_toml": toml}
        if (before.plan.value, before.monthly_cap, before.contract_toml) == tuple(values.values()):
            return
        Repo.update_partner(conn, partner_id, **values)
        Repo.audit(
            conn,
            actor=actor,
            action="partner.terms",
            entity="partner",
            entity_id=partner_id,
            partner_id=partner_id,
            before=before,
            after=self._partner_or_raise(conn, partner_id),
            at=now,
        )

    def transition(
        self,
        contract_id: int,
        event: Event,
        *,
        actor: str = "system",
        budget_ufemg: str | Decimal | None = None,
        terms_toml: str | None = None,
        new_end: date | None = None,
        reason: EndReason | None = None,
    ) -> Contract:
        """Apply one lifecycle event; a forbidden or refused one raises and changes nothing."""
        if event is Event.MIGRATE:
            if terms_toml is None:
                raise InvalidInput("terms", "migration needs the paid contract's terms (TOML)")
            return self.migrate_to_paid(contract_id, terms_toml, actor=actor)[0]
        now = self.now()
        with self._tx() as conn:
            before = self._contract_or_raise(conn, contract_id, lock=True)
            facts = EventFacts(
                now=now,
                today=self.today(),
                team_size=len(Repo.members(conn, before.partner_id)),
                budget_ufemg=None if budget_ufemg is None else str(budget_ufemg),
                terms_toml=terms_toml,
                new_end=new_end,
                reason=reason,
            )
            values = apply_event(before, event, facts)
            Repo.update_contract(conn, contract_id, **values)
            return self._after_change(conn, before, contract_id, f"contract.{event}", actor, now)

    def migrate_to_paid(
        self, contract_id: int, terms_toml: str, *, actor: str = "system"
    ) -> tuple[Contract, Contract]:
        """Art. 40 III: end the sandbox the day before the paid terms start; the paid contract
        (continuous, active) starts that day, so billing starts on the migration date."""
        start, end, cap = parse_terms(terms_toml, f"migration of contract {contract_id}")
        now = self.now()
        with self._tx() as conn:
            before = self._contract_or_raise(conn, contract_id, lock=True)
            facts = EventFacts(
                now=now, today=self.today(), terms_toml=terms_toml, migration_date=start
            )
            values = apply_event(before, Event.MIGRATE, facts)
            new_id = Repo.insert(
                conn,
                contracts,
                partner_id=before.partner_id,
                kind=ContractKind.CONTINUOUS.value,
                state=ContractState.ACTIVE.value,
                modality=before.modality,
                terms_toml=terms_toml,
                sla=before.sla,
                start_date=start,
                end_date=end,
                monthly_cap=cap,
                tables=encode_tables(before.tables),
                rate_per_second=before.rate_per_second,
                rate_per_minute=before.rate_per_minute,
                secrecy_term_accepted=True,
                requested_at=now,
                accepted_at=now,
                created_at=now,
                updated_at=now,
            )
            Repo.update_contract(conn, contract_id, successor_id=new_id, **values)
            ended = self._after_change(conn, before, contract_id, "contract.migrate", actor, now)
            paid = self._after_change(conn, None, new_id, "contract.create", actor, now)
            return ended, paid

    def contract(self, contract_id: int) -> Contract:
        with self.engine.connect() as conn:
            return self._contract_or_raise(conn, contract_id)

    def contracts(self, partner_id: int | None = None) -> list[Contract]:
        with self.engine.connect() as conn:
            return Repo.contracts(conn, partner_id)

    def overdue_budgets(self, today: date | None = None) -> list[Contract]:
        """Requests whose fee is paid but whose budget is late (Art. 12/13: 30 or 60 days)."""
        day = today or self.today()
        return [
            c
            for c in self.contracts()
            if c.state is ContractState.FEE_PAID and c.budget_due is not None and c.budget_due < day
        ]

    def sweep(self, *, actor: str = "scheduler") -> list[Contract]:
        """End sandbox authorizations whose window has passed (Art. 40 I)."""
        today = self.today()
        due = [
            c
            for c in self.contracts()
            if is_sandbox(c.kind)
            and c.state in (ContractState.ACTIVE, ContractState.EXTENDED, ContractState.SUSPENDED)
            and c.end_date is not None
            and c.end_date < today
        ]
        return [self.transition(c.id, Event.END, reason=EndReason.EXPIRY, actor=actor) for c in due]

    # -- authorized team --------------------------------------------------------------------

    def _insert_member(
        self,
        conn: Connection,
        partner_id: int,
        name: str,
        email: str | None,
        now: datetime,
        actor: str,
    ) -> Member:
        mid = Repo.insert(
            conn, members, partner_id=partner_id, name=name, email=email, added_at=now
        )
        member = Repo.get_member(conn, mid)
        assert member is not None
        Repo.audit(
            conn,
            actor=actor,
            action="member.add",
            entity="member",
            entity_id=mid,
            partner_id=partner_id,
            after=member,
            at=now,
        )
        return member

    def add_member(
        self, partner_id: int, name: str, *, email: str | None = None, actor: str = "system"
    ) -> Member:
        """Credential a new member of the authorized team (Art. 35 I e)."""
        now = self.now()
        with self._tx() as conn:
            self._partner_or_raise(conn, partner_id)
            return self._insert_member(conn, partner_id, name, email, now, actor)

    def remove_member(self, member_id: int, *, actor: str = "system") -> list[str]:
        """Remove a member from the team and revoke every key they hold; the revoked key ids."""
        now = self.now()
        with self._tx() as conn:
            before = Repo.get_member(conn, member_id)
            if before is None or before.removed_at is not None:
                raise MemberNotFound(member_id)
            conn.execute(update(members).where(members.c.id == member_id).values(removed_at=now))
            Repo.audit(
                conn,
                actor=actor,
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
        actor: str = "system",
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
        actor: str,
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
            actor=actor,
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
        self, conn: Connection, key_id: str, reason: str, actor: str, now: datetime
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
            actor=actor,
            action="key.revoke",
            entity="key",
            entity_id=key_id,
            partner_id=before.partner_id,
            before=before,
            after=self._key(conn, key_id),
            at=now,
        )
        return True

    def revoke_key(self, key_id: str, *, reason: str = "revoked", actor: str = "system") -> bool:
        with self._tx() as conn:
            return self._revoke(conn, key_id, reason, actor, self.now())

    def rotate_key(self, key_id: str, *, actor: str = "system") -> str:
        """A new key for the same member and scope; the old one stops working at once."""
        now = self.now()
        with self._tx() as conn:  # both or neither
            old = self._key(conn, key_id)
            if old is None or old.revoked_at is not None:
                raise KeyNotFound(key_id)
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

    # -- sanctions (Art. 45) ------------------------------------------------------------------

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

    # -- entitlements ---------------------------------------------------------------------------

    def entitlements(self) -> dict[int, Entitlement]:
        """Each partner's entitlement now, from its current contract and its sanctions."""
        now = self.now()
        with self.engine.connect() as conn:
            everyone = Repo.partners(conn)
            by_partner: dict[int, list[Contract]] = {}
            for c in Repo.contracts(conn):
                by_partner.setdefault(c.partner_id, []).append(c)
            sanctions: dict[int, list[Sanction]] = {}
            for s in Repo.sanctions(conn):
                sanctions.setdefault(s.partner_id, []).append(s)
        return {
            p.id: derive_entitlement(
                p, current_contract(by_partner.get(p.id, [])), sanctions.get(p.id, []), now
            )
            for p in everyone
        }

    def entitlement(self, partner_id: int) -> Entitlement:
        ent = self.entitlements().get(partner_id)
        if ent is None:
            raise PartnerNotFound(partner_id)
        return ent

    # -- usage ledger -------------------------------------------------------------------------

    def record_usage(self, partner_id: int, month: str, accesses: int) -> None:
        with self._tx() as conn:
            Repo.record_usage(conn, partner_id=partner_id, month=month, accesses=accesses)

    def usage(self, partner_id: int, month: str) -> int:
        with self.engine.connect() as conn:
            return Repo.usage(conn, partner_id=partner_id, month=month)

    def usage_for_month(self, month: str) -> dict[int, int]:
        with self.engine.connect() as conn:
            return Repo.usage_for_month(conn, month)

    def usage_by_month(self, partner_id: int) -> dict[str, int]:
        with self.engine.connect() as conn:
            self._partner_or_raise(conn, partner_id)
            return Repo.usage_by_month(conn, partner_id)

    # -- staff (admin/finance API) --------------------------------------------------------------

    def create_staff(self, name: str, role: Role, *, actor: str = "system") -> str:
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
                actor=actor,
                action="staff.create",
                entity="staff",
                entity_id=key_id,
                partner_id=None,
                after=cred,
                at=now,
            )
        return full

    def revoke_staff(self, key_id: str, *, actor: str = "system") -> bool:
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
                    actor=actor,
                    action="staff.revoke",
                    entity="staff",
                    entity_id=key_id,
                    partner_id=None,
                    at=now,
                )
            return bool(res.rowcount)

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

    # -- audit log ------------------------------------------------------------------------------

    def audit(
        self,
        *,
        partner_id: int | None = None,
        entity: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        limit: int = 200,
    ) -> list[AuditEntry]:
        with self.engine.connect() as conn:
            return Repo.audit_entries(
                conn, partner_id=partner_id, entity=entity, action=action, since=since, limit=limit
            )

"""Contracts and sandbox authorizations: requests, lifecycle events, migration (Art. 8–40)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Connection

from dataflow.contracts.errors import ContractNotFound, InvalidInput
from dataflow.contracts.guards import EventFacts, apply_event, parse_terms, sandbox_window_error
from dataflow.contracts.lifecycle import EndReason, Event, is_sandbox
from dataflow.contracts.models import Contract, ContractKind, ContractState, Plan
from dataflow.contracts.repository import ContractsRepository as Repo
from dataflow.contracts.repository import encode_tables
from dataflow.contracts.service.base import ServiceBase
from dataflow.contracts.tables import contracts

_CLOSED = (ContractState.ENDED, ContractState.CANCELLED)
_IN_FORCE = (ContractState.ACTIVE, ContractState.EXTENDED, ContractState.SUSPENDED)


def current_contract(contracts_of_partner: list[Contract]) -> Contract | None:
    """The contract that governs access: the newest one in force, else the newest still open
    (a pending request), else the newest closed one."""
    in_force = [c for c in contracts_of_partner if c.state in _IN_FORCE]
    open_ = [c for c in contracts_of_partner if c.state not in _CLOSED]
    pool = in_force or open_ or contracts_of_partner
    return max(pool, key=lambda c: c.id) if pool else None


def plan_of(kind: ContractKind) -> Plan:
    return Plan.SANDBOX if kind is ContractKind.SANDBOX else Plan.CONTINUOUS


def _sandbox_toml(c: Contract) -> str:
    """Sandbox terms as billing reads them: zero prices, but window and cap (Art. 38–39)."""
    lines = ['kind = "sandbox"', f"start = {c.start_date.isoformat() if c.start_date else ''}"]
    if c.end_date is not None:
        lines.append(f"end = {c.end_date.isoformat()}")
    if c.monthly_cap is not None:
        lines.append(f"cap = {c.monthly_cap}")
    return "\n".join(lines) + "\n"


class AgreementsOps(ServiceBase):
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
        values = {
            "plan": plan_of(c.kind).value,
            "monthly_cap": c.monthly_cap,
            "contract_toml": toml,
        }
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

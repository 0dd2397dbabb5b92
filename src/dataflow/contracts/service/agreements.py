"""Contracts and sandbox authorizations: requests, lifecycle events, migration (Art. 8–40)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Connection

from dataflow.contracts.actors import EVENT_ROLES, SCHEDULER, SYSTEM, Actor
from dataflow.contracts.errors import ContractNotFound, InvalidInput, RoleRequired
from dataflow.contracts.guards import EventFacts, apply_event, parse_terms, sandbox_window_error
from dataflow.contracts.lifecycle import (
    SANDBOX_MONTHS,
    EndReason,
    Event,
    add_months,
    current_contract,
    is_sandbox,
)
from dataflow.contracts.models import Contract, ContractKind, ContractState, Partner, Plan, Role
from dataflow.contracts.repository import ContractsRepository as Repo
from dataflow.contracts.repository import encode_tables
from dataflow.contracts.service.partners import PartnersOps
from dataflow.contracts.tables import contracts
from dataflow.contracts.terms import ContractTerms

_CLOSED = (ContractState.ENDED, ContractState.CANCELLED)


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


def _check_rates(rate_per_second: int | None, rate_per_minute: int | None) -> None:
    """A key's rate limit is a positive number of requests; zero or less is no limit at all."""
    for name, value in (("rate_per_second", rate_per_second), ("rate_per_minute", rate_per_minute)):
        if value is not None and value < 1:
            raise InvalidInput(name, f"{value}: a rate limit is at least 1 (omit it for none)")


class AgreementsOps(PartnersOps):
    def request_supply(
        self,
        partner_id: int,
        kind: ContractKind,
        *,
        sla: str | None = None,
        tables: frozenset[str] | None = None,
        rate_per_second: int | None = None,
        rate_per_minute: int | None = None,
        actor: Actor = SYSTEM,
    ) -> Contract:
        """A paid supply request (Art. 8): it waits for the analysis fee (Art. 9)."""
        if kind is ContractKind.SANDBOX:
            raise InvalidInput("kind", "sandbox participation starts with authorize_sandbox")
        _check_rates(rate_per_second, rate_per_minute)
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
        actor: Actor = SYSTEM,
    ) -> Contract:
        """A formal sandbox authorization (Art. 35): window ≤ 12 months (Art. 36), cap (Art. 37)."""
        now = self.now()
        with self._tx() as conn:
            return self._authorize_in(
                conn,
                partner_id,
                start=start,
                end=end,
                modality=modality,
                sla=sla,
                secrecy_term_accepted=secrecy_term_accepted,
                monthly_cap=monthly_cap,
                tables=tables,
                rate_per_second=rate_per_second,
                rate_per_minute=rate_per_minute,
                actor=actor,
                now=now,
            )

    def create_partner(
        self,
        name: str,
        plan: Plan,
        *,
        monthly_cap: int | None = None,
        contract_toml: str | None = None,
        cnpj: str | None = None,
        start: date | None = None,
        end: date | None = None,
        representative: str | None = None,
        actor: Actor = SYSTEM,
    ) -> Partner:
        """Register a partner whose contract is in force at once (the `partner create` shortcut).

        The short path takes the long one's guards. A sandbox is authorized (a window of 12
        months from today unless ``start``/``end`` or the terms say otherwise; ≤ 12 months,
        Art. 36), its secrecy term recorded as signed by the representative (the first team
        member), then activated (Art. 35 I e–f). A continuous contract's priced terms need
        finance. Terms whose ``kind`` contradicts ``plan`` are refused.
        """
        clean = self._check_cnpj(cnpj)
        terms = None if contract_toml is None else ContractTerms.from_toml(contract_toml)
        if terms is not None and terms.kind is not plan:
            raise InvalidInput(
                "plan",
                f"--plan {plan} contradicts the contract file (kind = {terms.kind!r}): "
                "use the plan the terms describe",
            )
        signer = representative or f"{name} (representative)"
        now = self.now()
        if plan is Plan.SANDBOX:
            first = start or (terms.start if terms else self.today())
            last = end or (terms.end if terms and terms.end else None)
            last = last or add_months(first, SANDBOX_MONTHS)
            cap = monthly_cap if monthly_cap is not None else (terms.cap if terms else None)
            with self._tx() as conn:
                partner = self._insert_partner(
                    conn, name, plan, clean, cap, None, signer, None, now, actor
                )
                c = self._authorize_in(
                    conn,
                    partner.id,
                    start=first,
                    end=last,
                    modality=ContractKind.CONTINUOUS,
                    sla=None,
                    secrecy_term_accepted=False,
                    monthly_cap=cap,
                    tables=None,
                    rate_per_second=None,
                    rate_per_minute=None,
                    actor=actor,
                    now=now,
                )
                self._accept_secrecy_in(conn, c.id, signer, actor, now)
                self.transition_in(conn, c.id, Event.ACTIVATE, actor=actor)
                return self._partner_or_raise(conn, partner.id)
        if start is not None or end is not None:
            raise InvalidInput("window", "--start/--end are a sandbox's; paid terms carry dates")
        if contract_toml is not None:
            actor.require(Role.FINANCE, action="putting priced contract terms in force")
        with self._tx() as conn:
            partner = self._insert_partner(
                conn, name, plan, clean, monthly_cap, None, signer, None, now, actor
            )
            cid = Repo.insert(
                conn,
                contracts,
                partner_id=partner.id,
                kind=ContractKind.CONTINUOUS.value,
                state=ContractState.ACTIVE.value,
                modality=ContractKind.CONTINUOUS.value,
                terms_toml=contract_toml,
                start_date=terms.start if terms else None,
                end_date=terms.end if terms else None,
                monthly_cap=monthly_cap if monthly_cap is not None else (terms and terms.cap),
                secrecy_term_accepted=True,
                secrecy_signed_by=signer,
                requested_at=now,
                accepted_at=now,
                created_at=now,
                updated_at=now,
            )
            self._after_change(conn, None, cid, "contract.create", actor, now)
            return self._partner_or_raise(conn, partner.id)

    def _authorize_in(
        self,
        conn: Connection,
        partner_id: int,
        *,
        start: date,
        end: date,
        modality: ContractKind,
        sla: str | None,
        secrecy_term_accepted: bool,
        monthly_cap: int | None,
        tables: frozenset[str] | None,
        rate_per_second: int | None,
        rate_per_minute: int | None,
        actor: Actor,
        now: datetime,
    ) -> Contract:
        if modality is ContractKind.SANDBOX:
            raise InvalidInput("modality", "continuous or on_demand (Art. 35 I b)")
        problem = sandbox_window_error(start, end)
        if problem:
            raise InvalidInput("window", problem)
        if monthly_cap is not None and monthly_cap < 0:
            raise InvalidInput("monthly_cap", "must not be negative")
        _check_rates(rate_per_second, rate_per_minute)
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

    def accept_secrecy_term(
        self, contract_id: int, *, signed_by: str | None = None, actor: Actor = SYSTEM
    ) -> Contract:
        """Record the signed secrecy/LGPD commitment (Art. 35 I f) and who signed it."""
        now = self.now()
        with self._tx() as conn:
            return self._accept_secrecy_in(conn, contract_id, signed_by, actor, now)

    def _accept_secrecy_in(
        self,
        conn: Connection,
        contract_id: int,
        signed_by: str | None,
        actor: Actor,
        now: datetime,
    ) -> Contract:
        before = self._contract_or_raise(conn, contract_id, lock=True)
        Repo.update_contract(
            conn,
            contract_id,
            secrecy_term_accepted=True,
            secrecy_signed_by=signed_by,
            updated_at=now,
        )
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
        actor: Actor,
        now: datetime,
    ) -> Contract:
        after = self._contract_or_raise(conn, contract_id)
        Repo.audit(
            conn,
            actor=actor.name,
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

    def _sync_partner(self, conn: Connection, partner_id: int, actor: Actor, now: datetime) -> None:
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
            actor=actor.name,
            action="partner.terms",
            entity="partner",
            entity_id=partner_id,
            partner_id=partner_id,
            before=before,
            after=self._partner_or_raise(conn, partner_id),
            at=now,
        )

    def _priced_terms(
        self, c: Contract, event: Event, terms_toml: str | None, actor: Actor
    ) -> str | None:
        """The terms an activation or migration puts in force, with finance's sign-off.

        Terms set prices: finance may give any; anyone else only the exact terms finance
        approved on the contract (``approve_terms``), which are also the default.
        """
        if event not in (Event.ACTIVATE, Event.MIGRATE):
            return terms_toml
        if terms_toml is None:
            return c.approved_terms_toml
        if not actor.holds(Role.FINANCE) and terms_toml != c.approved_terms_toml:
            raise RoleRequired(
                f"putting contract terms (prices) in force on contract {c.id} without finance's "
                "approval of these exact terms (`contract approve-terms`)",
                [Role.FINANCE.value],
                actor.name,
                actor.role.value if actor.role else "system",
            )
        return terms_toml

    def approve_terms(
        self, contract_id: int, terms_toml: str, *, actor: Actor = SYSTEM
    ) -> Contract:
        """Finance's sign-off on the priced terms an operator may then activate or migrate to."""
        actor.require(Role.FINANCE, action="approving contract terms (prices)")
        parse_terms(terms_toml, f"approved for contract {contract_id}")  # valid terms only
        now = self.now()
        with self._tx() as conn:
            before = self._contract_or_raise(conn, contract_id, lock=True)
            if before.state in _CLOSED:
                raise InvalidInput("contract", f"contract {contract_id} is {before.state}")
            Repo.update_contract(conn, contract_id, approved_terms_toml=terms_toml, updated_at=now)
            return self._after_change(
                conn, before, contract_id, "contract.approve_terms", actor, now
            )

    def transition(
        self,
        contract_id: int,
        event: Event,
        *,
        actor: Actor = SYSTEM,
        budget_ufemg: str | Decimal | None = None,
        terms_toml: str | None = None,
        new_end: date | None = None,
        reason: EndReason | None = None,
    ) -> Contract:
        """Apply one lifecycle event; a forbidden or refused one raises and changes nothing."""
        actor.require(*EVENT_ROLES[event], action=f"contract event '{event}'")
        if event is Event.MIGRATE:
            return self.migrate_to_paid(contract_id, terms_toml, actor=actor)[0]
        with self._tx() as conn:
            return self.transition_in(
                conn,
                contract_id,
                event,
                actor=actor,
                budget_ufemg=budget_ufemg,
                terms_toml=terms_toml,
                new_end=new_end,
                reason=reason,
            )

    def transition_in(
        self,
        conn: Connection,
        contract_id: int,
        event: Event,
        *,
        actor: Actor,
        budget_ufemg: str | Decimal | None = None,
        terms_toml: str | None = None,
        new_end: date | None = None,
        reason: EndReason | None = None,
    ) -> Contract:
        """``transition`` inside the caller's transaction (billing: a DAE's payment moves the
        request on in the payment's own transaction)."""
        actor.require(*EVENT_ROLES[event], action=f"contract event '{event}'")
        now = self.now()
        before = self._contract_or_raise(conn, contract_id, lock=True)
        facts = EventFacts(
            now=now,
            today=self.today(),
            team_size=len(Repo.members(conn, before.partner_id)),
            budget_ufemg=None if budget_ufemg is None else str(budget_ufemg),
            terms_toml=self._priced_terms(before, event, terms_toml, actor),
            new_end=new_end,
            reason=reason,
        )
        values = apply_event(before, event, facts)
        Repo.update_contract(conn, contract_id, **values)
        return self._after_change(conn, before, contract_id, f"contract.{event}", actor, now)

    def migrate_to_paid(
        self, contract_id: int, terms_toml: str | None = None, *, actor: Actor = SYSTEM
    ) -> tuple[Contract, Contract]:
        """Art. 40 III: end the sandbox the day before the paid terms start; the paid contract
        (continuous, active) starts that day, so billing starts on the migration date."""
        actor.require(*EVENT_ROLES[Event.MIGRATE], action="contract event 'migrate'")
        now = self.now()
        with self._tx() as conn:
            before = self._contract_or_raise(conn, contract_id, lock=True)
            terms_toml = self._priced_terms(before, Event.MIGRATE, terms_toml, actor)
            if terms_toml is None:
                raise InvalidInput(
                    "terms",
                    "migration needs the paid contract's terms (TOML), given or approved by "
                    "finance on the contract",
                )
            start, end, cap = parse_terms(terms_toml, f"migration of contract {contract_id}")
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
                secrecy_signed_by=before.secrecy_signed_by,
                requested_at=now,
                accepted_at=now,
                created_at=now,
                updated_at=now,
            )
            Repo.update_contract(conn, contract_id, successor_id=new_id, **values)
            ended = self._after_change(conn, before, contract_id, "contract.migrate", actor, now)
            paid = self._after_change(conn, None, new_id, "contract.create", actor, now)
            return ended, paid

    def contract_in(self, conn: Connection, contract_id: int) -> Contract:
        """A contract read (and locked) inside the caller's transaction."""
        return self._contract_or_raise(conn, contract_id, lock=True)

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

    def sweep(self, *, actor: Actor = SCHEDULER) -> list[Contract]:
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

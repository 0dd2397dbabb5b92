"""Partners and their contacts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select

from dataflow.contracts.errors import InvalidInput, PartnerNotFound
from dataflow.contracts.guards import parse_terms
from dataflow.contracts.models import Contact, ContractKind, ContractState, Partner, Plan
from dataflow.contracts.repository import ContractsRepository as Repo
from dataflow.contracts.service.team import TeamOps
from dataflow.contracts.tables import contacts, contracts, partners
from dataflow.invoices.checkdigits import is_valid_cnpj


class PartnersOps(TeamOps):
    """A partner is created with its first team member, its legal representative."""

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

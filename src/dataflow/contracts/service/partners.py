"""Partners and their contacts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select

from dataflow.contracts.actors import SYSTEM, Actor
from dataflow.contracts.errors import InvalidInput, PartnerNotFound
from dataflow.contracts.models import Contact, Partner, Plan
from dataflow.contracts.repository import ContractsRepository as Repo
from dataflow.contracts.service.team import TeamOps
from dataflow.contracts.tables import contacts, partners
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
        actor: Actor = SYSTEM,
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
        actor: Actor,
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
            actor=actor.name,
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
        actor: Actor = SYSTEM,
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
                actor=actor.name,
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

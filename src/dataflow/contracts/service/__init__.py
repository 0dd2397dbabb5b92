"""Control-plane operations: transactions begin and commit here, at the command boundary.

Every change writes its audit entry (who, when, what, before/after) in the same transaction, so a
change without its entry cannot exist. The operations live in one module per concern;
``ContractsService`` composes them.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from dataflow.contracts.errors import PartnerNotFound
from dataflow.contracts.lifecycle import current_contract
from dataflow.contracts.models import AuditEntry, Contract, Entitlement, Sanction
from dataflow.contracts.repository import ContractsRepository as Repo
from dataflow.contracts.service.agreements import AgreementsOps
from dataflow.contracts.service.entitlements import derive_entitlement
from dataflow.contracts.service.logins import LoginsOps, SessionPolicy
from dataflow.contracts.service.sanctions import SanctionsOps
from dataflow.contracts.service.staff import StaffOps

__all__ = ["ContractsService", "SessionPolicy", "current_contract", "derive_entitlement"]


class ContractsService(AgreementsOps, SanctionsOps, StaffOps, LoginsOps):
    """The control plane. ``clock`` is injectable so lifecycle rules can be tested on any date."""

    # -- entitlements ---------------------------------------------------------------------------

    def entitlements(self, partner_ids: Collection[int] | None = None) -> dict[int, Entitlement]:
        """Each partner's entitlement now (or only ``partner_ids``'), from its current contract
        and its sanctions."""
        now = self.now()
        with self.engine.connect() as conn:
            everyone = Repo.partners(conn, partner_ids)
            by_partner: dict[int, list[Contract]] = {}
            for c in Repo.contracts(conn, partner_ids=partner_ids):
                by_partner.setdefault(c.partner_id, []).append(c)
            sanctions: dict[int, list[Sanction]] = {}
            for s in Repo.sanctions(conn, partner_ids=partner_ids):
                sanctions.setdefault(s.partner_id, []).append(s)
        return {
            p.id: derive_entitlement(
                p, current_contract(by_partner.get(p.id, [])), sanctions.get(p.id, []), now
            )
            for p in everyone
        }

    def entitlement(self, partner_id: int) -> Entitlement:
        """One partner's entitlement now (reads only that partner's rows)."""
        with self.engine.connect() as conn:
            partner = Repo.get_partner(conn, partner_id)
            if partner is None:
                raise PartnerNotFound(partner_id)
            contract = current_contract(Repo.contracts(conn, partner_id))
            sanctions = Repo.sanctions(conn, partner_id)
        return derive_entitlement(partner, contract, sanctions, self.now())

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

    def usage_totals(self) -> dict[str, int]:
        """Settled accesses of every partner, per month (the transparency page's series)."""
        with self.engine.connect() as conn:
            return Repo.usage_totals(conn)

    def usage_by_month(self, partner_id: int) -> dict[str, int]:
        with self.engine.connect() as conn:
            self._partner_or_raise(conn, partner_id)
            return Repo.usage_by_month(conn, partner_id)

    # -- audit log ------------------------------------------------------------------------------

    def audit(
        self,
        *,
        partner_id: int | None = None,
        entity: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        limit: int = 200,
        before_id: int | None = None,
        newest_first: bool = False,
    ) -> list[AuditEntry]:
        with self.engine.connect() as conn:
            return Repo.audit_entries(
                conn,
                partner_id=partner_id,
                entity=entity,
                action=action,
                since=since,
                limit=limit,
                before_id=before_id,
                newest_first=newest_first,
            )

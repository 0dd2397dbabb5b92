"""Control-plane operations: transactions begin and commit here, at the command boundary."""

from __future__ import annotations

import tomllib
from datetime import UTC, date, datetime

from sqlalchemy import Engine

from dataflow.contracts.errors import PartnerNotFound
from dataflow.contracts.keys import hash_secret, new_key
from dataflow.contracts.models import ApiKeyRecord, Entitlement, KeyCredential, Partner, Plan
from dataflow.contracts.repository import ContractsRepository

__all__ = ["ContractsService"]


def _entitlement(partner: Partner) -> Entitlement:
    start = end = None
    if partner.contract_toml:
        terms = tomllib.loads(partner.contract_toml)
        start, end = terms.get("start"), terms.get("end")
    return Entitlement(
        partner_id=partner.id,
        plan=partner.plan,
        monthly_cap=partner.monthly_cap,
        window_start=start if isinstance(start, date) else None,
        window_end=end if isinstance(end, date) else None,
    )


class ContractsService:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        ContractsRepository.create_schema(engine)

    def create_partner(
        self,
        name: str,
        plan: Plan,
        *,
        monthly_cap: int | None = None,
        contract_toml: str | None = None,
    ) -> Partner:
        with self.engine.begin() as conn:
            return ContractsRepository.add_partner(
                conn, name=name, plan=plan, monthly_cap=monthly_cap, contract_toml=contract_toml
            )

    def create_key(self, partner_id: int) -> str:
        """Create a key for the partner and return it in full: the only time it is visible."""
        key_id, secret, full = new_key()
        with self.engine.begin() as conn:
            if ContractsRepository.get_partner(conn, partner_id) is None:
                raise PartnerNotFound(partner_id)
            ContractsRepository.add_key(
                conn,
                ApiKeyRecord(
                    key_id=key_id,
                    partner_id=partner_id,
                    secret_hash=hash_secret(secret),
                    created_at=datetime.now(UTC),
                ),
            )
        return full

    def revoke_key(self, key_id: str) -> bool:
        with self.engine.begin() as conn:
            return ContractsRepository.revoke_key(conn, key_id)

    def record_usage(self, partner_id: int, month: str, accesses: int) -> None:
        with self.engine.begin() as conn:
            ContractsRepository.record_usage(
                conn, partner_id=partner_id, month=month, accesses=accesses
            )

    def usage(self, partner_id: int, month: str) -> int:
        with self.engine.connect() as conn:
            return ContractsRepository.usage(conn, partner_id=partner_id, month=month)

    def usage_for_month(self, month: str) -> dict[int, int]:
        with self.engine.connect() as conn:
            return ContractsRepository.usage_for_month(conn, month)

    def credentials(self) -> list[KeyCredential]:
        with self.engine.connect() as conn:
            return ContractsRepository.credentials(conn)

    def entitlements(self) -> dict[int, Entitlement]:
        """Each partner's current entitlement (plan, cap, window from its contract terms)."""
        with self.engine.connect() as conn:
            partners = ContractsRepository.partners(conn)
        return {p.id: _entitlement(p) for p in partners}

    def partner(self, partner_id: int) -> Partner:
        with self.engine.connect() as conn:
            p = ContractsRepository.get_partner(conn, partner_id)
        if p is None:
            raise PartnerNotFound(partner_id)
        return p

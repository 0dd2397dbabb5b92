"""Control-plane errors: they carry what they are about and know nothing of HTTP."""

from __future__ import annotations

__all__ = ["ContractsError", "PartnerNotFound"]


class ContractsError(Exception):
    """Base of control-plane errors."""


class PartnerNotFound(ContractsError):
    def __init__(self, partner_id: int) -> None:
        super().__init__(f"partner {partner_id} does not exist (see `dataflow partner list`)")
        self.partner_id = partner_id

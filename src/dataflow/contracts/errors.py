"""Control-plane errors: they carry what they are about and know nothing of HTTP."""

from __future__ import annotations

__all__ = [
    "ContractInvalid",
    "ContractNotFound",
    "ContractsError",
    "ForbiddenTransition",
    "InvalidInput",
    "KeyNotFound",
    "MemberNotFound",
    "NotPermitted",
    "PartnerNotFound",
    "RoleRequired",
    "SanctionNotFound",
    "SchemaNotMigrated",
]


class ContractsError(Exception):
    """Base of control-plane errors."""


class PartnerNotFound(ContractsError):
    def __init__(self, partner_id: int) -> None:
        super().__init__(f"partner {partner_id} does not exist (see `dataflow partner list`)")
        self.partner_id = partner_id


class ContractNotFound(ContractsError):
    def __init__(self, contract_id: int) -> None:
        super().__init__(f"contract {contract_id} does not exist (see `dataflow contract list`)")
        self.contract_id = contract_id


class MemberNotFound(ContractsError):
    def __init__(self, member_id: int, partner_id: int | None = None) -> None:
        where = f" of partner {partner_id}" if partner_id is not None else ""
        super().__init__(
            f"member {member_id}{where} does not exist or was removed from the authorized team "
            "(see `dataflow member list PARTNER`)"
        )
        self.member_id = member_id


class KeyNotFound(ContractsError):
    def __init__(self, key_id: str) -> None:
        super().__init__(f"no active key {key_id} (see `dataflow key list PARTNER`)")
        self.key_id = key_id


class SanctionNotFound(ContractsError):
    def __init__(self, sanction_id: int) -> None:
        super().__init__(f"no liftable sanction {sanction_id} (see `dataflow sanction list`)")
        self.sanction_id = sanction_id


class InvalidInput(ContractsError):
    """A value the control plane cannot accept (bad CNPJ, window too long, …)."""

    def __init__(self, what: str, problem: str) -> None:
        super().__init__(f"{what}: {problem}")
        self.what = what
        self.problem = problem


class ForbiddenTransition(ContractsError):
    """A lifecycle event that the current state does not allow; nothing was changed."""

    def __init__(self, contract_id: int, state: str, event: str, allowed: list[str]) -> None:
        options = ", ".join(allowed) if allowed else "none (the contract is closed)"
        super().__init__(
            f"contract {contract_id} is {state}: '{event}' is not allowed from there "
            f"(allowed: {options}); nothing was changed"
        )
        self.contract_id = contract_id
        self.state = state
        self.event = event
        self.allowed = allowed


class NotPermitted(ContractsError):
    """A guard refused the event (e.g. sandbox window beyond 18 months); nothing was changed."""

    def __init__(self, contract_id: int, event: str, reason: str) -> None:
        super().__init__(
            f"contract {contract_id}: '{event}' refused: {reason}; nothing was changed"
        )
        self.contract_id = contract_id
        self.event = event
        self.reason = reason


class ContractInvalid(ContractsError):
    """Contract terms (TOML) that do not parse or break a rule of the format."""

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"contract {source}: {problem}")
        self.source = source
        self.problem = problem


class RoleRequired(ContractsError):
    """The actor's staff role may not do this (separation of duties); nothing was changed."""

    def __init__(self, action: str, roles: list[str], actor: str, role: str) -> None:
        needed = " or ".join(roles)
        super().__init__(
            f"{action} needs the {needed} role; {actor} acts as {role}. Nothing was changed: "
            f"ask a {needed} colleague (on the CLI, DATAFLOW_STAFF_TOKEN names who acts)"
        )
        self.action = action
        self.roles = roles
        self.actor = actor
        self.role = role


class SchemaNotMigrated(RuntimeError):
    """The database is not where the code needs it: tables defined in code that no migration
    creates, or a schema behind the code that the connected role may not migrate. An operator's
    step, not a control-plane refusal (so not a ``ContractsError``)."""

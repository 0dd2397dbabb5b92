"""Who acts on the control plane: the name the audit log records and the role they hold.

Separation of duties (README, "Roles"): operators (STI) run partners, contracts, teams, keys,
warnings and suspensions; finance (SAIF) owns money — the analysis fee, budgets and their
acceptance, contract terms that set prices, Art. 45 III fines (imposing and lifting them) and
every billing action; auditors change nothing. The services check the role themselves, so the
rule holds whichever door a call comes in by (admin API, CLI, console). An actor without a role
is the system itself (the scheduler, the demo, tests): only code can make one.
"""

from __future__ import annotations

from dataclasses import dataclass

from dataflow.contracts.errors import RoleRequired
from dataflow.contracts.lifecycle import Event
from dataflow.contracts.models import Role

__all__ = ["EVENT_ROLES", "SCHEDULER", "SYSTEM", "Actor"]


@dataclass(frozen=True, slots=True)
class Actor:
    name: str  # as the audit log names it: "staff:Ana(finance)", "cli:root", "scheduler"
    role: Role | None = None  # None: the system itself, trusted with every role

    def require(self, *roles: Role, action: str) -> None:
        """Raise ``RoleRequired`` unless this actor holds one of ``roles``."""
        if self.role is not None and self.role not in roles:
            raise RoleRequired(action, [r.value for r in roles], self.name, self.role.value)

    def holds(self, role: Role) -> bool:
        return self.role is None or self.role is role


SYSTEM = Actor("system")
SCHEDULER = Actor("scheduler")


# Who may fire each lifecycle event. Money events are finance's (Art. 9 fee, Art. 12/13 budget,
# Art. 14 acceptance); putting a contract in force or migrating it is the operators' or finance's,
# and priced terms need finance's sign-off besides (``AgreementsOps.transition``).
EVENT_ROLES: dict[Event, tuple[Role, ...]] = {
    **dict.fromkeys(Event, (Role.OPERATOR,)),
    Event.PAY_FEE: (Role.FINANCE,),
    Event.ISSUE_BUDGET: (Role.FINANCE,),
    Event.ACCEPT: (Role.FINANCE,),
    Event.ACTIVATE: (Role.OPERATOR, Role.FINANCE),
    Event.MIGRATE: (Role.OPERATOR, Role.FINANCE),
}

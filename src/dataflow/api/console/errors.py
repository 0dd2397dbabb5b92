"""Domain errors said in Portuguese: what happened, what was expected, what to do.

The services' errors carry their objects (and an English message for logs and the APIs); the
console words them for a person from those objects.
"""

from __future__ import annotations

from dataflow.billing.errors import (
    BillingError,
    InvoiceNotFound,
    InvoiceStateError,
    PaymentMismatch,
    UfemgUnknown,
)
from dataflow.contracts.errors import (
    ContractInvalid,
    ContractNotFound,
    ContractsError,
    ForbiddenTransition,
    InvalidInput,
    KeyNotFound,
    MemberNotFound,
    NotPermitted,
    PartnerNotFound,
    RoleRequired,
    SanctionNotFound,
)

__all__ = ["DomainError", "explain"]

DomainError = (ContractsError, BillingError)

_ROLES = {"operator": "operação", "finance": "financeiro", "auditor": "auditoria"}
_FIELDS = {
    "password": "senha",
    "email": "e-mail",
    "name": "nome",
    "cnpj": "CNPJ",
    "reason": "motivo",
    "amount": "valor",
    "days": "dias",
    "until": "prazo",
    "window": "janela de autorização",
    "member": "membro",
    "invitation": "convite",
    "credential": "credencial",
    "terms": "termos do contrato",
    "budget": "orçamento",
}


def explain(error: Exception) -> str:
    """One sentence or two for the person who asked for the action."""
    if isinstance(error, RoleRequired):
        needed = " ou ".join(_ROLES.get(r, r) for r in error.roles)
        return (
            f"Esta ação ({error.action}) é do perfil {needed}; o seu é "
            f"{_ROLES.get(error.role, error.role)}. Nada foi alterado: peça a um colega do "
            f"perfil {needed}."
        )
    if isinstance(error, ForbiddenTransition):
        allowed = ", ".join(error.allowed) or "nenhum (o contrato está encerrado)"
        return (
            f"O contrato {error.contract_id} está em “{error.state}”: o evento “{error.event}” "
            f"não é permitido nesse estado (permitidos: {allowed}). Nada foi alterado."
        )
    if isinstance(error, NotPermitted):
        return (
            f"O evento “{error.event}” do contrato {error.contract_id} foi recusado: "
            f"{error.reason}. Nada foi alterado."
        )
    if isinstance(error, InvalidInput):
        field = _FIELDS.get(error.what, error.what)
        return f"Valor não aceito em “{field}”: {error.problem}. Corrija e envie de novo."
    if isinstance(error, ContractInvalid):
        return f"Os termos do contrato não são válidos: {error.problem}. Corrija o TOML."
    if isinstance(error, PartnerNotFound):
        return f"O parceiro {error.partner_id} não existe."
    if isinstance(error, ContractNotFound):
        return f"O contrato {error.contract_id} não existe."
    if isinstance(error, MemberNotFound):
        return f"O membro {error.member_id} não existe ou já saiu da equipe autorizada."
    if isinstance(error, KeyNotFound):
        return f"A chave {error.key_id} não existe ou já foi revogada."
    if isinstance(error, SanctionNotFound):
        return f"A sanção {error.sanction_id} não existe ou já foi levantada."
    if isinstance(error, InvoiceStateError):
        return (
            f"A fatura {error.invoice_id} está “{error.status}”: não é possível "
            f"{error.wanted}. Nada foi alterado."
        )
    if isinstance(error, InvoiceNotFound):
        return f"Fatura não encontrada ({error.ref})."
    if isinstance(error, PaymentMismatch):
        return (
            f"Pagamento do DAE {error.reference} não registrado: {error.problem}. "
            "Confira o número de referência e o valor."
        )
    if isinstance(error, UfemgUnknown):
        return (
            f"Não há valor da UFEMG para {error.year}: inclua o valor publicado pela SEF/MG em "
            "datasets/ufemg.csv e execute de novo."
        )
    return f"A ação foi recusada: {error}"

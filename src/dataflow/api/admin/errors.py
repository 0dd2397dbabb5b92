"""Control-plane errors as RFC 9457 problems (used by the admin and account routers)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response

from dataflow.api.errors import Problem
from dataflow.billing.errors import BillingError
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

__all__ = ["contracts_exception_handlers"]

_NOT_FOUND = (PartnerNotFound, ContractNotFound, MemberNotFound, KeyNotFound, SanctionNotFound)


def _contracts_error(request: Request[Any, Any, Any], exc: ContractsError) -> Response[bytes]:
    if isinstance(exc, RoleRequired):
        return Problem(
            403, "role-forbidden", "Not allowed for your role", str(exc), role=exc.role
        ).to_response(request)
    if isinstance(exc, _NOT_FOUND):
        return Problem(404, "not-found", "Not found", str(exc)).to_response(request)
    if isinstance(exc, ForbiddenTransition):
        return Problem(
            409,
            "forbidden-transition",
            "Transition not allowed",
            str(exc),
            state=exc.state,
            event=exc.event,
            allowed=exc.allowed,
        ).to_response(request)
    if isinstance(exc, NotPermitted):
        return Problem(409, "transition-refused", "Transition refused", str(exc)).to_response(
            request
        )
    if isinstance(exc, ContractInvalid):
        return Problem(422, "invalid-terms", "Invalid contract terms", str(exc)).to_response(
            request
        )
    if isinstance(exc, InvalidInput):
        return Problem(422, "invalid-input", "Invalid input", str(exc), field=exc.what).to_response(
            request
        )
    return Problem(400, "control-plane-error", "Request refused", str(exc)).to_response(request)


def _billing_error(request: Request[Any, Any, Any], exc: BillingError) -> Response[bytes]:
    return Problem(422, "invalid-terms", "Invalid contract terms", str(exc)).to_response(request)


contracts_exception_handlers: dict[type[Exception] | int, Any] = {
    ContractsError: _contracts_error,
    BillingError: _billing_error,
}

"""What every route module shares: the app state, authentication, conditional requests, specs."""

from __future__ import annotations

from typing import Any, cast

from litestar import Request
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.types import Scope

from dataflow.api.auth import Caller
from dataflow.api.errors import PROBLEM_JSON, ProblemDetail
from dataflow.api.observe import CALLER_KEY
from dataflow.api.state import ApiState

__all__ = [
    "api_state",
    "authenticate",
    "authenticate_scope",
    "document_problems",
    "not_modified",
    "problems",
]

_DESCRIPTIONS = {
    400: "Malformed query parameter (type invalid-query) or request",
    401: "No key, or an unknown or revoked key",
    403: "Suspended, ended, outside the authorization window, or table not entitled",
    404: "No such table or resource",
    406: "None of the formats in Accept can be produced",
    409: "The change is not allowed in the current state (a refused transition)",
    414: "URI too long",
    422: "Cursor from another release or query",
    429: "Monthly cap or rate limit reached (Retry-After, RateLimit headers)",
    500: "Server failure (the access is not billed)",
    503: "Query timed out, server busy, or not ready",
}


def problems(*codes: int) -> dict[int, ResponseSpec]:
    """OpenAPI responses for the given statuses, each an RFC 9457 problem document."""
    return {
        code: ResponseSpec(
            data_container=ProblemDetail,
            media_type=PROBLEM_JSON,
            description=_DESCRIPTIONS[code],
        )
        for code in (*codes, 414, 500)
    }


def document_problems(handlers: list[Any], *codes: int) -> list[Any]:
    """Declare the problem responses a group of handlers can give (for the OpenAPI document)."""
    for handler in handlers:
        handler.responses = {**problems(*codes), **(handler.responses or {})}
    return handlers


def api_state(state: State) -> ApiState:
    api: ApiState = state.api
    return api


async def authenticate(request: Request[Any, Any, Any], api: ApiState) -> Caller:
    """The caller of a key-protected route; noted in the scope for the access log (no secret)."""
    return await authenticate_scope(request.scope, api)


async def authenticate_scope(scope: Scope, api: ApiState) -> Caller:
    """``authenticate`` for a raw ASGI route."""
    caller = await api.keys.authenticate_scope(scope)
    cast(dict[str, Any], scope)[CALLER_KEY] = (caller.partner_id, caller.key_id)
    return caller


def not_modified(request: Request[Any, Any, Any], etag: str) -> bool:
    """Whether ``If-None-Match`` names the current representation (weak comparison, RFC 9110)."""
    header = request.headers.get("if-none-match")
    if not header:
        return False
    tags = {t.strip().removeprefix("W/") for t in header.split(",")}
    return "*" in tags or etag in tags

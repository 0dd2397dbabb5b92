"""RFC 9457 problem documents, mapped from domain errors in one place.

Every error the API sends is ``application/problem+json`` with a stable ``type`` URI under
``PROBLEM_BASE``; clients branch on ``type`` (and ``status``), people read ``title`` and ``detail``.
"""

from __future__ import annotations

import traceback
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotFoundException,
    ValidationException,
)

from dataflow.aggregation.catalog import TableNotFound
from dataflow.aggregation.query import CursorMismatch, QueryError
from dataflow.api.redaction import redact

__all__ = [
    "PROBLEM_BASE",
    "PROBLEM_JSON",
    "PROBLEM_TYPES",
    "Problem",
    "ProblemDetail",
    "exception_handlers",
    "problem_bytes",
]

PROBLEM_BASE = "https://dataflow.fazenda.mg.gov.br/problems/"
PROBLEM_JSON = "application/problem+json"

# The stable problem types and what each means (also published in the OpenAPI description).
PROBLEM_TYPES: dict[str, str] = {
    "unauthenticated": "401: no API key was sent",
    "invalid-key": "401: the key is unknown or revoked",
    "invalid-query": "400: a query parameter is malformed (the `parameter` member names it)",
    "invalid-request": "400: the request itself is malformed",
    "cursor-mismatch": "422: the cursor belongs to another release or another query",
    "not-found": "404: no resource at this path",
    "table-not-found": "404: no such table in the current release",
    "method-not-allowed": "405: the resource does not support this method",
    "not-acceptable": "406: none of the formats in Accept can be produced",
    "content-too-large": "413: the request carries a body too large for this API",
    "uri-too-long": "414: the request URI is too long",
    "partner-suspended": "403: the partner's access is suspended",
    "partner-inactive": "403: the contract or authorization ended or was cancelled",
    "outside-window": "403: outside the sandbox authorization window",
    "table-not-entitled": "403: the plan or key does not cover the table",
    "monthly-cap-reached": "429: the monthly access cap is used (see Retry-After, RateLimit)",
    "rate-limited": "429: too many requests per second or minute",
    "query-timeout": "503: the query ran past its time limit; narrow it or retry",
    "overloaded": "503: too many queries are running; retry shortly",
    "not-ready": "503: the service is not ready (release, database or meter)",
    "internal": "500: the server failed; the access was not billed",
}


class ProblemDetail(msgspec.Struct, kw_only=True):
    """RFC 9457 problem details, with this API's extension members."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    parameter: str | None = None  # invalid-query: the parameter at fault
    reason: str | None = None  # 403/429: the refusal reason


class Problem(Exception):
    """An error response: ``kind`` picks the stable type URI; extra members ride along."""

    def __init__(
        self,
        status: int,
        kind: str,
        title: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.kind = kind
        self.title = title
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra

    def body(self, instance: str) -> bytes:
        return problem_bytes(
            self.status, self.kind, self.title, self.detail, instance=instance, **self.extra
        )

    def to_response(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        return Response(
            self.body(request.url.path),
            status_code=self.status,
            media_type=PROBLEM_JSON,
            headers=self.headers,
        )


def problem_bytes(
    status: int, kind: str, title: str, detail: str, *, instance: str | None = None, **extra: Any
) -> bytes:
    body = {
        "type": PROBLEM_BASE + kind,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        **extra,
    }
    return msgspec.json.encode(body)


def _problem(request: Request[Any, Any, Any], exc: Problem) -> Response[bytes]:
    return exc.to_response(request)


def _query_error(request: Request[Any, Any, Any], exc: QueryError) -> Response[bytes]:
    if isinstance(exc, CursorMismatch):
        problem = Problem(
            422, "cursor-mismatch", "Cursor does not fit this query", str(exc), parameter="cursor"
        )
    else:
        problem = Problem(
            400, "invalid-query", "Invalid query parameter", str(exc), parameter=exc.parameter
        )
    return problem.to_response(request)


def _table_not_found(request: Request[Any, Any, Any], exc: TableNotFound) -> Response[bytes]:
    return Problem(404, "table-not-found", "No such table", str(exc)).to_response(request)


def _http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    if isinstance(exc, NotFoundException):
        problem = Problem(404, "not-found", "Not found", f"no resource at {request.url.path}")
    elif isinstance(exc, MethodNotAllowedException):
        problem = Problem(
            405,
            "method-not-allowed",
            "Method not allowed",
            f"{request.method} is not supported here; this API is read-only (GET)",
            headers=dict(exc.headers or {}),
        )
    elif isinstance(exc, ValidationException):
        problem = _invalid(exc)
    elif exc.status_code == 413:
        problem = Problem(413, "content-too-large", "Content too large", str(exc.detail))
    elif exc.status_code >= 500:
        return _internal(request, exc)
    else:
        problem = Problem(exc.status_code, "invalid-request", "Invalid request", str(exc.detail))
    return problem.to_response(request)


def _invalid(exc: ValidationException) -> Problem:
    """Litestar's validation errors (parameters and bodies, decoded by msgspec) as one problem
    naming each field and what was expected; ``parameter`` is the first field at fault."""
    errors = (
        [e for e in (exc.extra or []) if isinstance(e, dict)] if isinstance(exc.extra, list) else []
    )
    if not errors:
        return Problem(400, "invalid-request", "Invalid request", str(exc.detail))
    detail = "; ".join(
        f"{e['key']}: {e.get('message', 'invalid')}" if e.get("key") else str(e.get("message"))
        for e in errors
    )
    key = next((str(e["key"]) for e in errors if e.get("key")), None)
    return Problem(400, "invalid-request", "Invalid request", detail, parameter=key)


def _internal(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    # The traceback is formatted here, so what it quotes (a path, an argument) is redacted too.
    trace = "".join(traceback.format_exception(exc))
    request.logger.error("unhandled error on %s: %s", redact(request.url.path), redact(trace))
    return Problem(
        500, "internal", "Internal error", "the server failed; the access was not billed"
    ).to_response(request)


exception_handlers: dict[type[Exception] | int, Any] = {
    Problem: _problem,
    QueryError: _query_error,
    TableNotFound: _table_not_found,
    HTTPException: _http,
    Exception: _internal,
}

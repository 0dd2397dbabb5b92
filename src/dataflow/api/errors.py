"""RFC 9457 problem documents, mapped from domain errors in one place."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, NotFoundException, ValidationException

from dataflow.aggregation.catalog import TableNotFound
from dataflow.aggregation.query import QueryError

__all__ = ["PROBLEM_BASE", "Problem", "exception_handlers"]

PROBLEM_BASE = "https://dataflow.fazenda.mg.gov.br/problems/"
PROBLEM_JSON = "application/problem+json"


class Problem(Exception):
    """An error response: ``type`` is a stable URI; extra members ride along."""

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

    def to_response(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        body = {
            "type": PROBLEM_BASE + self.kind,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "instance": request.url.path,
            **self.extra,
        }
        return Response(
            msgspec.json.encode(body),
            status_code=self.status,
            media_type=PROBLEM_JSON,
            headers=self.headers,
        )


def _problem(request: Request[Any, Any, Any], exc: Problem) -> Response[bytes]:
    return exc.to_response(request)


def _query_error(request: Request[Any, Any, Any], exc: QueryError) -> Response[bytes]:
    return Problem(
        400, "invalid-query", "Invalid query parameter", str(exc), parameter=exc.parameter
    ).to_response(request)


def _table_not_found(request: Request[Any, Any, Any], exc: TableNotFound) -> Response[bytes]:
    return Problem(404, "table-not-found", "No such table", str(exc)).to_response(request)


def _http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    if isinstance(exc, NotFoundException):
        return Problem(
            404, "not-found", "Not found", f"no resource at {request.url.path}"
        ).to_response(request)
    if isinstance(exc, ValidationException):
        return Problem(400, "invalid-request", "Invalid request", str(exc.detail)).to_response(
            request
        )
    return Problem(exc.status_code, "http-error", str(exc.detail), str(exc.detail)).to_response(
        request
    )


def _internal(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    request.logger.exception("unhandled error on %s", request.url.path)
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

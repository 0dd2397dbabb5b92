"""The data route: rows of a protected table, filtered, sorted, paged, in four formats.

Every request that gets here with a valid key and a valid query is one access, counted by the meter
before anything is sent. A cached page is looked up first and counted with what it serves; any
other is counted before its body is produced (no work for a refused request), and released if
producing it fails.

Each table of the loaded release also gets a plain raw-ASGI route of its own
(``table_routes``): it reads the query string and headers from the scope and answers with
pre-encoded headers. Litestar's per-request work around a ``@get`` handler (a ``Request``, the
kwargs model, msgspec conversion of the signature, an exit stack, the response check) was ~10 %
of a varied page's CPU in the worker (py-spy, README "Benchmarks"). Plain paths are matched before
parameterised ones, so ``table_rows`` (``@get``) serves only ids that are no table (its 404
problem) and documents the route; both run ``_serve``. Errors go through the app's exception
handlers either way (Litestar wraps every route in them), so problems are the same documents.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from typing import Any, cast
from urllib.parse import parse_qsl

import msgspec
from litestar import Request, asgi, get
from litestar.datastructures import State
from litestar.datastructures.headers import Accept
from litestar.exceptions import MethodNotAllowedException
from litestar.handlers import ASGIRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath
from litestar.types import Receive, Scope, Send

from dataflow.aggregation.catalog import PublicTable
from dataflow.aggregation.query import MAX_LIMIT, QueryError, RowQuery, parse_query
from dataflow.api.auth import Caller
from dataflow.api.encode import ARROW, CSV, JSON, PARQUET, Format
from dataflow.api.errors import Problem
from dataflow.api.execute import Rendered
from dataflow.api.metering import count_access, finish_access
from dataflow.api.observe import TABLE_KEY, scope_header
from dataflow.api.routes.common import api_state, authenticate_scope, problems
from dataflow.api.state import ApiState
from dataflow.metering.models import Outcome

__all__ = [
    "MAX_LIMIT_BINARY",
    "PageResponse",
    "RowsPage",
    "negotiate",
    "serve_page",
    "table_routes",
    "table_rows",
]

ROWS_TEMPLATE = "/v1/tables/{table_id}/rows"  # the route's label in metrics, whichever route

MAX_LIMIT_BINARY = 250_000  # rows per page in Arrow or Parquet: columnar bulk extracts
_OFFERED = [JSON, CSV, ARROW, PARQUET]
_BY_MEDIA = {f.media_type: f for f in Format}


class RowsPage(msgspec.Struct, frozen=True, kw_only=True):
    """The JSON body (the other formats carry the same pagination in headers)."""

    table: str
    release: str
    columns: list[str]
    rows: list[dict[str, str | float | None]]  # float: any JSON number (integers too)
    has_more: bool
    next_cursor: str | None


class PageResponse:
    """The ASGI response of a rows page: its headers encoded once, the body in one message.

    Litestar's ``Response`` builds a header multidict and re-encodes it for every request, a
    measurable share of a cached page's time; a rows page needs none of what it adds.
    """

    __slots__ = ("body", "headers")

    def __init__(self, body: bytes, media_type: str, headers: list[tuple[bytes, bytes]]) -> None:
        self.body = body
        if media_type.startswith("text/"):
            media_type += "; charset=utf-8"
        self.headers = [
            (b"content-type", media_type.encode()),
            (b"content-length", str(len(body)).encode()),
            *headers,
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start: Any = {"type": "http.response.start", "status": 200, "headers": self.headers}
        await send(start)
        end: Any = {"type": "http.response.body", "body": self.body, "more_body": False}
        await send(end)


def negotiate(params: dict[str, str], scope: Scope) -> Format:
    """``format=`` wins over ``Accept``; no preference means JSON."""
    raw = params.get("format")
    if raw is not None:
        try:
            return Format(raw)
        except ValueError:
            raise QueryError("format", f"one of {', '.join(f.value for f in Format)}") from None
    raw_accept = scope_header(scope, b"accept")
    accept = raw_accept.decode("latin-1") if raw_accept is not None else None
    if not accept or accept.strip() == "*/*":
        return Format.JSON
    best = Accept(accept).best_match(_OFFERED)
    if best is None:
        raise Problem(
            406,
            "not-acceptable",
            "Not acceptable",
            f"can produce {', '.join(_OFFERED)} (or use format=json|csv|arrow|parquet); "
            f"asked for {accept[:200]}",
        )
    return _BY_MEDIA[best]


def _single_params(scope: Scope) -> dict[str, str]:
    """The query parameters, each at most once (blank values kept, as Litestar parses them)."""
    raw = cast(dict[str, Any], scope).get("query_string", b"").decode("utf-8", "replace")
    params: dict[str, str] = {}
    for name, value in parse_qsl(raw, keep_blank_values=True):
        if name in params:
            raise QueryError(name[:40], "given twice; give several codes as one list, a,b")
        params[name] = value
    return params


def _next_link(scope: Scope, cursor: str) -> str:
    """The same query string with the cursor replaced (cheaper than re-encoding every param)."""
    raw = cast(dict[str, Any], scope).get("query_string", b"").decode("latin-1")
    kept = "&".join(p for p in raw.split("&") if p and not p.startswith("cursor="))
    query = f"{kept}&cursor={cursor}" if kept else f"cursor={cursor}"
    return f'<{scope["path"]}?{query}>; rel="next"'


async def _render_counted(
    api: ApiState,
    caller: Caller,
    table: PublicTable,
    query: RowQuery,
    fmt: Format,
    started: float,
) -> Rendered:
    """Count, then render: no work is done for a request the meter would refuse."""
    access = await count_access(api.meter, caller, table.id, api.release.version)
    try:
        out = await api.runner.render(api.release, table, query, fmt)
    except BaseException:  # a failed response is not billed
        await finish_access(api.meter, access, status=500, nbytes=0, latency_ms=0.0)
        raise
    latency_ms = (time.perf_counter() - started) * 1000
    await finish_access(api.meter, access, status=200, nbytes=len(out.body), latency_ms=latency_ms)
    return out


async def serve_page(
    api: ApiState, caller: Caller, table: PublicTable, query: RowQuery, fmt: Format
) -> Rendered:
    """One access: the page from the cache or rendered, counted by the meter before it is sent.

    The one execution path of data requests: the rows route and the console's table explorer
    both call it, so both are metered, cached and limited alike.
    """
    started = time.perf_counter()
    out = api.runner.lookup(api.release, query, fmt)
    api.metrics.cache_lookup(hit=out is not None)
    if out is not None:
        # A cached page costs nothing to look up: it is counted with what it serves, in one
        # step, and only sent once counted (no completion to write afterwards).
        served = Outcome(200, len(out.body), round((time.perf_counter() - started) * 1000, 3))
        await count_access(api.meter, caller, table.id, api.release.version, outcome=served)
    else:
        out = await _render_counted(api, caller, table, query, fmt, started)
    api.metrics.access_served(table.id, fmt.value, out.rows)
    return out


@get(
    "/v1/tables/{table_id:str}/rows",
    summary="Rows of a table (billable: one request = one access)",
    description=(
        "Filters: `<level>=code`, `<level>=a,b` (list), `<level>=lo..hi` (range, e.g. months), "
        "`<level>=prefix*` (hierarchy prefix); `_T` selects the margin. `columns=` chooses "
        "columns, `sort=-item_value,month` orders them (suppressed values last), `limit` and "
        "`cursor` page (keyset). Every response says whether more rows exist: `has_more` and "
        "`next_cursor` in JSON, `Dataflow-Has-More`, `Dataflow-Next-Cursor` and `Link` headers "
        "for every format. Suppressed cells: measures null, `flag` = `X`. Formats by Accept or "
        f"`format=`: JSON, CSV (limit ≤ {MAX_LIMIT:,}), Arrow IPC stream, Parquet "
        f"(limit ≤ {MAX_LIMIT_BINARY:,})."
    ),
    tags=["data"],
    security=[{"bearer": []}],
    responses={
        200: ResponseSpec(data_container=RowsPage, media_type=JSON, description="A page of rows"),
        **problems(400, 401, 403, 404, 406, 422, 429, 503),
    },
)
async def table_rows(
    request: Request[Any, Any, Any], state: State, table_id: FromPath[str]
) -> PageResponse:
    return await _serve(api_state(state), request.scope, table_id)


async def _serve(api: ApiState, scope: Scope, table_id: str) -> PageResponse:
    entries = cast(dict[str, Any], scope)
    caller = await authenticate_scope(scope, api)
    table = api.release.table(table_id)
    entries[TABLE_KEY] = table.id
    params = _single_params(scope)
    fmt = negotiate(params, scope)
    max_limit = MAX_LIMIT_BINARY if fmt.binary else MAX_LIMIT
    query = parse_query(table, params, api.release.version, max_limit=max_limit)
    out = await serve_page(api, caller, table, query, fmt)
    headers = [
        (b"dataflow-release", api.release.version.encode()),
        (b"dataflow-has-more", b"true" if out.has_more else b"false"),
        (b"cache-control", b"private, no-store"),
        (b"vary", b"Accept"),
    ]
    if out.next_cursor is not None:
        headers.append((b"dataflow-next-cursor", out.next_cursor.encode()))
        headers.append((b"link", _next_link(scope, out.next_cursor).encode("latin-1")))
    return PageResponse(out.body, fmt.media_type, headers)


_Raw = Callable[[Scope, Receive, Send], Coroutine[Any, Any, None]]


def _raw_route(table_id: str) -> _Raw:
    async def rows(scope: Scope, receive: Receive, send: Send) -> None:
        entries = cast(dict[str, Any], scope)
        if entries.get("method") != "GET":
            # As Litestar's router answers a @get route's other methods: no route matched.
            entries.pop("path_template", None)
            raise MethodNotAllowedException(headers={"Allow": "GET"})
        entries["path_template"] = ROWS_TEMPLATE
        response = await _serve(entries["litestar_app"].state.api, scope, table_id)
        await response(scope, receive, send)

    rows.__name__ = f"rows_{table_id}"
    return rows


def table_routes(table_ids: list[str]) -> list[ASGIRouteHandler]:
    """One plain raw-ASGI rows route per table (see the top); not in the OpenAPI document, which
    lists every table's rows path from ``table_rows``."""
    return [
        asgi(f"/v1/tables/{table_id}/rows", copy_scope=False, name=f"rows_{table_id}")(
            _raw_route(table_id)
        )
        for table_id in table_ids
    ]

"""The table explorer: choose a table, filter, page, export CSV — through the API's own path.

Each page shown and each CSV exported is a data request like ``GET /v1/tables/{id}/rows``: it
goes through ``serve_page`` (response cache, query limits, and the meter, which counts it before
it is served, checks the cap and window and writes its access record). The access is attributed
to the member under the key id ``console-m<member id>``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from litestar import Request, Response, get
from litestar.datastructures import State
from litestar.response import Template

from dataflow.aggregation.catalog import TableNotFound
from dataflow.aggregation.query import QueryError, parse_query
from dataflow.api.auth import Caller
from dataflow.api.console.context import console_state
from dataflow.api.console.render import NO_STORE, page
from dataflow.api.console.session import Viewer, member
from dataflow.api.encode import Format
from dataflow.api.errors import Problem
from dataflow.api.routes.rows import serve_page
from dataflow.api.state import ApiState
from dataflow.contracts.models import KeyCredential

__all__ = ["EXPLORER_HANDLERS", "console_key_id"]

PAGE_ROWS = 50
EXPORT_ROWS = 10_000


def console_key_id(member_id: int) -> str:
    return f"console-m{member_id}"


async def _caller(console_contracts: Any, seen: Viewer) -> Caller:
    entitlement = await asyncio.to_thread(console_contracts.entitlement, seen.partner_id)
    key = KeyCredential(
        key_id=console_key_id(seen.user.member_id or 0),
        partner_id=seen.partner_id,
        secret_hash="",
        member_id=seen.user.member_id,
    )
    return Caller(key=key, entitlement=entitlement)


def _params(request: Request[Any, Any, Any], levels: list[str]) -> dict[str, str]:
    q = request.query_params
    return {lv: q[lv].strip() for lv in levels if q.get(lv, "").strip()}


@get("/conta/tabelas")
async def explorer(request: Request[Any, Any, Any], state: State) -> Template:
    console = console_state(state)
    api: ApiState = state.api
    seen = await member(request, console)
    caller = await _caller(console.contracts, seen)
    # like the catalog: only the tables this partner may read
    tables = sorted(
        (t for t in api.release.tables.values() if caller.may_read(t.id)), key=lambda t: t.id
    )
    chosen = request.query_params.get("tabela") or ""
    context: dict[str, Any] = {"tables": tables, "table": None, "release": api.release.version}
    if not chosen:
        return page("tabelas.html", seen, **context)
    try:
        table = api.release.table(chosen)
    except TableNotFound:
        return page("tabelas.html", seen, erro=f"Não há a tabela {chosen!r}.", **context)
    filters = _params(request, table.levels)
    context |= {"table": table, "filters": filters}
    params = {**filters, "limit": str(PAGE_ROWS)}
    if request.query_params.get("cursor"):
        params["cursor"] = request.query_params["cursor"]
    try:
        query = parse_query(table, params, api.release.version)
        out = await serve_page(api, caller, table, query, Format.JSON)
    except QueryError as e:
        return page("tabelas.html", seen, erro=f"Filtro inválido ({e.parameter}): {e}", **context)
    except Problem as e:
        return page("tabelas.html", seen, status=e.status, erro=e.detail, **context)
    body = msgspec.json.decode(out.body)
    return page(
        "tabelas.html",
        seen,
        columns=body["columns"],
        rows=body["rows"],
        has_more=body["has_more"],
        next_cursor=body["next_cursor"],
        suppressed=sum(1 for r in body["rows"] if r.get("flag") == "X"),
        **context,
    )


@get("/conta/tabelas/exportar.csv")
async def export_csv(request: Request[Any, Any, Any], state: State) -> Response[bytes]:
    """Up to 10,000 rows as CSV: one access, like the same request to the rows route."""
    console = console_state(state)
    api: ApiState = state.api
    seen = await member(request, console)
    table = api.release.table(request.query_params.get("tabela") or "")
    params = {**_params(request, table.levels), "limit": str(EXPORT_ROWS)}
    if request.query_params.get("cursor"):
        params["cursor"] = request.query_params["cursor"]
    query = parse_query(table, params, api.release.version)
    out = await serve_page(api, await _caller(console.contracts, seen), table, query, Format.CSV)
    headers = {
        **NO_STORE,
        "Content-Disposition": f'attachment; filename="{table.id}.csv"',
        "Dataflow-Has-More": "true" if out.has_more else "false",
    }
    if out.next_cursor:
        headers["Dataflow-Next-Cursor"] = out.next_cursor
    return Response(out.body, media_type="text/csv", headers=headers)


EXPLORER_HANDLERS = [explorer, export_csv]

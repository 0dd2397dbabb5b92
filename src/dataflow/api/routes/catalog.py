"""The catalog: which tables the current release publishes to the caller, and what each holds.

Not billable, but not open either: the same checks as the data route except the count (a
suspended, ended or out-of-window partner gets the same 403), and a partner sees only the tables
its key may read (the key's scope within its contract). Another table's id answers 403
``table-not-entitled``, as its rows do: table ids are public (the OpenAPI document lists every
table's rows path), so a 404 would hide nothing and would tell the partner something false.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec
from litestar import Request, Response, get
from litestar.datastructures import State
from litestar.params import FromPath

from dataflow.aggregation.catalog import PublicTable, TableSummary
from dataflow.api.metering import authorize
from dataflow.api.routes.common import api_state, authenticate, not_modified, problems

__all__ = ["Catalog", "describe_table", "list_tables"]

_CACHE = "private, no-cache"  # revalidate with If-None-Match: the release version is the ETag


class Catalog(msgspec.Struct, frozen=True, kw_only=True):
    release: str
    tables: list[TableSummary]


@get(
    "/v1/tables",
    summary="List the tables of the current release",
    description="Not billable. Lists only the tables your key may read. The ETag is the release "
    "version (with a mark of your scope when it is restricted); send it back in If-None-Match "
    "to get 304 Not Modified while neither changed.",
    tags=["catalog"],
    security=[{"bearer": []}],
    responses=problems(401, 403),
)
async def list_tables(request: Request[Any, Any, Any], state: State) -> Response[Catalog]:
    api = api_state(state)
    caller = await authenticate(request, api)
    authorize(caller)
    scope = caller.tables
    etag = api.etag
    if scope is not None:  # the list depends on the scope: so does its validator
        mark = hashlib.sha256("\n".join(sorted(scope)).encode()).hexdigest()[:12]
        etag = f'"{api.release.version}-{mark}"'
    headers = {"ETag": etag, "Cache-Control": _CACHE}
    if not_modified(request, etag):
        return Response(None, status_code=304, headers=headers)  # type: ignore[arg-type]
    catalog = Catalog(
        release=api.release.version,
        tables=[t.summary() for t in api.release.tables.values() if caller.may_read(t.id)],
    )
    return Response(catalog, headers=headers)


@get(
    "/v1/tables/{table_id:str}",
    summary="Describe a table: dimensions, levels and code lists, measures, markers",
    description="Not billable. Code lists give every code the table holds at each level, with "
    "its official label (IBGE, CNAE 2.3, NCM, CFOP) where one is known. The margin code is `_T`.",
    tags=["catalog"],
    security=[{"bearer": []}],
    responses=problems(401, 403, 404),
)
async def describe_table(
    request: Request[Any, Any, Any], state: State, table_id: FromPath[str]
) -> Response[PublicTable]:
    api = api_state(state)
    caller = await authenticate(request, api)
    table = api.release.table(table_id)
    authorize(caller, table.id)
    headers = {"ETag": api.etag, "Cache-Control": _CACHE}
    if not_modified(request, api.etag):
        return Response(None, status_code=304, headers=headers)  # type: ignore[arg-type]
    return Response(table, headers=headers)

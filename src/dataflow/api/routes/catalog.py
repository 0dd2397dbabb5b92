"""The catalog: which tables the current release publishes, and what each one holds."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, get
from litestar.datastructures import State
from litestar.params import FromPath

from dataflow.aggregation.catalog import PublicTable, TableSummary
from dataflow.api.routes.common import api_state, authenticate, not_modified, problems

__all__ = ["Catalog", "describe_table", "list_tables"]

_CACHE = "private, no-cache"  # revalidate with If-None-Match: the release version is the ETag


class Catalog(msgspec.Struct, frozen=True, kw_only=True):
    release: str
    tables: list[TableSummary]


@get(
    "/v1/tables",
    summary="List the tables of the current release",
    description="Not billable. The ETag is the release version; send it back in If-None-Match "
    "to get 304 Not Modified while the release is unchanged.",
    tags=["catalog"],
    security=[{"bearer": []}],
    responses=problems(401),
)
async def list_tables(request: Request[Any, Any, Any], state: State) -> Response[Catalog]:
    api = api_state(state)
    await authenticate(request, api)
    headers = {"ETag": api.etag, "Cache-Control": _CACHE}
    if not_modified(request, api.etag):
        return Response(None, status_code=304, headers=headers)  # type: ignore[arg-type]
    catalog = Catalog(
        release=api.release.version,
        tables=[t.summary() for t in api.release.tables.values()],
    )
    return Response(catalog, headers=headers)


@get(
    "/v1/tables/{table_id:str}",
    summary="Describe a table: dimensions, levels and code lists, measures, markers",
    description="Not billable. Code lists give every code the table holds at each level, with "
    "its official label (IBGE, CNAE 2.3, NCM, CFOP) where one is known. The margin code is `_T`.",
    tags=["catalog"],
    security=[{"bearer": []}],
    responses=problems(401, 404),
)
async def describe_table(
    request: Request[Any, Any, Any], state: State, table_id: FromPath[str]
) -> Response[PublicTable]:
    api = api_state(state)
    await authenticate(request, api)
    table = api.release.table(table_id)
    headers = {"ETag": api.etag, "Cache-Control": _CACHE}
    if not_modified(request, api.etag):
        return Response(None, status_code=304, headers=headers)  # type: ignore[arg-type]
    return Response(table, headers=headers)

"""Partner routes: catalog and rows. Parse, call one service, map errors — nothing more."""

from __future__ import annotations

import time
from typing import Any

from litestar import Request, Response, get
from litestar.datastructures import State
from litestar.params import FromPath

from dataflow.aggregation.query import parse_query, run_query
from dataflow.api.encode import CSV, JSON, encode_json, encode_page
from dataflow.api.errors import Problem
from dataflow.api.metering import count_access, finish_access
from dataflow.api.state import ApiState

__all__ = ["routes"]


def _state(state: State) -> ApiState:
    api: ApiState = state.api
    return api


def _media_type(request: Request[Any, Any, Any]) -> str:
    fmt = request.query_params.get("format")
    if fmt:
        choice = {"json": JSON, "csv": CSV}.get(fmt)
        if choice is None:
            raise Problem(
                400,
                "invalid-query",
                "Invalid query parameter",
                "format: one of json, csv",
                parameter="format",
            )
        return choice
    accept = request.headers.get("accept", "*/*")
    best = request.accept.best_match([JSON, CSV]) if accept != "*/*" else JSON
    if best is None:
        raise Problem(
            406,
            "not-acceptable",
            "Not acceptable",
            f"can produce {JSON} or {CSV}; asked for {accept}",
        )
    return best


@get("/v1/tables")
async def list_tables(request: Request[Any, Any, Any], state: State) -> Response[bytes]:
    api = _state(state)
    await api.keys.authenticate(request)
    body = {"release": api.release.version, "tables": list(api.release.tables.values())}
    return Response(
        encode_json(body), media_type=JSON, headers={"ETag": f'"{api.release.version}"'}
    )


@get("/v1/tables/{table_id:str}")
async def describe_table(
    request: Request[Any, Any, Any], state: State, table_id: FromPath[str]
) -> Response[bytes]:
    api = _state(state)
    await api.keys.authenticate(request)
    table = api.release.table(table_id)
    return Response(
        encode_json(table), media_type=JSON, headers={"ETag": f'"{api.release.version}"'}
    )


@get("/v1/tables/{table_id:str}/rows")
async def table_rows(
    request: Request[Any, Any, Any], state: State, table_id: FromPath[str]
) -> Response[bytes]:
    api = _state(state)
    caller = await api.keys.authenticate(request)
    table = api.release.table(table_id)
    media_type = _media_type(request)
    query = parse_query(table, dict(request.query_params), api.release.version)
    access = None
    started = time.perf_counter()
    if api.meter is not None:  # counted before anything is served
        access = await count_access(api.meter, caller, table.id, api.release.version)
    try:
        body = encode_page(table, run_query(api.release, query), media_type)
    except Exception:
        if api.meter is not None and access is not None:  # a failed response is not billed
            await finish_access(api.meter, access, status=500, nbytes=0, latency_ms=0.0)
        raise
    if api.meter is not None and access is not None:
        latency = (time.perf_counter() - started) * 1000
        await finish_access(api.meter, access, status=200, nbytes=len(body), latency_ms=latency)
    return Response(body, media_type=media_type, headers={"ETag": f'"{api.release.version}"'})


@get("/healthz", sync_to_thread=False)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


routes = [list_tables, describe_table, table_rows, healthz]

"""Operations routes: liveness, readiness, Prometheus metrics. None needs a key."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import msgspec
import sqlalchemy as sa
from litestar import Response, get
from litestar.datastructures import State

from dataflow.api.errors import Problem
from dataflow.api.metrics import CONTENT_TYPE
from dataflow.api.routes.common import api_state, problems
from dataflow.api.state import ApiState
from dataflow.metering.models import billing_month

__all__ = ["Health", "Readiness", "healthz", "metrics", "readyz"]

_CHECK_SECONDS = 2.0


class Health(msgspec.Struct, frozen=True):
    status: str


class Readiness(msgspec.Struct, frozen=True, kw_only=True):
    status: str
    release: str
    checks: dict[str, str]


@get("/healthz", summary="Liveness", tags=["operations"], sync_to_thread=False)
def healthz() -> Health:
    return Health("ok")


def _ping_db(api: ApiState) -> None:
    with api.contracts.engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))


async def _check(name: str, coro: object, checks: dict[str, str]) -> None:
    try:
        await asyncio.wait_for(coro, _CHECK_SECONDS)  # type: ignore[arg-type]
        checks[name] = "ok"
    except Exception as e:  # a readiness probe reports failures, it does not raise them
        checks[name] = f"failed: {type(e).__name__}"


@get(
    "/readyz",
    summary="Readiness: release loaded, database and meter reachable",
    tags=["operations"],
    responses=problems(503),
)
async def readyz(state: State) -> Readiness:
    api = api_state(state)
    checks: dict[str, str] = {"release": "ok" if api.release.tables else "failed: empty"}
    await _check("database", asyncio.to_thread(_ping_db, api), checks)
    if api.meter is not None:
        await _check("meter", api.meter.count(0, billing_month(datetime.now(UTC))), checks)
    else:
        checks["meter"] = "off"
    failed = {k: v for k, v in checks.items() if v.startswith("failed")}
    if failed:
        raise Problem(
            503,
            "not-ready",
            "Not ready",
            "; ".join(f"{k} {v}" for k, v in failed.items()),
            headers={"Retry-After": "5"},
        )
    return Readiness(status="ready", release=api.release.version, checks=checks)


@get("/metrics", include_in_schema=False)
async def metrics(state: State) -> Response[bytes]:
    api = api_state(state)
    api.metrics.flush()  # this worker's tallies; the others' are at most FLUSH_SECONDS old
    body = await asyncio.to_thread(api.metrics.render)  # reads every worker's files
    return Response(body, media_type=CONTENT_TYPE)

"""Usage, health, readiness, metrics, request IDs and the access log (which never holds a key)."""

from __future__ import annotations

import json
import logging

import pytest
import sqlalchemy as sa

from dataflow.contracts.service import ContractsService
from tests.api.conftest import PROBLEM, ROWS, TABLE, Env, this_month


async def test_usage_reports_this_months_count_and_terms(env: Env) -> None:
    for _ in range(3):
        assert (await env.client.get(ROWS, headers=env.auth(env.capped_key))).status_code in (
            200,
            429,
        )
    r = await env.client.get("/v1/usage", headers=env.auth(env.capped_key))
    assert r.status_code == 200
    usage = r.json()
    assert usage["month"] == this_month() and usage["plan"] == "sandbox"
    assert usage["accesses"] == 2 and usage["monthly_cap"] == 2 and usage["remaining"] == 0
    r = await env.client.get("/v1/usage", headers=env.auth())
    usage = r.json()
    assert usage["accesses"] == 0 and usage["monthly_cap"] is None and usage["remaining"] is None
    assert usage["partner_id"] == env.partner_id and usage["tables"] is None
    r = await env.client.get("/v1/usage", headers=env.auth(env.expired_key))
    assert r.json()["window_end"] == "2024-12-31"  # usage stays visible after the window
    assert (await env.client.get("/v1/usage")).status_code == 401


async def test_health_and_readiness(env: Env) -> None:
    r = await env.client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    r = await env.client.get("/readyz")
    assert r.status_code == 200
    body = r.json()
    assert body["checks"] == {"release": "ok", "database": "ok", "meter": "ok"}
    assert body["release"] == env.api.release.version


async def test_readiness_fails_with_a_problem_when_the_database_is_gone(env: Env) -> None:
    unreachable = ContractsService.__new__(ContractsService)  # no schema to create: it is down
    unreachable.engine = sa.create_engine("postgresql+psycopg://nobody@127.0.0.1:9/none")
    healthy, env.api.contracts = env.api.contracts, unreachable
    try:
        r = await env.client.get("/readyz")
    finally:
        env.api.contracts = healthy
    assert r.status_code == 503 and r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["type"].endswith("/not-ready") and "database" in body["detail"]
    assert r.headers["retry-after"]


async def test_metrics_count_requests_accesses_and_cache(env: Env) -> None:
    for _ in range(2):
        await env.client.get(ROWS, params={"limit": "3"}, headers=env.auth())
    await env.client.get("/v1/tables/nope", headers=env.auth())
    r = await env.client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert (
        'dataflow_http_requests_total{method="GET",route="/v1/tables/{table_id}/rows",'
        'status="200"} 2.0' in text
    )
    assert f'dataflow_data_accesses_total{{format="json",table="{TABLE}"}} 2.0' in text
    assert 'dataflow_response_cache_total{result="hit"} 1.0' in text
    assert 'dataflow_response_cache_total{result="miss"} 1.0' in text
    assert "dataflow_http_request_duration_seconds_bucket" in text


async def test_request_id_is_kept_when_sane_and_replaced_when_not(env: Env) -> None:
    r = await env.client.get("/healthz", headers={"X-Request-ID": "abc-123.x"})
    assert r.headers["x-request-id"] == "abc-123.x"
    r = await env.client.get("/healthz", headers={"X-Request-ID": "<script>" + "x" * 100})
    assert len(r.headers["x-request-id"]) == 32 and "<" not in r.headers["x-request-id"]
    r = await env.client.get("/v1/tables/nope", headers=env.auth())
    assert r.headers["x-request-id"]  # problems carry it too


async def test_access_log_is_structured_and_never_holds_the_key(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="dataflow.access")
    secret = env.key.split("_", 2)[2]  # the secret itself may hold "_"
    await env.client.get(
        ROWS,
        params={"limit": "2", "api_key": env.key, "token": secret},
        headers={**env.auth(), "X-Request-ID": "req-1"},
    )
    await env.client.get(ROWS, headers=env.auth("df_0123456789abcdef_" + secret))
    records = [r.getMessage() for r in caplog.records if r.name == "dataflow.access"]
    assert len(records) == 2
    assert all(secret not in line and env.key not in line for line in records)
    first = json.loads(records[0])
    assert first["request_id"] == "req-1" and first["status"] == 400  # api_key is no level
    assert first["partner"] == env.partner_id and first["key_id"] == env.key.split("_")[1]
    assert "[redacted]" in first["query"] and first["table"] == TABLE
    assert json.loads(records[1])["status"] == 401


async def test_404_and_405_are_observed_and_limited_like_every_answer(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    """The router's own answers (no route for the path, or for the method) go through the same
    observation as the rest: request id, access log (redacted), metrics, size limits."""
    caplog.set_level(logging.INFO, logger="dataflow.access")
    secret = env.key.split("_", 2)[2]
    missing = await env.client.get(f"/v2/{env.key}", headers=env.auth())
    wrong = await env.client.request("DELETE", ROWS, headers=env.auth())
    assert (missing.status_code, wrong.status_code) == (404, 405)
    assert missing.headers["x-request-id"] and wrong.headers["x-request-id"]
    raw = [r.getMessage() for r in caplog.records if r.name == "dataflow.access"]
    lines = [json.loads(line) for line in raw]
    assert [(x["method"], x["status"]) for x in lines] == [("GET", 404), ("DELETE", 405)]
    assert lines[0]["path"] == "/v2/[redacted]" and not any(secret in line for line in raw)
    assert lines[0]["request_id"] == missing.headers["x-request-id"]
    text = (await env.client.get("/metrics")).text
    assert 'dataflow_http_requests_total{method="GET",route="unmatched",status="404"} 1.0' in text
    assert (
        'dataflow_http_requests_total{method="DELETE",route="unmatched",status="405"} 1.0' in text
    )
    # the size limits hold before routing, whether or not a route exists
    big = await env.client.request(
        "POST", "/nowhere", headers={"Content-Length": str(10 << 20)}, content=b""
    )
    assert big.status_code == 413 and big.json()["type"].endswith("/content-too-large")
    long = await env.client.get("/v2/" + "x" * 2000)
    assert long.status_code == 414 and long.json()["type"].endswith("/uri-too-long")

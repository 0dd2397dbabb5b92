"""Malformed, oversized and hostile requests: each gets a 4xx problem, and nothing is billed."""

from __future__ import annotations

import base64

import msgspec
import pytest

from dataflow.aggregation.query import encode_cursor
from tests.api.conftest import PROBLEM, ROWS, TABLE, Env, this_month


def _deep_cursor(depth: int) -> str:
    raw = b"\x93" + msgspec.msgpack.encode("r") + msgspec.msgpack.encode("q")
    raw += b"\x91" * depth + b"\x00"
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    ("query", "status", "kind"),
    [
        ("municipality=31'%20OR%201=1--", 400, "invalid-query"),
        ("municipality=3106200;DROP%20TABLE%20x", 400, "invalid-query"),
        ("cnae_division=1)%20UNION%20SELECT%20*%20FROM%20internal--", 400, "invalid-query"),
        ("columns=item_value,(SELECT%201)", 400, "invalid-query"),
        ("sort=item_value;DELETE", 400, "invalid-query"),
        ("limit=99999999999999999999999", 400, "invalid-query"),
        ("limit=-1", 400, "invalid-query"),
        ("limit=1e3", 400, "invalid-query"),
        ("limit=10001", 400, "invalid-query"),
        ("cursor=" + "A" * 2000, 400, "invalid-query"),
        ("cursor=" + _deep_cursor(600), 400, "invalid-query"),
        ("cursor=%FF%FE%00", 400, "invalid-query"),
        ("municipality=%FF%FE", 400, "invalid-query"),
        ("municipality=%00", 400, "invalid-query"),
        ("municipality=%C3%28", 400, "invalid-query"),
        ("municipality=1&municipality=2", 400, "invalid-query"),
        ("format=xml", 400, "invalid-query"),
        ("month=", 400, "invalid-query"),
        ("cursor=", 400, "invalid-query"),
        ("municipality=" + ",".join(["3106200"] * 1001), 414, "uri-too-long"),
        ("municipality=" + "1" * 5000, 414, "uri-too-long"),
    ],
)
async def test_hostile_query_is_a_4xx_problem_and_not_billed(
    env: Env, query: str, status: int, kind: str
) -> None:
    r = await env.client.get(f"{ROWS}?{query}", headers=env.auth())
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["type"].endswith("/" + kind) and body["status"] == status
    assert body["title"] and body["detail"]
    assert "Traceback" not in r.text
    assert await env.meter.count(env.partner_id, this_month()) == 0


async def test_forged_cursor_with_the_right_fingerprint_but_wrong_types_is_400(env: Env) -> None:
    r = await env.client.get(ROWS, params={"limit": "3", "sort": "-item_value"}, headers=env.auth())
    assert r.status_code == 200
    release = env.api.release.version
    good = r.json()["next_cursor"]
    fingerprint = msgspec.msgpack.decode(base64.urlsafe_b64decode(good + "=="))[1]
    for after in (["x", 3], [1.0, "3"], [1.0], [1.0, 2, 3]):
        forged = encode_cursor(release, fingerprint, after)
        r = await env.client.get(
            ROWS, params={"limit": "3", "sort": "-item_value", "cursor": forged}, headers=env.auth()
        )
        assert r.status_code == 400, (after, r.text)


async def test_method_not_allowed_is_405_problem(env: Env) -> None:
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        r = await env.client.request(method, ROWS, headers=env.auth())
        assert r.status_code == 405
        assert r.headers["content-type"].startswith(PROBLEM)
        assert r.json()["type"].endswith("/method-not-allowed")
        assert "GET" in r.headers.get("allow", "")


async def test_unacceptable_format_is_406_problem(env: Env) -> None:
    r = await env.client.get(ROWS, headers={**env.auth(), "Accept": "image/png"})
    assert r.status_code == 406 and r.json()["type"].endswith("/not-acceptable")
    r = await env.client.get(ROWS, headers={**env.auth(), "Accept": "text/*;q=0.5, */*;q=0.1"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")


async def test_bodies_and_long_paths_are_refused_before_routing(env: Env) -> None:
    r = await env.client.request(
        "GET", ROWS, headers={**env.auth(), "Content-Length": str(10 << 20)}, content=b""
    )
    assert r.status_code == 413 and r.json()["type"].endswith("/content-too-large")
    r = await env.client.get("/v1/tables/" + "x" * 2000, headers=env.auth())
    assert r.status_code == 414 and r.json()["type"].endswith("/uri-too-long")
    assert r.headers["x-request-id"]


async def test_unknown_paths_and_tables_are_404_problems(env: Env) -> None:
    for path in ("/v2/tables", "/v1/tables/nope", "/v1/tables/nope/rows", f"/v1/tables/{TABLE}/x"):
        r = await env.client.get(path, headers=env.auth())
        assert r.status_code == 404 and r.headers["content-type"].startswith(PROBLEM), path


async def test_bad_authorization_headers_are_401(env: Env) -> None:
    for value in ("Basic abc", "Bearer", "Bearer df_short_x", "Bearer " + "a" * 3000, "df_x"):
        r = await env.client.get("/v1/tables", headers={"Authorization": value})
        assert r.status_code == 401 and r.headers["content-type"].startswith(PROBLEM), value

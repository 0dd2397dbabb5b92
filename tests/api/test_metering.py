"""Count before serve through the API: problems for refusals, 503 when the meter cannot count,
a failed response gives its count back, a served one completes its record."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from dataflow.aggregation.release import ReleaseSummary
from dataflow.api.app import create_app
from dataflow.api.auth import Caller
from dataflow.api.errors import Problem
from dataflow.api.metering import count_access
from dataflow.contracts.models import Entitlement, KeyCredential, PartnerStatus, Plan
from dataflow.contracts.repository import make_engine
from dataflow.contracts.service import ContractsService
from dataflow.metering.embedded import EmbeddedMeter
from dataflow.metering.models import EntryKind
from dataflow.metering.redis_meter import RedisMeter
from tests.conftest import make_settings
from tests.e2e.conftest import free_port

TABLE = "sales_municipality_cnae_division_month"


def _caller(**entitlement: object) -> Caller:
    key = KeyCredential(key_id="k1", partner_id=5, secret_hash="x", member_id=3)
    return Caller(key=key, entitlement=Entitlement(partner_id=5, plan=Plan.SANDBOX, **entitlement))  # type: ignore[arg-type]


async def _problem(meter: EmbeddedMeter, caller: Caller, table: str = TABLE) -> Problem:
    with pytest.raises(Problem) as info:
        await count_access(meter, caller, table, "v1")
    return info.value


async def test_counted_access_carries_its_record() -> None:
    meter = EmbeddedMeter()
    access = await count_access(meter, _caller(), TABLE, "v1")
    assert access.record_id and access.member_id == 3 and access.release == "v1"
    (entry,) = await meter.read(5, "0-0", 10)
    assert entry.id == access.record_id and entry.kind is EntryKind.ACCESS


async def test_cap_is_429_with_ratelimit_headers() -> None:
    meter = EmbeddedMeter()
    caller = _caller(monthly_cap=1)
    await count_access(meter, caller, TABLE, "v1")
    p = await _problem(meter, caller)
    assert (p.status, p.kind, p.extra["reason"]) == (429, "monthly-cap-reached", "monthly_cap")
    retry = int(p.headers["Retry-After"])
    assert 0 < retry <= 31 * 86_400
    assert re.fullmatch(r'"monthly";q=1;w=\d+', p.headers["RateLimit-Policy"])
    assert p.headers["RateLimit"] == f'"monthly";r=0;t={retry}'


async def test_rate_limit_is_429_with_retry_after() -> None:
    meter = EmbeddedMeter()
    caller = _caller(rate_per_minute=1)
    await count_access(meter, caller, TABLE, "v1")
    p = await _problem(meter, caller)
    assert (p.status, p.kind, p.extra["reason"]) == (429, "rate-limited", "rate_limit")
    assert 1 <= int(p.headers["Retry-After"]) <= 60
    assert p.headers["RateLimit-Policy"] == '"per-minute";q=1;w=60'


@pytest.mark.parametrize(
    ("entitlement", "kind", "reason"),
    [
        ({"status": PartnerStatus.SUSPENDED}, "partner-suspended", "suspended"),
        ({"status": PartnerStatus.CANCELLED}, "partner-inactive", "inactive"),
        ({"window_end": date(2020, 1, 31)}, "outside-window", "after_window"),
        ({"window_start": date(2099, 1, 1)}, "outside-window", "before_window"),
        ({"tables": frozenset({"other"})}, "table-not-entitled", "table_not_entitled"),
    ],
)
async def test_entitlement_refusals_are_403_with_reason(
    entitlement: dict[str, object], kind: str, reason: str
) -> None:
    meter = EmbeddedMeter()
    p = await _problem(meter, _caller(**entitlement))
    assert (p.status, p.kind, p.extra["reason"]) == (403, kind, reason)
    assert await meter.count(5, "2026-11") == 0


async def _app_client(
    tmp_path: Path, release: ReleaseSummary, meter: object
) -> tuple[AsyncTestClient, str]:  # type: ignore[type-arg]
    settings = make_settings(tmp_path, release_dir=release.path, settle_interval=0.0)
    contracts = ContractsService(make_engine(settings.database_url))
    partner = contracts.create_partner("P", Plan.CONTINUOUS)
    key = contracts.create_key(partner.id)
    app = create_app(settings, meter=meter, contracts=contracts)  # type: ignore[arg-type]
    return AsyncTestClient(app), key


async def test_a_cached_page_is_counted_with_what_it_serves(
    tmp_path: Path, release: ReleaseSummary
) -> None:
    meter = EmbeddedMeter()
    client, key = await _app_client(tmp_path, release, meter)
    async with client:
        auth = {"Authorization": f"Bearer {key}"}
        pages = [
            await client.get(f"/v1/tables/{TABLE}/rows", params={"limit": "5"}, headers=auth)
            for _ in range(2)
        ]
        assert [r.status_code for r in pages] == [200, 200]
        assert pages[0].content == pages[1].content
        partner = next(iter(await meter.partners()))
        entries = await meter.read(partner, "0-0", 100)
    # The first was rendered after it was counted, then completed; the second came from the
    # cache and its access record says what it served: no completion entry.
    assert [e.kind for e in entries] == [EntryKind.ACCESS, EntryKind.COMPLETE, EntryKind.ACCESS]
    cached = entries[2]
    assert (cached.status, cached.bytes) == (200, len(pages[1].content))
    assert cached.latency_ms is not None and cached.latency_ms >= 0
    assert await meter.count(partner, entries[0].month) == 2


async def test_a_cached_page_over_the_cap_is_refused_and_not_counted(
    tmp_path: Path, release: ReleaseSummary
) -> None:
    meter = EmbeddedMeter()
    settings = make_settings(tmp_path, release_dir=release.path, settle_interval=0.0)
    contracts = ContractsService(make_engine(settings.database_url))
    partner = contracts.create_partner("P", Plan.CONTINUOUS, monthly_cap=1)
    key = contracts.create_key(partner.id)
    app = create_app(settings, meter=meter, contracts=contracts)
    async with AsyncTestClient(app) as client:
        auth = {"Authorization": f"Bearer {key}"}
        url = f"/v1/tables/{TABLE}/rows"
        first = await client.get(url, params={"limit": "5"}, headers=auth)
        again = await client.get(url, params={"limit": "5"}, headers=auth)  # now cached
        assert (first.status_code, again.status_code) == (200, 429)
        assert again.json()["reason"] == "monthly_cap" and "rows" not in again.json()
        assert await meter.count(partner.id, (await meter.read(partner.id, "0-0", 9))[0].month) == 1


async def test_meter_unreachable_is_503_and_nothing_is_served(
    tmp_path: Path, release: ReleaseSummary
) -> None:
    dead = RedisMeter.from_url(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5)
    client, key = await _app_client(tmp_path, release, dead)
    async with client:
        r = await client.get(f"/v1/tables/{TABLE}/rows", headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 503
        assert r.headers["content-type"].startswith("application/problem+json")
        assert int(r.headers["Retry-After"]) >= 1
        assert r.json()["type"].endswith("/meter-unavailable")
        assert "rows" not in r.json()
        catalog = await client.get("/v1/tables", headers={"Authorization": f"Bearer {key}"})
        assert catalog.status_code == 200  # not billable, so not metered


async def test_failed_response_gives_its_count_back(
    tmp_path: Path, release: ReleaseSummary
) -> None:
    meter = EmbeddedMeter()
    client, key = await _app_client(tmp_path, release, meter)
    async with client:
        auth = {"Authorization": f"Bearer {key}"}
        ok = await client.get(f"/v1/tables/{TABLE}/rows", params={"limit": "5"}, headers=auth)
        assert ok.status_code == 200
        # Break the loaded table so the query fails after the access was counted.
        api = client.app.state.api
        api.release.layouts[TABLE] = None  # every use of it now fails
        failed = await client.get(f"/v1/tables/{TABLE}/rows", headers=auth)
        assert failed.status_code == 500
        # Read the stream before shutdown: the last settlement then trims what it settled.
        partner = next(iter(await meter.partners()))
        entries = await meter.read(partner, "0-0", 100)
    kinds = [e.kind for e in entries]
    assert kinds == [
        EntryKind.ACCESS,
        EntryKind.COMPLETE,
        EntryKind.ACCESS,
        EntryKind.RELEASE,
        EntryKind.COMPLETE,
    ]
    complete = entries[1]
    assert complete.ref == entries[0].id and complete.status == 200
    assert complete.bytes == len(ok.content) and (complete.latency_ms or 0) > 0
    assert entries[3].ref == entries[4].ref == entries[2].id and entries[4].status == 500
    assert await meter.count(partner, entries[0].month) == 1

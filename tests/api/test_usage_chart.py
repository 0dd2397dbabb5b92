"""/v1/account/usage.png: object-API rendering, cached per partner and day, rate-limited."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import date

import pytest

from dataflow.api.usage_chart import UsageCharts
from dataflow.contracts.models import ContractKind, Plan, Role
from dataflow.contracts.reports import UsageRow
from tests.api.conftest import PROBLEM, Env, this_month

PNG = "/v1/account/usage.png"


def test_rendering_never_imports_pyplot() -> None:
    """pyplot's global state (current figure, open-figure registry) is shared by every thread;
    the chart is drawn with a Figure of its own. A fresh interpreter shows what the path loads."""
    code = (
        "import asyncio, sys\n"
        "import dataflow.api.app\n"
        "from dataflow.api.usage_chart import UsageCharts\n"
        "from dataflow.contracts.reports import UsageRow\n"
        "row = UsageRow(month='2026-01', accesses=5, cap=9, cap_used_pct=None,\n"
        "               window_start=None, window_end=None, window_days=31, plan='sandbox')\n"
        "charts = UsageCharts()\n"
        "png = asyncio.run(charts.render([row], 'x'))\n"
        "charts.close()\n"
        "assert png.startswith(b'\\x89PNG'), png[:8]\n"
        "print('pyplot' if 'matplotlib.pyplot' in sys.modules else 'no pyplot')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "no pyplot", out.stdout + out.stderr


async def test_second_call_is_served_from_the_days_cache(env: Env) -> None:
    charts = env.api.charts
    first = await env.client.get(PNG, headers=env.auth())
    second = await env.client.get(PNG, headers=env.auth())
    assert first.status_code == second.status_code == 200
    assert first.headers["content-type"] == "image/png" and first.content.startswith(b"\x89PNG")
    assert second.content == first.content and charts.renders == 1
    other = await env.client.get(PNG, headers=env.auth(env.capped_key))  # another partner
    assert other.status_code == 200 and charts.renders == 2


async def test_concurrent_callers_share_one_render_and_a_new_day_draws_again() -> None:
    charts = UsageCharts()
    loads = 0

    async def rows() -> list[UsageRow]:
        nonlocal loads
        loads += 1
        await asyncio.sleep(0.01)
        return []

    try:
        pngs = await asyncio.gather(
            *(charts.partner_chart(7, date(2026, 3, 2), rows, "t") for _ in range(5))
        )
        assert len(set(pngs)) == 1 and charts.renders == 1 and loads == 1
        await charts.partner_chart(7, date(2026, 3, 3), rows, "t")
        assert charts.renders == 2
        await charts.partner_chart(7, date(2026, 3, 3), rows, "t")
        assert charts.renders == 2
    finally:
        charts.close()


async def test_a_key_over_its_rate_limit_gets_429_on_the_chart(env: Env) -> None:
    contracts = env.api.contracts
    partner = contracts.register_partner("Rated", Plan.CONTINUOUS)
    contracts.request_supply(partner.id, ContractKind.CONTINUOUS, rate_per_minute=2)
    key = contracts.create_key(partner.id)
    answers = [await env.client.get(PNG, headers=env.auth(key)) for _ in range(5)]
    statuses = [r.status_code for r in answers]
    # two a minute: five calls see a refusal even if a minute boundary falls among them (once)
    assert statuses[:2] == [200, 200] and 429 in statuses, statuses
    refused = next(r for r in answers if r.status_code == 429)
    assert refused.headers["content-type"].startswith(PROBLEM)
    assert refused.json()["type"].endswith("/rate-limited")
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert env.api.charts.renders == 1  # the cache saves the render; it does not lift the limit
    assert await env.meter.count(partner.id, this_month()) == 0  # no data access counted


@pytest.mark.parametrize("name", ["Acme $\\frac{1", "Dollar $x$ and $$", "R$ 10,00"])
async def test_staff_chart_of_a_partner_with_dollars_in_its_name(env: Env, name: str) -> None:
    """Titles are plain text: a name with $…$ is not parsed as mathtext (which raised: 500)."""
    contracts = env.api.contracts
    partner = contracts.register_partner(name, Plan.CONTINUOUS)
    staff = contracts.create_staff("aud", Role.AUDITOR)
    r = await env.client.get(f"/admin/v1/partners/{partner.id}/usage.png", headers=env.auth(staff))
    assert r.status_code == 200 and r.content.startswith(b"\x89PNG")

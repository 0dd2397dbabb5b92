"""The public transparency section (Resolução SEF 5.750/2024, Art. 43), no sign-in.

Active partners by modality and month, accesses and revenue per month, the tables on offer and
the releases published: counts and totals only (never a partner's name or bill), also as JSON and
CSV. The figures are computed at most once a minute per worker: the page is public.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import msgspec
from litestar import Request, Response, get
from litestar.datastructures import State
from litestar.response import Template

from dataflow.aggregation.lineage import releases_in
from dataflow.api.console.context import ConsoleState, console_state
from dataflow.api.console.render import page
from dataflow.api.console.views import today
from dataflow.api.state import ApiState
from dataflow.billing.compute import month_bounds
from dataflow.contracts.models import Contract, ContractKind, ContractState
from dataflow.ptbr import SAO_PAULO

__all__ = ["PUBLIC_HANDLERS", "releases_published", "transparency"]

MONTHS = 12
_NOT_YET = {
    ContractState.REQUESTED,
    ContractState.FEE_PAID,
    ContractState.BUDGET_ISSUED,
    ContractState.ACCEPTED,
    ContractState.AUTHORIZED,
}
_MODALITIES = [k.value for k in ContractKind]


class MonthFigures(msgspec.Struct, frozen=True, kw_only=True):
    month: str
    partners: dict[str, int]  # modality → partners with a contract in force in the month
    accesses: int  # settled accesses of all partners
    invoices: int
    billed_brl: str  # decimal text: issued and paid invoices of the month
    paid_brl: str


class Publication(msgspec.Struct, frozen=True, kw_only=True):
    version: str
    published_at: datetime | None  # the build's moment; the page shows its São Paulo day
    months: list[str]
    tables: int


class OfferedTable(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    title: str
    description: str
    measures: list[str]
    rows: int


class Transparency(msgspec.Struct, frozen=True, kw_only=True):
    generated_on: date
    months: list[MonthFigures]
    tables: list[OfferedTable]
    releases: list[Publication]
    current_release: str


def _in_force(c: Contract) -> tuple[date, date | None] | None:
    """The days a contract was in force (None: it never was)."""
    if c.state in _NOT_YET:
        return None
    if c.start_date is not None:
        first = c.start_date
    else:
        moment = c.accepted_at or c.requested_at
        if moment is None:
            return None
        first = moment.astimezone(SAO_PAULO).date()
    last = c.end_date
    if c.ended_at is not None and (last is None or c.ended_at.date() < last):
        last = c.ended_at.date()
    return first, last


def _recent_months(n: int) -> list[str]:
    out, day = [], today().replace(day=1)
    for _ in range(n):
        out.append(f"{day:%Y-%m}")
        day = date(day.year - (day.month == 1), (day.month - 2) % 12 + 1, 1)
    return out[::-1]


def releases_published(directory: Path) -> list[Publication]:
    """Every release published beside the one being served, newest first."""
    out = []
    for path in releases_in(directory):
        m = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
        months = m.get("source", {}).get("watermark", {}).get("months", {})
        out.append(
            Publication(
                version=str(m["version"]),
                published_at=datetime.fromisoformat(m["built_at"]) if m.get("built_at") else None,
                months=sorted(months),
                tables=len(m.get("tables", [])),
            )
        )
    return out[::-1]


def transparency(console: ConsoleState, api: ApiState) -> Transparency:
    months = _recent_months(MONTHS)
    intervals: list[tuple[int, str, tuple[date, date | None]]] = []
    for c in console.contracts.contracts():
        span = _in_force(c)
        if span is not None:
            intervals.append((c.partner_id, c.kind.value, span))
    usage = console.contracts.usage_totals()
    revenue = {r.month: r for r in console.reports.revenue_by_month(MONTHS * 2)}
    figures = []
    for m in months:
        first, last, _ = month_bounds(m)
        seen: dict[str, set[int]] = {k: set() for k in _MODALITIES}
        for pid, kind, (start, end) in intervals:
            if start <= last and (end is None or end >= first):
                seen[kind].add(pid)
        r = revenue.get(m)
        figures.append(
            MonthFigures(
                month=m,
                partners={k: len(v) for k, v in seen.items()},
                accesses=usage.get(m, 0),
                invoices=r.invoices if r else 0,
                billed_brl=str(r.billed_brl if r else "0.00"),
                paid_brl=str(r.paid_brl if r else "0.00"),
            )
        )
    tables = [
        OfferedTable(
            id=t.id,
            title=t.title_pt,
            description=t.description_pt,
            measures=t.measures,
            rows=t.rows,
        )
        for t in sorted(api.release.tables.values(), key=lambda t: t.id)
    ]
    return Transparency(
        generated_on=today(),
        months=figures,
        tables=tables,
        releases=releases_published(api.release.path.parent),
        current_release=api.release.version,
    )


async def _figures(state: State) -> Transparency:
    console = console_state(state)
    api: ApiState = state.api
    found: Transparency = await asyncio.to_thread(
        console.cached, "transparency", 60, lambda: transparency(console, api)
    )
    return found


_PUBLIC = {"Cache-Control": "public, max-age=60"}


@get("/transparencia")
async def transparency_page(request: Request[Any, Any, Any], state: State) -> Template:
    data = await _figures(state)
    template = page("transparencia.html", None, data=data, modalities=_MODALITIES)
    template.headers.update(_PUBLIC)
    return template


@get("/transparencia.json")
async def transparency_json(state: State) -> Response[bytes]:
    data = await _figures(state)
    return Response(msgspec.json.encode(data), media_type="application/json", headers=_PUBLIC)


@get("/transparencia.csv")
async def transparency_csv(state: State) -> Response[bytes]:
    data = await _figures(state)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(
        [
            "month",
            *(f"partners_{k}" for k in _MODALITIES),
            "accesses",
            "invoices",
            "billed_brl",
            "paid_brl",
        ]
    )
    for f in data.months:
        w.writerow(
            [
                f.month,
                *(f.partners[k] for k in _MODALITIES),
                f.accesses,
                f.invoices,
                f.billed_brl,
                f.paid_brl,
            ]
        )
    return Response(
        buf.getvalue().encode(),
        media_type="text/csv",
        headers={**_PUBLIC, "Content-Disposition": 'attachment; filename="transparencia.csv"'},
    )


PUBLIC_HANDLERS = [transparency_page, transparency_json, transparency_csv]

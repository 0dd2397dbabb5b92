"""Monitoring reports for sandbox participants (Art. 38–39): usage over time vs cap and window.

Usage comes from the monthly ``usage_ledger`` (settled counts), so the granularity is the month;
the window columns say how many days of each month the authorization covered.
"""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

import msgspec

from dataflow.contracts.models import Contract, ContractKind
from dataflow.contracts.service import ContractsService

__all__ = ["UsageRow", "usage_chart_png", "usage_csv", "usage_report"]


class UsageRow(msgspec.Struct, frozen=True, kw_only=True):
    month: str  # YYYY-MM
    accesses: int
    cap: int | None
    cap_used_pct: Decimal | None  # accesses / cap × 100, 1 decimal
    window_start: date | None
    window_end: date | None
    window_days: int  # days of this month inside the authorization window
    plan: str


def _month_bounds(month: str) -> tuple[date, date]:
    y, m = int(month[:4]), int(month[5:])
    first = date(y, m, 1)
    nxt = date(y + m // 12, m % 12 + 1, 1)
    return first, nxt - timedelta(days=1)


def _months(first: str, last: str) -> list[str]:
    out, (y, m) = [], (int(first[:4]), int(first[5:]))
    while f"{y:04d}-{m:02d}" <= last:
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def _covering(contracts: list[Contract], month: str) -> Contract | None:
    """The contract whose window covers most of the month (the newest on a tie)."""
    lo, hi = _month_bounds(month)
    best: tuple[int, int, Contract] | None = None
    for c in contracts:
        if c.start_date is None:
            continue
        start, end = max(c.start_date, lo), min(c.end_date or hi, hi)
        days = (end - start).days + 1
        if days > 0 and (best is None or (days, c.id) > best[:2]):
            best = (days, c.id, c)
    return best[2] if best else None


def usage_report(service: ContractsService, partner_id: int) -> list[UsageRow]:
    """One row per month from the first authorization or usage to this month."""
    ledger = service.usage_by_month(partner_id)
    contracts = [c for c in service.contracts(partner_id) if c.start_date is not None]
    this_month = service.today().strftime("%Y-%m")
    starts = [c.start_date.strftime("%Y-%m") for c in contracts if c.start_date] + list(ledger)
    if not starts:
        return []
    ends = [this_month, *ledger]
    rows = []
    for month in _months(min(starts), max(ends)):
        c = _covering(contracts, month)
        lo, hi = _month_bounds(month)
        cap = c.monthly_cap if c else None
        days = 0
        if c is not None and c.start_date is not None:
            days = (min(c.end_date or hi, hi) - max(c.start_date, lo)).days + 1
        n = ledger.get(month, 0)
        pct = (Decimal(n) * 100 / cap).quantize(Decimal("0.1"), ROUND_HALF_UP) if cap else None
        rows.append(
            UsageRow(
                month=month,
                accesses=n,
                cap=cap,
                cap_used_pct=pct,
                window_start=c.start_date if c else None,
                window_end=c.end_date if c else None,
                window_days=max(days, 0),
                plan="sandbox" if c and c.kind is ContractKind.SANDBOX else "continuous",
            )
        )
    return rows


def usage_csv(rows: list[UsageRow]) -> str:
    buf = io.StringIO()
    fields = list(UsageRow.__struct_fields__)
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in msgspec.to_builtins(r).items()})
    return buf.getvalue()


def usage_chart_png(rows: list[UsageRow], title: str) -> bytes:
    """Bars of monthly accesses, the cap as a line, months outside the window shaded.

    matplotlib's object API only (a ``Figure`` of its own, the Agg canvas): pyplot keeps global
    state (the current figure, a registry of open ones) that concurrent renders in threads
    would share. Titles are plain text: a name with ``$…$`` is not mathtext (which can fail).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3.6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    xs = list(range(len(rows)))
    ax.bar(xs, [r.accesses for r in rows], color="#2b6cb0", label="accesses (settled)")
    caps = [r.cap if r.cap is not None else float("nan") for r in rows]
    if any(r.cap is not None for r in rows):
        ax.step(xs, caps, where="mid", color="#c53030", label="monthly cap (Art. 37)")
    for x, r in zip(xs, rows, strict=True):
        if r.window_days == 0:
            ax.axvspan(x - 0.5, x + 0.5, color="#cccccc", alpha=0.5, lw=0)
    ax.set_xticks(xs, [r.month for r in rows], rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("data accesses")
    ax.set_title(title + " (grey: outside the authorization window)", fontsize=10, parse_math=False)
    if rows:
        ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()

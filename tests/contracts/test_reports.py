from __future__ import annotations

import csv
import io
from datetime import date

from dataflow.contracts.lifecycle import Event
from dataflow.contracts.models import Plan
from dataflow.contracts.reports import usage_chart_png, usage_csv, usage_report
from dataflow.contracts.service import ContractsService

from .conftest import Clock


def test_monitoring_report_usage_vs_cap_and_window(service: ContractsService, clock: Clock) -> None:
    p = service.register_partner("Lab", Plan.SANDBOX)
    c = service.authorize_sandbox(
        p.id,
        start=date(2026, 1, 10),
        end=date(2027, 1, 9),
        monthly_cap=1000,
        secrecy_term_accepted=True,
    )
    service.transition(c.id, Event.ACTIVATE)
    for month, n in (("2026-01", 120), ("2026-02", 1000), ("2026-03", 40)):
        service.record_usage(p.id, month, n)
    rows = usage_report(service, p.id)  # clock: 2026-03-02
    assert [r.month for r in rows] == ["2026-01", "2026-02", "2026-03"]
    assert [(r.accesses, r.cap, str(r.cap_used_pct)) for r in rows] == [
        (120, 1000, "12.0"),
        (1000, 1000, "100.0"),
        (40, 1000, "4.0"),
    ]
    assert [r.window_days for r in rows] == [22, 28, 31]
    parsed = list(csv.DictReader(io.StringIO(usage_csv(rows))))
    assert parsed[1] == {
        "month": "2026-02",
        "accesses": "1000",
        "cap": "1000",
        "cap_used_pct": "100.0",
        "window_start": "2026-01-10",
        "window_end": "2027-01-09",
        "window_days": "28",
        "plan": "sandbox",
    }
    png = usage_chart_png(rows, "Lab")
    assert png.startswith(b"\x89PNG") and len(png) > 5000

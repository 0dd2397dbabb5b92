"""`dataflow billing …` end to end through the real entry point (SQLite under the data dir)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from dataflow.cli import app
from dataflow.contracts.repository import make_engine
from dataflow.contracts.service import ContractsService

from .conftest import REPO


def _run(tmp_path: Path, *args: str, as_operator: bool = False) -> tuple[int, str, str]:
    """Run as finance (a staff token in DATAFLOW_STAFF_TOKEN), or as an operator without one."""
    env = {"DATAFLOW_DATA_DIR": str(tmp_path), "DATAFLOW_BILLING_GRACE_DAYS": "2"}
    token = tmp_path / "finance.token"
    if not as_operator:
        if not token.exists():
            r = CliRunner().invoke(app, ["staff", "create", "Fin", "--role", "finance"], env=env)
            token.write_text(r.stdout.strip().splitlines()[-1])
        env["DATAFLOW_STAFF_TOKEN"] = token.read_text()
    r = CliRunner().invoke(app, list(args), env=env)
    return r.exit_code, r.stdout, r.stderr


def test_billing_is_finance_s_and_leaves_a_trace(tmp_path: Path) -> None:
    """An operator (the CLI without a finance token) cannot bill; every finance action is
    audited with its actor, in the same database as the change."""
    code, out, _ = _run(
        tmp_path,
        "partner",
        "create",
        "Acme",
        "--plan",
        "continuous",
        "--contract",
        str(REPO / "examples" / "contract-continuous.toml"),
        as_operator=True,
    )
    assert code == 1  # priced terms need finance
    code, out, _ = _run(tmp_path, "partner", "create", "Acme", "--plan", "continuous")
    pid = out.strip().splitlines()[-1]
    for args in (
        ["billing", "run", "--month", "2026-03"],
        ["billing", "fine", pid, "--month", "2026-03", "--reason", "x", "--ufemg", "1"],
        ["partner", "fine", pid, "--reason", "x", "--amount", "1"],
        ["billing", "issue", "--due"],
        ["billing", "analysis-fee", "--payer", "X"],
    ):
        code, _, err = _run(tmp_path, *args, as_operator=True)
        assert code == 1 and "needs the finance role" in err, args
    code, out, _ = _run(tmp_path, "audit", "list", "--entity", "billing_run")
    assert out == ""  # nothing refused left a trace of a change


def test_finance_story(tmp_path: Path) -> None:
    code, out, _ = _run(
        tmp_path,
        "partner",
        "create",
        "Acme",
        "--plan",
        "continuous",
        "--contract",
        str(REPO / "examples" / "contract-continuous.toml"),
    )
    assert code == 0
    pid = int(out.strip().splitlines()[-1])
    ContractsService(make_engine(f"sqlite:///{tmp_path / 'dataflow.db'}")).record_usage(
        pid, "2026-03", 150_000
    )
    code, out, _ = _run(
        tmp_path,
        "billing",
        "fine",
        str(pid),
        "--month",
        "2026-03",
        "--reason",
        "CGMD 7/2026",
        "--ufemg",
        "100",
    )
    assert code == 0, out
    code, out, err = _run(tmp_path, "billing", "run", "--month", "2026-03")
    assert code == 0, err
    assert json.loads(out)["created"] == 1 and "billed 2026-03" in err
    assert "datasets/dae.toml: revenue_code" in json.loads(out)["example_values"]
    [draft] = json.loads(_run(tmp_path, "billing", "invoices", "--status", "draft")[1])
    assert draft["total_ufemg"] == "4400.0000"  # 4,000 franchise + 300 support + 100 fine
    code, out, _ = _run(tmp_path, "billing", "issue", str(draft["id"]))
    assert code == 0
    [issued] = json.loads(out)
    assert issued["number"].endswith("/000001")
    code, _, err = _run(tmp_path, "billing", "issue", str(draft["id"]))
    assert code == 1 and "only drafts" in err
    # datasets/dae.toml holds example codes: no statement without saying so explicitly
    code, out, err = _run(
        tmp_path, "billing", "statement", str(draft["id"]), "--out", str(tmp_path / "dae")
    )
    assert code == 1 and "EXAMPLE codes" in err and "--allow-example-codes" in err
    assert not (tmp_path / "dae").exists()
    code, out, err = _run(
        tmp_path,
        "billing",
        "statement",
        str(draft["id"]),
        "--out",
        str(tmp_path / "dae"),
        "--allow-example-codes",
    )
    assert code == 0 and "EXAMPLE" in err
    assert json.loads(out)["example_values"] == [
        "datasets/dae.toml: revenue_code",
        "datasets/dae.toml: barcode_agency_code",
    ]
    pdfs = list((tmp_path / "dae").glob("*.pdf"))
    assert len(pdfs) == 1 and pdfs[0].read_bytes()[:4] == b"%PDF"
    [csv_file] = (tmp_path / "dae").glob("*.csv")
    assert "datasets/dae.toml: revenue_code" in csv_file.read_text()
    code, out, _ = _run(
        tmp_path,
        "billing",
        "pay",
        "--reference",
        issued["dae_reference"],
        "--amount",
        issued["total_brl"],
        "--paid-on",
        "2026-04-20",
    )
    assert code == 0 and json.loads(out)["status"] == "paid"
    code, out, _ = _run(tmp_path, "billing", "show", str(draft["id"]))
    shown = json.loads(out)
    assert [x["code"] for x in shown["lines"]] == ["usage", "franchise_true_up", "support", "fine"]
    code, out, _ = _run(tmp_path, "billing", "runs")
    [run] = json.loads(out)
    assert run["month"] == "2026-03" and run["created"] == 1 and run["trigger"] == "cli"
    assert run["finished_at"] is not None and run["actor"].startswith("staff:Fin(finance) via cli:")
    # every billing action is in the audit log, under the finance colleague's name
    code, out, _ = _run(tmp_path, "audit", "list", "--limit", "1000")
    entries = [json.loads(line) for line in out.splitlines()]
    actions = {e["action"] for e in entries if e["actor"].startswith("staff:Fin(finance)")}
    assert {
        "contract.create",
        "sanction.fine",
        "billing.run.start",
        "billing.run.finish",
        "invoice.issue",
        "payment.record",
        "invoice.paid",
    } <= actions


def test_check_contract_flags_low_franchise(tmp_path: Path) -> None:
    low = tmp_path / "low.toml"
    low.write_text(
        'kind = "continuous"\nstart = 2026-01-01\nunit_price_ufemg = "0.01"\n'
        'franchise_accesses = 100000\nsupport_ufemg = "300"\n'
        '[readjustment]\nkind = "percent"\npercent = "5"\n'
    )
    code, out, err = _run(tmp_path, "billing", "check-contract", str(low), "--until", "2028-06-30")
    assert code == 0 and "warning" in err
    result = json.loads(out)
    assert "1000.00 UFEMG" in result["warnings"][0]
    # contract + anniversaries 2027-01-01 and 2028-01-01: 0.01 → 0.0105 → 0.011025
    assert [s["unit_price_ufemg"] for s in result["schedules"]] == ["0.01", "0.010500", "0.011025"]
    bad = tmp_path / "bad.toml"
    bad.write_text('kind = "continuous"\nstart = 2026-01-01\nfranchise_accesses = -1\n')
    assert _run(tmp_path, "billing", "check-contract", str(bad))[0] == 1


def test_budget_and_analysis_fee(tmp_path: Path) -> None:
    code, out, _ = _run(
        tmp_path,
        "billing",
        "budget",
        "--items",
        str(REPO / "examples" / "budget-on-demand.toml"),
        "--on",
        "2026-05-04",
        "--requested",
        "2026-05-01",
        "--payer",
        "Beta Ltda",
        "--cnpj",
        "11222333000181",
    )
    assert code == 0
    result = json.loads(out)
    # IV 120 h × 26.5 = 3,180 + V 36 h × 8.5 = 306 + I 1 × 125 = 125 → 3,611 UFEMG (example values)
    assert result["budget"]["total_ufemg"] == "3611.0000"
    assert result["budget"]["present_by"] == "2026-05-31"  # 30 days (Art. 12 sole paragraph)
    assert result["invoice"]["status"] == "issued"
    assert result["invoice"]["total_ufemg"] == "3611.0000"
    assert "datasets/cost_items.csv: Art. 6 unit values" in result["example_values"]
    code, out, _ = _run(
        tmp_path, "billing", "analysis-fee", "--payer", "Gamma SA", "--on", "2026-02-02"
    )
    assert code == 0
    fee = json.loads(out)
    assert fee["total_ufemg"] == "50.0000" and fee["invoice_kind"] == "analysis_fee"
    assert fee["total_brl"] == "289.50"  # 50 × 5.7899 = 289.495 → half up
    assert "datasets/dae.toml: barcode_agency_code" in fee["example_values"]


def test_request_daes_drive_the_request(tmp_path: Path) -> None:
    """Art. 9 IV and 14 from the CLI: pay the fee DAE, then the budget DAE; no pay-fee/accept."""
    pid = _run(tmp_path, "partner", "register", "Beta", "--plan", "continuous", as_operator=True)
    code, out, _ = _run(
        tmp_path, "contract", "request", pid[1].split()[-1], "--kind", "on_demand", as_operator=True
    )
    cid = out.split()[-1]
    code, out, err = _run(tmp_path, "billing", "analysis-fee", "--contract", cid)
    assert code == 0, err
    fee = json.loads(out)
    assert fee["payer_name"] == "Beta" and fee["contract_id"] == int(cid)
    _run(
        tmp_path,
        "billing",
        "pay",
        "--reference",
        fee["dae_reference"],
        "--amount",
        fee["total_brl"],
    )
    code, out, err = _run(
        tmp_path,
        "billing",
        "budget",
        "--items",
        str(REPO / "examples" / "budget-on-demand.toml"),
        "--contract",
        cid,
    )
    assert code == 0, err
    budget = json.loads(out)["invoice"]
    [contract] = [json.loads(x) for x in _run(tmp_path, "contract", "list")[1].splitlines()]
    assert contract["state"] == "budget_issued" and contract["budget_ufemg"] == "3611.0000"
    _run(
        tmp_path,
        "billing",
        "pay",
        "--reference",
        budget["dae_reference"],
        "--amount",
        budget["total_brl"],
    )
    [contract] = [json.loads(x) for x in _run(tmp_path, "contract", "list")[1].splitlines()]
    assert contract["state"] == "accepted"

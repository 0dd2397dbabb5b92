"""The stable CLI interfaces of DESIGN §10, through the real entry point."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from dataflow.cli import app

REPO = Path(__file__).resolve().parents[1]


def _run(tmp_path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"DATAFLOW_DATA_DIR": str(tmp_path)})
    return result.exit_code, result.stdout


def test_billing_preview_prints_invoice_json(tmp_path: Path) -> None:
    code, out = _run(
        tmp_path,
        "billing",
        "preview",
        "--contract",
        str(REPO / "examples" / "contract-continuous.toml"),
        "--accesses",
        "260000",
        "--month",
        "2026-04",
    )
    assert code == 0, out
    invoice = json.loads(out)
    assert invoice["total_ufemg"] == "5500.0000"
    assert (
        invoice["total_brl"] == "31844.45"
    )  # 5,200 × 5.7899 = 30,107.48 + 300 × 5.7899 = 1,736.97
    assert [line["code"] for line in invoice["lines"]] == ["usage", "support"]


def test_billing_preview_rejects_bad_month(tmp_path: Path) -> None:
    code, _ = _run(
        tmp_path,
        "billing",
        "preview",
        "--contract",
        str(REPO / "examples" / "contract-continuous.toml"),
        "--accesses",
        "1",
        "--month",
        "2026-13",
    )
    assert code == 2


def test_partner_and_key_print_last(tmp_path: Path) -> None:
    code, out = _run(tmp_path, "partner", "create", "Acme", "--plan", "sandbox", "--cap", "10")
    assert code == 0
    partner = out.strip().splitlines()[-1]
    assert partner.isdigit()
    code, out = _run(tmp_path, "key", "create", partner)
    assert code == 0 and out.strip().splitlines()[-1].startswith("df_")
    code, _ = _run(tmp_path, "key", "create", "999")
    assert code == 1


def test_generate_and_build(tmp_path: Path) -> None:
    code, out = _run(
        tmp_path, "data", "generate", "--items", "20000", "--seed", "5", "--months", "2026-01"
    )
    assert code == 0 and json.loads(out)["items"] == 20000
    code, out = _run(tmp_path, "release", "build")
    assert code == 0
    summary = json.loads(out)
    assert (Path(summary["path"]) / "manifest.json").is_file()


def test_partner_create_flags_franchise_under_the_floor(tmp_path: Path) -> None:
    contract = tmp_path / "low.toml"
    contract.write_text(
        'kind = "continuous"\nstart = 2026-01-01\nunit_price_ufemg = "0.01"\n'
        'franchise_accesses = 100000\nsupport_ufemg = "300"\n'
    )
    env = {"DATAFLOW_DATA_DIR": str(tmp_path)}
    staff = CliRunner().invoke(app, ["staff", "create", "Fin", "--role", "finance"], env=env)
    env["DATAFLOW_STAFF_TOKEN"] = staff.stdout.strip().splitlines()[-1]  # priced terms: finance
    result = CliRunner().invoke(
        app,
        ["partner", "create", "Low", "--plan", "continuous", "--contract", str(contract)],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert "under the 3000 UFEMG monthly minimum" in result.stderr
    assert result.stdout.strip().splitlines()[-1].isdigit()  # created all the same


def test_each_contract_event_command_declares_only_its_options(tmp_path: Path) -> None:
    expected = {
        "pay-fee": set(),
        "issue-budget": {"--budget"},
        "accept": set(),
        "activate": {"--terms"},
        "extend": {"--new-end"},
        "suspend": set(),
        "resume": set(),
        "end": {"--reason"},
        "migrate": {"--terms"},
        "cancel": set(),
    }
    shared = {"--budget", "--terms", "--new-end", "--reason"}
    for command, options in expected.items():
        code, out = _run(tmp_path, "contract", command, "--help")
        assert code == 0, out
        shown = {o for o in shared if o in out}
        assert shown == options, (command, shown)

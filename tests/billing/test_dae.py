"""DAE statements: a payable one carries a valid barcode; a zero (sandbox) one is a usage report."""

from __future__ import annotations

import base64
import contextlib
import csv
import io
import zlib
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from dataflow.billing.barcode import barcode_is_valid
from dataflow.billing.compute import compute_invoice
from dataflow.billing.dae import CSV_FIELDS, Statement, statement_csv, write_statement_pdf
from dataflow.billing.errors import InvoiceStateError
from dataflow.billing.reference import BillingReference
from dataflow.billing.repository import StoredInvoice
from dataflow.contracts.models import Plan
from dataflow.contracts.terms import ContractTerms

from .conftest import REPO

REF = BillingReference.load(REPO / "datasets")
NOW = datetime(2026, 4, 6, 12, tzinfo=UTC)


def _stored(terms: ContractTerms, accesses: int, *, status: str = "issued") -> Statement:
    inv = compute_invoice(terms, accesses=accesses, month="2026-03", ufemg=REF.ufemg)
    si = StoredInvoice(
        id=1,
        partner_id=1,
        invoice_kind="monthly",
        month="2026-03",
        contract_kind=terms.kind.value,
        status=status,
        number="2026/000001",
        dae_reference="2026000000011",
        payer_name="Análise Mineira Ltda",
        payer_cnpj="12ABC34501DE35",
        accesses=accesses,
        brl_per_ufemg=inv.brl_per_ufemg,
        total_ufemg=inv.total_ufemg,
        total_brl=inv.total_brl,
        period_start=inv.period_start,
        period_end=inv.period_end,
        due_date=date(2026, 4, 21),
        created_at=NOW,
        issued_at=NOW,
        paid_at=None,
    )
    return Statement(si, inv.lines, REF.dae)


def test_payable_statement(tmp_path: Path) -> None:
    terms = ContractTerms.from_file(REPO / "examples" / "contract-continuous.toml")
    s = _stored(terms, 150_000)
    assert s.payable and barcode_is_valid(s.barcode)
    assert s.barcode[4:15] == "00002489657"  # R$ 24,896.57 in centavos
    assert s.period == "03/2026"
    pdf = write_statement_pdf(s, tmp_path / "dae.pdf")
    assert pdf.read_bytes()[:5] == b"%PDF-"
    rows = list(csv.DictReader(io.StringIO(statement_csv([s]))))
    assert list(rows[0]) == CSV_FIELDS
    assert [r["line_code"] for r in rows] == ["usage", "franchise_true_up", "support"]
    assert sum(Decimal(r["amount_brl"]) for r in rows) == Decimal(rows[0]["total_brl"])
    assert {r["barcode"] for r in rows} == {s.barcode}


def test_sandbox_statement_has_nothing_to_pay(tmp_path: Path) -> None:
    terms = ContractTerms(
        kind=Plan.SANDBOX, start=date(2026, 1, 10), end=date(2026, 12, 31), cap=50_000
    )
    s = _stored(terms, 31_234)
    assert not s.payable
    pdf = write_statement_pdf(s, tmp_path / "sandbox.pdf")
    assert pdf.stat().st_size > 1000
    rows = list(csv.DictReader(io.StringIO(statement_csv([s]))))
    assert rows[0]["quantity"] == "31234" and rows[0]["barcode"] == ""


def test_statement_lines_are_in_portuguese(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The DAE is for people: its lines are worded in Portuguese from their codes (the CSV keeps
    the English record and adds the Portuguese text)."""
    from reportlab import rl_config

    monkeypatch.setattr(rl_config, "pageCompression", 0)  # so the PDF's text can be read back
    s = _stored(ContractTerms.from_file(REPO / "examples" / "contract-continuous.toml"), 150_000)
    pdf = write_statement_pdf(s, tmp_path / "dae.pdf").read_bytes()
    assert b"Acessos: 150.000" in pdf and b"Suporte t" in pdf
    assert b"Accesses" not in pdf and b"Monthly technical support" not in pdf
    rows = list(csv.DictReader(io.StringIO(statement_csv([s]))))
    assert rows[0]["line_description"].startswith("Accesses: 150,000")
    assert rows[0]["line_text_pt"] == "Acessos: 150.000 × 0,02 UFEMG"


def test_draft_has_no_statement() -> None:
    terms = ContractTerms.from_file(REPO / "examples" / "contract-continuous.toml")
    with pytest.raises(InvoiceStateError):
        _stored(terms, 1, status="draft")


def _pdf_text(path: Path) -> bytes:
    """The content streams, decoded (reportlab writes them ASCII85 + Flate)."""
    out = b""
    for chunk in path.read_bytes().split(b"stream")[1::2]:
        body = chunk.strip().removesuffix(b"end").strip()
        with contextlib.suppress(ValueError, zlib.error):
            out += zlib.decompress(base64.a85decode(body.removesuffix(b"~>")))
    return out


def test_example_codes_travel_with_every_output(tmp_path: Path) -> None:
    """datasets/dae.toml holds example codes: the CSV rows and the bank slip say so."""
    assert REF.dae.example
    terms = ContractTerms.from_file(REPO / "examples" / "contract-continuous.toml")
    s = _stored(terms, 150_000)
    rows = list(csv.DictReader(io.StringIO(statement_csv([s]))))
    assert rows and all("revenue_code" in r["example_values"] for r in rows)
    assert all("barcode_agency_code" in r["example_values"] for r in rows)
    text = _pdf_text(write_statement_pdf(s, tmp_path / "dae.pdf"))
    # the header's mark, and the bank slip's own (the part a bank would read)
    assert text.count(b"MODELO") == 2 and b"receita e \\363rg\\343o de exemplo" in text
    real = msgspec.structs.replace(REF.dae, example=False)
    real_rows = list(csv.DictReader(io.StringIO(statement_csv([Statement(s.inv, s.lines, real)]))))
    assert {r["example_values"] for r in real_rows} == {""}


def test_an_overdue_invoice_still_has_its_dae() -> None:
    terms = ContractTerms.from_file(REPO / "examples" / "contract-continuous.toml")
    s = _stored(terms, 150_000, status="overdue")
    assert s.payable and barcode_is_valid(s.barcode)

"""Invoice lines in Portuguese, from their code and values: never the English record."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from dataflow.billing.compute import compute_invoice
from dataflow.billing.models import Fine, InvoiceLine
from dataflow.billing.reading.wording import line_text
from dataflow.billing.reference import BillingReference
from dataflow.contracts.models import Plan
from dataflow.contracts.terms import Band, ContractTerms

ENGLISH = (
    "Accesses",
    "Monthly",
    "Franchise",
    "Sandbox",
    "Fine",
    "Minimum",
    "Adjustment",
    "prorated",
)


def _texts(
    terms: ContractTerms, accesses: int, month: str, ref: BillingReference, **kw: object
) -> dict[str, str]:
    inv = compute_invoice(
        terms, accesses=accesses, month=month, ufemg=ref.ufemg, indices=ref.indices, **kw
    )  # type: ignore[arg-type]
    return {line.code: line_text(line) for line in inv.lines}


def test_the_worked_example_reads_in_portuguese(billing_reference: BillingReference) -> None:
    terms = ContractTerms(
        kind=Plan.CONTINUOUS,
        start=date(2026, 1, 1),
        unit_price_ufemg=Decimal("0.02"),
        franchise_accesses=200_000,
        support_ufemg=Decimal(300),
    )
    t = _texts(
        terms,
        150_000,
        "2026-03",
        billing_reference,
        fines=[Fine(reason="atraso", percent=Decimal(5))],
    )
    assert t["usage"] == "Acessos: 150.000 × 0,02 UFEMG"
    assert t["franchise_true_up"] == (
        "Franquia de 200.000 acessos (Art. 10, III): 50.000 acessos não utilizados × 0,02 UFEMG"
    )
    assert t["support"] == "Suporte técnico mensal (Art. 10, IV)"
    assert t["fine"] == "Multa (Art. 45, III) — atraso: 5% de 4.300,0000 UFEMG"
    low = ContractTerms(
        kind=Plan.CONTINUOUS,
        start=date(2026, 1, 15),
        unit_price_ufemg=Decimal("0.01"),
        franchise_accesses=100_000,
        support_ufemg=Decimal(300),
    )
    t = _texts(low, 10_000, "2026-01", billing_reference)
    assert "proporcional a 17/31 dias" in t["franchise_true_up"]
    assert t["minimum_floor"].startswith("Consumo mínimo mensal de 3.000 UFEMG (Art. 10, II)")


def test_bands_sandbox_and_migration(billing_reference: BillingReference) -> None:
    banded = ContractTerms(
        kind=Plan.CONTINUOUS,
        start=date(2026, 1, 1),
        unit_price_ufemg=Decimal("0.02"),
        franchise_accesses=200_000,
        bands=[Band(up_to=300_000, price_ufemg=Decimal(5400))],
    )
    t = _texts(banded, 250_000, "2026-02", billing_reference)
    assert (
        t["consumption_band"] == "Faixa de consumo até 300.000 acessos (250.000 acessos utilizados)"
    )
    sandbox = ContractTerms(
        kind=Plan.SANDBOX, start=date(2026, 1, 1), end=date(2026, 12, 31), cap=50_000
    )
    t = _texts(sandbox, 12_345, "2026-03", billing_reference)
    assert t["sandbox_usage"] == (
        "Acessos no SANDBOX de 01/03/2026 a 31/03/2026 (preço público afastado, Art. 29): "
        "12.345 de um limite de 50.000 (24,7%)"
    )
    assert t["sandbox_window"] == (
        "Janela de autorização do SANDBOX de 01/01/2026 a 31/12/2026: dia 90 de 365 em 31/03/2026"
    )
    migrated = ContractTerms(
        kind=Plan.CONTINUOUS,
        start=date(2026, 3, 16),
        sandbox_from=date(2026, 1, 1),
        unit_price_ufemg=Decimal("0.02"),
        franchise_accesses=200_000,
    )
    t = _texts(migrated, 31_000, "2026-03", billing_reference)
    assert t["migration"].startswith("Migração para o fornecimento pago em 16/03/2026: 31.000")
    for text in t.values():
        assert not any(word in text for word in ENGLISH), text


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("usage", "Acessos: 7 × 0,02 UFEMG"),
        ("support", "Suporte técnico mensal (Art. 10, IV)"),
        ("adjustment", "Ajuste de acessos apurados após a emissão de fatura anterior"),
        ("sandbox_window", "Janela de autorização do SANDBOX (Art. 36)"),
        ("something_new", "Item something_new"),
    ],
)
def test_lines_stored_before_params_still_read_in_portuguese(code: str, expected: str) -> None:
    line = InvoiceLine(
        code=code,
        description="Accesses: 7 × 0.02 UFEMG",
        quantity=7,
        unit_price_ufemg=Decimal("0.02"),
        amount_ufemg=Decimal("0.14"),
        amount_brl=Decimal("0.81"),
    )
    assert line_text(line) == expected

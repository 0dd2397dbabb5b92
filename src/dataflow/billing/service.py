"""Monthly invoice computation (Art. 10 and 13; DESIGN §8). Every line explains itself."""

from __future__ import annotations

from decimal import Decimal

from dataflow.billing.models import (
    MONTHLY_FLOOR_UFEMG,
    ContractKind,
    ContractTerms,
    Invoice,
    InvoiceLine,
)
from dataflow.billing.money import Brl, Ufemg
from dataflow.billing.ufemg import UfemgTable

__all__ = ["compute_invoice", "consumption_lines"]


def _line(
    code: str,
    description: str,
    amount: Ufemg,
    rate: Decimal,
    *,
    quantity: int | None = None,
    unit: Decimal | None = None,
) -> InvoiceLine:
    # Conversion to BRL happens once per line, at the UFEMG of the billed period.
    return InvoiceLine(
        code=code,
        description=description,
        quantity=quantity,
        unit_price_ufemg=unit,
        amount_ufemg=amount.amount,
        amount_brl=amount.to_brl(rate).amount,
    )


ConsumptionPart = tuple[str, str, Ufemg, int | None, Decimal | None]


def consumption_lines(terms: ContractTerms, accesses: int) -> list[ConsumptionPart]:
    """(code, description, amount, quantity, unit price) of consumption, before the floor."""
    unit = terms.unit_price_ufemg
    chargeable = max(accesses, terms.franchise_accesses)
    band = next((b for b in terms.bands if chargeable <= b.up_to), None)
    if band is not None:
        return [
            (
                "consumption_band",
                f"Consumption band up to {band.up_to:,} accesses ({accesses:,} accesses used)",
                Ufemg(band.price_ufemg),
                accesses,
                None,
            )
        ]
    out: list[ConsumptionPart] = [
        ("usage", f"Accesses × {unit} UFEMG", Ufemg(unit * accesses), accesses, unit)
    ]
    if accesses < terms.franchise_accesses:
        short = terms.franchise_accesses - accesses
        out.append(
            (
                "franchise_true_up",
                f"Franchise of {terms.franchise_accesses:,} accesses: "
                f"{short:,} unused accesses × {unit} UFEMG",
                Ufemg(unit * short),
                short,
                unit,
            )
        )
    return out


def compute_invoice(
    terms: ContractTerms, *, accesses: int, month: str, ufemg: UfemgTable
) -> Invoice:
    """The month's invoice: consumption (franchise, bands), the 3,000-UFEMG floor, support."""
    if accesses < 0:
        raise ValueError("accesses must not be negative")
    rate = ufemg.brl_per_ufemg(int(month[:4]))
    lines: list[InvoiceLine] = []
    if terms.kind is ContractKind.SANDBOX:
        cap = f", cap {terms.cap:,}" if terms.cap is not None else ""
        lines.append(
            _line(
                "sandbox_usage",
                f"Sandbox accesses (price waived, Art. 29{cap})",
                Ufemg(Decimal(0)),
                rate,
                quantity=accesses,
                unit=Decimal(0),
            )
        )
    else:
        consumption = Ufemg(Decimal(0))
        for code, desc, amount, qty, unit in consumption_lines(terms, accesses):
            lines.append(_line(code, desc, amount, rate, quantity=qty, unit=unit))
            consumption = consumption + amount
        floor = Ufemg(MONTHLY_FLOOR_UFEMG)
        if consumption < floor:
            lines.append(
                _line(
                    "minimum_floor",
                    f"Minimum monthly consumption of {MONTHLY_FLOOR_UFEMG} UFEMG (Art. 10): "
                    f"{floor - consumption} UFEMG added to {consumption} UFEMG",
                    floor - consumption,
                    rate,
                )
            )
        if terms.support_ufemg:
            lines.append(_line("support", "Monthly support", Ufemg(terms.support_ufemg), rate))
    total_ufemg = sum((Ufemg(line.amount_ufemg) for line in lines), Ufemg(Decimal(0)))
    total_brl = sum((Brl(line.amount_brl) for line in lines), Brl(Decimal(0)))
    return Invoice(
        month=month,
        kind=terms.kind,
        accesses=accesses,
        brl_per_ufemg=rate,
        lines=lines,
        total_ufemg=total_ufemg.amount,
        total_brl=total_brl.amount,
    )

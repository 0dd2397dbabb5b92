"""On-demand budgets (Art. 12: Σ quantity × unit value per cost item) and the Art. 9 fee."""

from __future__ import annotations

import tomllib
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import msgspec

from dataflow.billing.errors import BillingError
from dataflow.billing.models import ANALYSIS_FEE_UFEMG, InvoiceLine
from dataflow.billing.money import Brl, Ufemg
from dataflow.billing.ufemg import COST_ITEMS, CostItemTable, UfemgTable

__all__ = ["Budget", "BudgetItem", "analysis_fee_lines", "compute_budget", "load_budget_items"]

# Art. 12 sole paragraph / Art. 13 sole paragraph: days SEF/MG has to present the budget.
BUDGET_DAYS = {"on_demand": 30, "continuous": 60}


class BudgetItem(msgspec.Struct, frozen=True, kw_only=True):
    item: str  # I … VI (Art. 6)
    quantity: Decimal
    note: str = ""


class Budget(msgspec.Struct, frozen=True, kw_only=True):
    on: date
    modality: str
    present_by: date  # deadline counted from the request's formalization (Art. 9 I)
    brl_per_ufemg: Decimal
    lines: list[InvoiceLine]
    total_ufemg: Decimal
    total_brl: Decimal


def load_budget_items(path: Path) -> list[BudgetItem]:
    """``[[items]]`` tables with ``item`` (I–VI), ``quantity`` and an optional ``note``."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        items = msgspec.convert(data.get("items", []), list[BudgetItem], strict=False)
    except (tomllib.TOMLDecodeError, msgspec.ValidationError) as e:
        raise BillingError(f"budget {path}: {e}") from None
    if not items:
        raise BillingError(f"budget {path}: no [[items]]")
    return items


def compute_budget(
    items: list[BudgetItem],
    *,
    on: date,
    requested_on: date,
    cost_items: CostItemTable,
    ufemg: UfemgTable,
    modality: str = "on_demand",
) -> Budget:
    rate = ufemg.brl_per_ufemg(on.year)
    lines: list[InvoiceLine] = []
    for it in items:
        if it.item not in COST_ITEMS:
            raise BillingError(f"cost item {it.item!r}: expected one of {', '.join(COST_ITEMS)}")
        if it.quantity < 0:
            raise BillingError(f"cost item {it.item}: quantity must not be negative")
        v = cost_items.in_force(it.item, on)
        amount = Ufemg(it.quantity * v.unit_value_ufemg)
        note = f" — {it.note}" if it.note else ""
        lines.append(
            InvoiceLine(
                code=f"cost_item_{it.item}",
                description=(
                    f"{it.item}. {COST_ITEMS[it.item]}: {it.quantity} {v.unit} × "
                    f"{v.unit_value_ufemg} UFEMG (in force from {v.effective_from}; "
                    f"{v.source}){note}"
                ),
                quantity=int(it.quantity) if it.quantity == int(it.quantity) else None,
                unit_price_ufemg=v.unit_value_ufemg,
                amount_ufemg=amount.amount,
                amount_brl=amount.to_brl(rate).amount,
                params={
                    "item": it.item,
                    "quantity": str(it.quantity),
                    "unit": v.unit,
                    "effective_from": v.effective_from.isoformat(),
                    "source": v.source,
                    **({"note": it.note} if it.note else {}),
                },
            )
        )
    return Budget(
        on=on,
        modality=modality,
        present_by=requested_on + timedelta(days=BUDGET_DAYS[modality]),
        brl_per_ufemg=rate,
        lines=lines,
        total_ufemg=Ufemg.total(Ufemg(x.amount_ufemg) for x in lines).amount,
        total_brl=Brl.total(Brl(x.amount_brl) for x in lines).amount,
    )


def analysis_fee_lines(on: date, ufemg: UfemgTable) -> tuple[Decimal, list[InvoiceLine]]:
    """The Art. 9 I fee: 50 UFEMG at the value in force on `on`."""
    rate = ufemg.brl_per_ufemg(on.year)
    fee = Ufemg(ANALYSIS_FEE_UFEMG)
    return rate, [
        InvoiceLine(
            code="analysis_fee",
            description=(
                f"Análise de viabilidade e elaboração de orçamento (Art. 9º I): "
                f"{ANALYSIS_FEE_UFEMG} UFEMG"
            ),
            quantity=None,
            unit_price_ufemg=None,
            amount_ufemg=fee.amount,
            amount_brl=fee.to_brl(rate).amount,
        )
    ]

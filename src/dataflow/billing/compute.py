"""Monthly invoice computation (Art. 10, 13, 29, 45; DESIGN §8). Every line explains itself.

Pure functions: no database, no clock. The same inputs always give the same invoice, which is what
makes the monthly run idempotent and lets a partner redo the arithmetic by hand.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal

import msgspec

from dataflow.billing.errors import BillingError
from dataflow.billing.models import Fine, Invoice, InvoiceLine
from dataflow.billing.money import Brl, Ufemg, round_half_up
from dataflow.billing.schedule import PriceSchedule, schedule_on
from dataflow.billing.ufemg import IndexTable, UfemgTable
from dataflow.contracts.models import Plan
from dataflow.contracts.terms import MONTHLY_FLOOR_UFEMG, ContractTerms

__all__ = [
    "Carried",
    "MonthOutsideContract",
    "compute_invoice",
    "consumption_lines",
    "development_instalment",
    "month_bounds",
]


class MonthOutsideContract(BillingError):
    def __init__(self, month: str, start: date, end: date | None) -> None:
        super().__init__(
            f"{month} is outside the contract ({start} → {end or 'open-ended'}): nothing to bill"
        )
        self.month = month


class Carried(msgspec.Struct, frozen=True, kw_only=True):
    """An amount carried onto this invoice from elsewhere (late usage of an issued month)."""

    code: str
    description: str
    amount_ufemg: Decimal
    amount_brl: Decimal
    params: dict[str, str] = {}


def month_bounds(month: str) -> tuple[date, date, int]:
    """First day, last day and number of days of ``YYYY-MM``."""
    y, m = int(month[:4]), int(month[5:7])
    days = calendar.monthrange(y, m)[1]
    return date(y, m, 1), date(y, m, days), days


def _n(value: int) -> str:
    return f"{value:,}"


def _line(
    code: str,
    description: str,
    amount: Ufemg,
    rate: Decimal,
    *,
    quantity: int | None = None,
    unit: Decimal | None = None,
    params: dict[str, str] | None = None,
) -> InvoiceLine:
    # Conversion to BRL happens once per line, at the UFEMG of the billed period.
    return InvoiceLine(
        code=code,
        description=description,
        quantity=quantity,
        unit_price_ufemg=unit,
        amount_ufemg=amount.amount,
        amount_brl=amount.to_brl(rate).amount,
        params=params or {},
    )


ConsumptionPart = tuple[str, str, Ufemg, int | None, Decimal | None, dict[str, str]]


def consumption_lines(
    terms: ContractTerms | PriceSchedule, accesses: int, *, franchise: int | None = None
) -> list[ConsumptionPart]:
    """(code, description, amount, quantity, unit price, params) of consumption, before the
    floor (``params``: what wording the line in Portuguese needs, see ``billing.reading``).

    Art. 10 III: up to the franchise, the franchise is the consumption; above it, the actual
    accesses (linear) or the band that holds them. Band upper bounds are inclusive.
    """
    unit = terms.unit_price_ufemg
    fr = terms.franchise_accesses if franchise is None else franchise
    chargeable = max(accesses, fr)
    band = next((b for b in terms.bands if chargeable <= b.up_to), None)
    if band is not None:
        basis = (
            f"{_n(accesses)} accesses used"
            if accesses >= fr
            else f"{_n(accesses)} accesses used, franchise {_n(fr)} billed"
        )
        return [
            (
                "consumption_band",
                f"Consumption band up to {_n(band.up_to)} accesses ({basis})",
                Ufemg(band.price_ufemg),
                accesses,
                None,
                {"up_to": str(band.up_to), "franchise": str(fr if accesses < fr else "")},
            )
        ]
    out: list[ConsumptionPart] = [
        (
            "usage",
            f"Accesses: {_n(accesses)} × {unit} UFEMG",
            Ufemg(unit * accesses),
            accesses,
            unit,
            {},
        )
    ]
    if accesses < fr:
        short = fr - accesses
        out.append(
            (
                "franchise_true_up",
                f"Franchise of {_n(fr)} accesses (Art. 10 III): "
                f"{_n(short)} unused accesses × {unit} UFEMG",
                Ufemg(unit * short),
                short,
                unit,
                {"franchise": str(fr)},
            )
        )
    return out


def _month_index(month: str) -> int:
    return int(month[:4]) * 12 + int(month[5:7]) - 1


def development_instalment(terms: ContractTerms, month: str) -> tuple[int, Ufemg] | None:
    """(instalment number, amount) of the development cost due in `month`, if any.

    Instalments are equal to 4 places; the last one takes the rounding remainder so they add up
    to the contract's cost exactly.
    """
    cost, n = terms.development_cost_ufemg, terms.development_instalments
    if cost <= 0:
        return None
    first = terms.development_first_month or f"{terms.start:%Y-%m}"
    k = _month_index(month) - _month_index(first) + 1
    if not 1 <= k <= n:
        return None
    each = Ufemg(cost / n)
    if k < n:
        return k, each
    return k, Ufemg(cost) - each.times(n - 1)


def _overlap(a: date, b: date, lo: date, hi: date | None) -> tuple[date, date, int]:
    start = max(a, lo)
    end = min(b, hi) if hi is not None else b
    return start, end, max(0, (end - start).days + 1)


def _sandbox_lines(
    accesses: int,
    cap: int | None,
    window: tuple[date, date | None],
    period: tuple[date, date],
    rate: Decimal,
) -> list[InvoiceLine]:
    if cap:
        share = round_half_up(Decimal(100) * accesses / cap, 1)
        of_cap = f" of cap {_n(cap)} ({share}%)"
    else:
        of_cap = ", no cap set"
    w_start, w_end = window
    window_params = {"start": w_start.isoformat(), "at": period[1].isoformat()}
    if w_end is not None:
        total = (w_end - w_start).days + 1
        elapsed = (period[1] - w_start).days + 1
        window_text = f"{w_start} → {w_end}: day {elapsed} of {total} at {period[1]}"
        window_params |= {"end": w_end.isoformat(), "day": str(elapsed), "days": str(total)}
    else:
        window_text = f"{w_start} → open (set an end: Art. 36 allows 12 months, 18 extended)"
    zero = Ufemg.zero()
    usage_params = {"from": period[0].isoformat(), "to": period[1].isoformat()}
    if cap:
        usage_params |= {"cap": str(cap), "share": str(share)}
    return [
        _line(
            "sandbox_usage",
            f"Sandbox accesses {period[0]}–{period[1]} (price waived, Art. 29): "
            f"{_n(accesses)}{of_cap}",
            zero,
            rate,
            quantity=accesses,
            unit=Decimal(0),
            params=usage_params,
        ),
        _line(
            "sandbox_window",
            f"Sandbox authorization window {window_text}",
            zero,
            rate,
            params=window_params,
        ),
    ]


def _paid_lines(
    terms: ContractTerms,
    s: PriceSchedule,
    accesses: int,
    *,
    days: int,
    month_days: int,
    rate: Decimal,
) -> tuple[list[InvoiceLine], Ufemg]:
    """Consumption, floor and support lines of the paid part; returns them and their value."""
    short_month = days < month_days
    partial = terms.prorate and short_month
    frac = f"{days}/{month_days} days"
    franchise = s.franchise_accesses
    floor = Ufemg(MONTHLY_FLOOR_UFEMG)
    if partial:
        franchise = int(round_half_up(Decimal(franchise) * days / month_days, 0))
    # Art. 10 II has no proration: a partial month owes the whole floor unless the contract
    # records a CGMD deliberation that prorates it (prorate_floor).
    floor_prorated = terms.prorate_floor and short_month
    if floor_prorated:
        floor = Ufemg(MONTHLY_FLOOR_UFEMG * days / month_days)
    lines: list[InvoiceLine] = []
    consumption = Ufemg.zero()
    by_days = {"days": str(days), "month_days": str(month_days)} if partial else {}
    for code, desc, amount, qty, unit, values in consumption_lines(
        s, accesses, franchise=franchise
    ):
        if partial and code == "franchise_true_up":
            desc += f"; franchise {_n(s.franchise_accesses)} prorated {frac} = {_n(franchise)}"
            values |= {"franchise_full": str(s.franchise_accesses), **by_days}
        lines.append(_line(code, desc, amount, rate, quantity=qty, unit=unit, params=values))
        consumption = consumption + amount
    if consumption < floor:
        if floor_prorated:
            how = f", prorated {frac} by CGMD deliberation (contract: prorate_floor) = {floor}"
        elif short_month:
            how = f", not prorated for {frac}"
        else:
            how = ""
        lines.append(
            _line(
                "minimum_floor",
                f"Minimum monthly consumption of {MONTHLY_FLOOR_UFEMG} UFEMG (Art. 10 II)"
                f"{how}: consumption {consumption} → {floor - consumption} UFEMG added",
                floor - consumption,
                rate,
                params={"floor": str(floor), "consumption": str(consumption), **by_days},
            )
        )
        consumption = floor
    support = Ufemg(s.support_ufemg)
    if support.amount:
        desc = "Monthly technical support (Art. 10 IV)"
        params: dict[str, str] = {}
        if partial and terms.prorate_support:
            support = Ufemg(s.support_ufemg * days / month_days)
            desc += f": {s.support_ufemg} prorated {frac}"
            params = {"support_full": str(s.support_ufemg), **by_days}
        lines.append(_line("support", desc, support, rate, params=params))
    return lines, consumption + support


def compute_invoice(
    terms: ContractTerms,
    *,
    accesses: int,
    month: str,
    ufemg: UfemgTable,
    indices: IndexTable | None = None,
    fines: Sequence[Fine] = (),
    carried: Sequence[Carried] = (),
) -> Invoice:
    """The month's invoice: sandbox and/or paid parts, floor, support, instalment, fines."""
    if accesses < 0:
        raise ValueError("accesses must not be negative")
    first, last, month_days = month_bounds(month)
    rate = ufemg.brl_per_ufemg(first.year)
    lines: list[InvoiceLine] = []
    supply = Ufemg.zero()  # value of supply this month: the base of percentage fines
    if terms.kind is Plan.SANDBOX:
        p_start, p_end, days = _overlap(first, last, terms.start, terms.end)
        if days == 0:
            raise MonthOutsideContract(month, terms.start, terms.end)
        period = (p_start, p_end)
        lines += _sandbox_lines(accesses, terms.cap, (terms.start, terms.end), period, rate)
    else:
        p_start, p_end, paid_days = _overlap(first, last, terms.start, terms.end)
        sb_days = 0
        if terms.sandbox_from is not None:
            sb_start, sb_end, sb_days = _overlap(
                first, last, terms.sandbox_from, terms.start - timedelta(days=1)
            )
        if paid_days == 0 and sb_days == 0:
            raise MonthOutsideContract(month, terms.start, terms.end)
        paid_acc = accesses
        period = (p_start, p_end)
        if sb_days:
            period = (sb_start, p_end if paid_days else sb_end)
            # The ledger is monthly: in the migration month accesses are split by days.
            paid_acc = int(round_half_up(Decimal(accesses) * paid_days / (paid_days + sb_days), 0))
            sb_acc = accesses - paid_acc
            lines += _sandbox_lines(
                sb_acc,
                terms.sandbox_cap,
                (terms.sandbox_from or sb_start, terms.start - timedelta(days=1)),
                (sb_start, sb_end),
                rate,
            )
            if paid_days:
                lines.append(
                    _line(
                        "migration",
                        f"Migrated to paid supply on {terms.start}: {_n(accesses)} accesses "
                        f"split by days, {sb_days} sandbox / {paid_days} paid → "
                        f"{_n(sb_acc)} / {_n(paid_acc)}",
                        Ufemg.zero(),
                        rate,
                        params={
                            "start": terms.start.isoformat(),
                            "accesses": str(accesses),
                            "sandbox_days": str(sb_days),
                            "paid_days": str(paid_days),
                            "sandbox_accesses": str(sb_acc),
                            "paid_accesses": str(paid_acc),
                        },
                    )
                )
        if paid_days:
            schedule = schedule_on(terms, p_start, indices)
            if schedule.basis != "contract":
                lines.append(
                    _line(
                        "price_schedule",
                        f"Prices in force from {schedule.effective}: {schedule.basis}",
                        Ufemg.zero(),
                        rate,
                        params=schedule.params(),
                    )
                )
            paid, supply = _paid_lines(
                terms, schedule, paid_acc, days=paid_days, month_days=month_days, rate=rate
            )
            lines += paid
            due = development_instalment(terms, month)
            if due is not None:
                k, amount = due
                n = terms.development_instalments
                what = "single payment" if n == 1 else f"instalment {k} of {n}"
                lines.append(
                    _line(
                        "development",
                        f"Development of extraction/transformation processes (Art. 13 I): "
                        f"{what} of {Ufemg(terms.development_cost_ufemg)} UFEMG",
                        amount,
                        rate,
                        params={
                            "instalment": str(k),
                            "instalments": str(n),
                            "cost": str(Ufemg(terms.development_cost_ufemg)),
                        },
                    )
                )
    for fine in fines:
        fine_params = {"reason": fine.reason}
        if fine.amount_ufemg is not None:
            amount, how = Ufemg(fine.amount_ufemg), ""
        else:
            pct = fine.percent or Decimal(0)
            amount, how = Ufemg(supply.amount * pct / 100), f": {pct}% of {supply} UFEMG"
            fine_params |= {"percent": str(pct), "supply": str(supply)}
        if fine.bill_month and fine.bill_month < month:
            how += f" (decided for {fine.bill_month}, billed on the next open invoice)"
            fine_params["decided_for"] = fine.bill_month
        if fine.sanction_id is not None:
            fine_params["sanction"] = str(fine.sanction_id)
        ref = f"sanction {fine.sanction_id}: " if fine.sanction_id is not None else ""
        line = _line(
            "fine",
            f"Fine (Art. 45 III) — {ref}{fine.reason}{how}",
            amount,
            rate,
            params=fine_params,
        )
        lines.append(msgspec.structs.replace(line, sanction_id=fine.sanction_id))
    for c in carried:
        lines.append(
            InvoiceLine(
                code=c.code,
                description=c.description,
                quantity=None,
                unit_price_ufemg=None,
                amount_ufemg=c.amount_ufemg,
                amount_brl=c.amount_brl,
                params=c.params,
            )
        )
    total_ufemg = Ufemg.total(Ufemg(line.amount_ufemg) for line in lines)
    total_brl = Brl.total(Brl(line.amount_brl) for line in lines)
    return Invoice(
        month=month,
        kind=terms.kind,
        accesses=accesses,
        brl_per_ufemg=rate,
        lines=lines,
        total_ufemg=total_ufemg.amount,
        total_brl=total_brl.amount,
        period_start=period[0],
        period_end=period[1],
    )

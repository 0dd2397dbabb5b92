"""Date-effective price schedules: the contract, its amendments and its anniversary readjustments.

Events are applied in date order: an amendment sets new prices from its date; each anniversary of
`start` multiplies the prices then in force by the contract's readjustment (compounding). Franchise
accesses are a quantity, not a price: readjustment leaves them alone.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import msgspec

from dataflow.billing.money import round_half_up
from dataflow.billing.ufemg import IndexTable
from dataflow.contracts.terms import Amendment, Band, ContractTerms, ReadjustmentKind

__all__ = ["UNIT_PRICE_PLACES", "PriceSchedule", "anniversaries", "schedule_on", "schedules"]

# Unit prices per access are small (0.02 UFEMG): readjusted ones keep 6 places so that compounding
# does not drift; monthly amounts (support, band prices) keep the UFEMG 4 places.
UNIT_PRICE_PLACES = 6


class PriceSchedule(msgspec.Struct, frozen=True, kw_only=True):
    effective: date
    unit_price_ufemg: Decimal
    franchise_accesses: int
    support_ufemg: Decimal
    bands: list[Band]
    basis: str  # why these prices: "contract", "amendment …", "readjustment …"
    # the same, as values (for wording in other languages)
    kind: str = "contract"  # contract | amendment | readjustment
    percent: Decimal | None = None  # readjustment
    index: str | None = None  # readjustment by an index (its 12 months end in `window`)
    window: str | None = None
    note: str | None = None  # amendment

    def params(self) -> dict[str, str]:
        """The basis as values: what ``billing.reading.wording`` renders in Portuguese."""
        values = {
            "effective": self.effective.isoformat(),
            "kind": self.kind,
            "percent": None if self.percent is None else str(self.percent),
            "index": self.index,
            "window": self.window,
            "note": self.note,
        }
        return {k: v for k, v in values.items() if v is not None}


def _add_years(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February → 28 February
        return d.replace(year=d.year + years, day=28)


def anniversaries(terms: ContractTerms, until: date) -> list[date]:
    out: list[date] = []
    n = 1
    while (d := _add_years(terms.start, n)) <= until:
        out.append(d)
        n += 1
    return out


def _prev_month(d: date) -> str:
    y, m = (d.year, d.month - 1) if d.month > 1 else (d.year - 1, 12)
    return f"{y:04d}-{m:02d}"


def _readjust(
    s: PriceSchedule,
    on: date,
    percent: Decimal,
    why: str,
    *,
    index: str | None = None,
    window: str | None = None,
) -> PriceSchedule:
    factor = 1 + percent / 100
    return PriceSchedule(
        effective=on,
        unit_price_ufemg=round_half_up(s.unit_price_ufemg * factor, UNIT_PRICE_PLACES),
        franchise_accesses=s.franchise_accesses,
        support_ufemg=round_half_up(s.support_ufemg * factor, 4),
        bands=[
            Band(up_to=b.up_to, price_ufemg=round_half_up(b.price_ufemg * factor, 4))
            for b in s.bands
        ],
        basis=f"readjusted {percent}% on {on} ({why})",
        kind="readjustment",
        percent=percent,
        index=index,
        window=window,
    )


def schedules(
    terms: ContractTerms, until: date, indices: IndexTable | None = None
) -> list[PriceSchedule]:
    """Every schedule in force from `start` up to `until`, oldest first."""
    current = PriceSchedule(
        effective=terms.start,
        unit_price_ufemg=terms.unit_price_ufemg,
        franchise_accesses=terms.franchise_accesses,
        support_ufemg=terms.support_ufemg,
        bands=list(terms.bands),
        basis="contract",
    )
    out = [current]
    events: list[tuple[date, int, Amendment | None]] = [
        (a.effective, 0, a) for a in terms.amendments if a.effective <= until
    ]
    if terms.readjustment is not None:
        events += [(d, 1, None) for d in anniversaries(terms, until)]
    for when, _, event in sorted(events, key=lambda e: (e[0], e[1])):
        if event is None:
            r = terms.readjustment
            assert r is not None
            if r.kind is ReadjustmentKind.PERCENT:
                assert r.percent is not None
                current = _readjust(current, when, r.percent, "contract's fixed rate")
            else:
                assert r.index is not None
                window = _prev_month(when)
                pct = (indices or IndexTable.empty()).percent(r.index, window)
                current = _readjust(
                    current,
                    when,
                    pct,
                    f"{r.index.upper()} 12 months to {window}",
                    index=r.index.upper(),
                    window=window,
                )
        else:
            current = PriceSchedule(
                effective=when,
                unit_price_ufemg=(
                    event.unit_price_ufemg
                    if event.unit_price_ufemg is not None
                    else current.unit_price_ufemg
                ),
                franchise_accesses=(
                    event.franchise_accesses
                    if event.franchise_accesses is not None
                    else current.franchise_accesses
                ),
                support_ufemg=(
                    event.support_ufemg
                    if event.support_ufemg is not None
                    else current.support_ufemg
                ),
                bands=list(event.bands) if event.bands is not None else current.bands,
                basis=f"amendment of {when}" + (f" ({event.note})" if event.note else ""),
                kind="amendment",
                note=event.note or None,
            )
        out.append(current)
    return out


def schedule_on(
    terms: ContractTerms, day: date, indices: IndexTable | None = None
) -> PriceSchedule:
    """The schedule in force on `day` (the contract's own prices before `start`)."""
    found = [s for s in schedules(terms, day, indices) if s.effective <= day]
    return found[-1] if found else schedules(terms, terms.start, indices)[0]

"""Charts as server-rendered SVG: no script, no chart library, readable without colour.

Each chart is an ``<svg role="img">`` with a title; pages show the same figures in a table next
to it, so a screen reader (or a printout) loses nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from html import escape

from markupsafe import Markup

from dataflow import ptbr

__all__ = ["Bar", "bar_chart"]

_W, _H = 720, 260
_LEFT, _RIGHT, _TOP, _BOTTOM = 78, 12, 16, 44


class Bar:
    """One category (a month): its values, one per series, and whether it is highlighted."""

    __slots__ = ("dim", "label", "values")

    def __init__(self, label: str, values: Sequence[Decimal | int], *, dim: bool = False) -> None:
        self.label = label
        self.values = [Decimal(v) for v in values]
        self.dim = dim


def _nice_max(value: Decimal) -> Decimal:
    """A round axis maximum at or above ``value`` (1, 2 or 5 times a power of ten)."""
    if value <= 0:
        return Decimal(1)
    power = Decimal(10) ** (len(str(int(value))) - 1)
    for step in (1, 2, 5, 10):
        if value <= power * step:
            return power * step
    return power * 10


def bar_chart(
    title: str,
    bars: Sequence[Bar],
    series: Sequence[str],
    *,
    money: bool = False,
    lines: Sequence[tuple[str, int | Decimal]] = (),
) -> Markup:
    """Grouped bars per category, with optional horizontal reference lines (cap, franchise)."""
    top = max([v for b in bars for v in b.values] + [Decimal(v) for _, v in lines] + [Decimal(0)])
    y_max = _nice_max(top)
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM

    def fmt(v: Decimal) -> str:
        return ptbr.brl(v) if money else ptbr.inteiro(int(v))

    def y(v: Decimal) -> float:
        return _TOP + plot_h - float(v / y_max) * plot_h

    parts = [
        f'<svg class="chart" viewBox="0 0 {_W} {_H}" role="img" aria-labelledby="chart-t" '
        f'xmlns="http://www.w3.org/2000/svg"><title id="chart-t">{escape(title)}</title>'
    ]
    for k in range(5):
        v = y_max * k / 4
        yy = y(v)
        label = ptbr.brl(v.quantize(Decimal(1))) if money and y_max >= 4 else fmt(v)
        parts.append(
            f'<line class="grid" x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{yy:.1f}" y2="{yy:.1f}"/>'
            f'<text class="axis" x="{_LEFT - 6}" y="{yy + 4:.1f}" text-anchor="end">'
            f"{escape(label)}</text>"
        )
    n = max(len(bars), 1)
    slot = plot_w / n
    width = slot * 0.8 / max(len(series), 1)
    for i, bar in enumerate(bars):
        x0 = _LEFT + slot * i + slot * 0.1
        if bar.dim:
            parts.append(
                f'<rect class="outside" x="{_LEFT + slot * i:.1f}" y="{_TOP}" '
                f'width="{slot:.1f}" height="{plot_h}"/>'
            )
        for s, v in enumerate(bar.values):
            yy = y(v)
            parts.append(
                f'<rect class="s{s}" x="{x0 + s * width:.1f}" y="{yy:.1f}" '
                f'width="{max(width - 2, 1):.1f}" height="{_TOP + plot_h - yy:.1f}">'
                f"<title>{escape(bar.label)} — {escape(series[s])}: {escape(fmt(v))}</title>"
                "</rect>"
            )
        parts.append(
            f'<text class="axis" x="{_LEFT + slot * (i + 0.5):.1f}" y="{_H - _BOTTOM + 16}" '
            f'text-anchor="middle">{escape(bar.label)}</text>'
        )
    for k, (name, value) in enumerate(lines):
        yy = y(Decimal(value))
        parts.append(
            f'<line class="ref r{k}" x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{yy:.1f}" '
            f'y2="{yy:.1f}"/><text class="ref-label" x="{_W - _RIGHT - 4}" y="{yy - 4:.1f}" '
            f'text-anchor="end">{escape(name)}: {escape(fmt(Decimal(value)))}</text>'
        )
    legend_y = _H - 10
    x = _LEFT
    for s, name in enumerate(series):
        parts.append(
            f'<rect class="s{s}" x="{x}" y="{legend_y - 9}" width="10" height="10"/>'
            f'<text class="axis" x="{x + 14}" y="{legend_y}">{escape(name)}</text>'
        )
        x += 24 + 7 * len(name)
    parts.append("</svg>")
    return Markup("".join(parts))

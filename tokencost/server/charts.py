"""The dashboard's charts, drawn as inline SVG from ``DashboardData`` (no I/O; every text escaped).

The marks are geometry computed per datum, so they are built here rather than kept as templates; the page and
the fragment around them are package data (``templates/``, ``static/``), filled by ``render``.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from decimal import ROUND_CEILING, Decimal

from tokencost.budgets import BudgetLine
from tokencost.money import format_usd, from_units
from tokencost.server.dashboard import DashboardData
from tokencost.stores import Group
from tokencost.stores.base import NONE_KEY

__all__ = ["OTHER_COLOR", "PALETTE", "escape", "short", "svg_bars", "svg_daily", "svg_gauges"]

PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#76b7b2",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
)
OTHER_COLOR = "#9c9c9c"
_TOP_BARS = 10


def escape(text: object) -> str:
    """Escape any text for HTML and SVG, attributes included."""
    return html.escape(str(text), quote=True)


def short(text: str, limit: int = 32) -> str:
    """Cut ``text`` to ``limit`` characters, the last one an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _nice_step(peak: Decimal, ticks: int = 4) -> Decimal:
    """Return a 1, 2 or 5 times a power of ten step so ``ticks`` steps cover ``peak``."""
    raw = peak / ticks
    exponent = raw.adjusted()
    for mantissa in (1, 2, 5, 10):
        step = Decimal(mantissa).scaleb(exponent)
        if step >= raw:
            return step
    return Decimal(10).scaleb(exponent)  # pragma: no cover - 10 always covers


def svg_daily(data: DashboardData, colors: Mapping[str, str]) -> str:
    width, height = 1100, 260
    left, right, top, bottom = 64, 10, 12, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    stacks: dict[str, list[tuple[str, int]]] = {}
    for day in data.days:
        merged: dict[str, int] = {}
        for model, units in data.per_day.get(day, []):
            key = model if model in colors else "other"
            merged[key] = merged.get(key, 0) + units
        order = [m for m in colors if m in merged] + (["other"] if "other" in merged else [])
        stacks[day] = [(m, merged[m]) for m in order]
    peak_units = max((sum(u for _, u in stack) for stack in stacks.values()), default=0)
    if peak_units <= 0:
        return '<p class="empty">No priced calls in this period.</p>'
    peak = from_units(peak_units)
    step = _nice_step(peak)
    ticks = int((peak / step).to_integral_value(rounding=ROUND_CEILING)) or 1
    axis_top = step * ticks
    scale = plot_h / float(axis_top)
    out = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="Spend per day, stacked by model">'
    ]
    for i in range(ticks + 1):
        y = top + plot_h - float(step * i) * scale
        out.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>')
        out.append(
            f'<text class="axis" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(format_usd(step * i))}</text>'
        )
    slot = plot_w / len(data.days)
    bar_w = max(2.0, slot * 0.72)
    label_every = max(1, math.ceil(len(data.days) / 16))
    for index, day in enumerate(data.days):
        x = left + index * slot + (slot - bar_w) / 2
        y = float(top + plot_h)
        for model, units in stacks[day]:
            h = max(0.75, float(from_units(units)) * scale)
            y -= h
            tip = f"{day} · {model} · {format_usd(from_units(units))}"
            out.append(
                f'<rect class="mark" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{colors.get(model, OTHER_COLOR)}"><title>{escape(tip)}</title></rect>'
            )
        if index % label_every == 0 or index == len(data.days) - 1:
            out.append(
                f'<text class="axis" x="{x + bar_w / 2:.1f}" y="{height - bottom + 16}" '
                f'text-anchor="middle">{escape(day[5:])}</text>'
            )
    out.append("</svg>")
    shown = [m for m in colors if any(m == s for stack in stacks.values() for s, _ in stack)]
    if any(s == "other" for stack in stacks.values() for s, _ in stack):
        shown.append("other")
    legend = "".join(
        f'<span class="key"><span class="swatch" style="background:{colors.get(m, OTHER_COLOR)}"></span>'
        f"{escape(short(m, 40))}</span>"
        for m in shown
    )
    return "".join(out) + f'<div class="legend">{legend}</div>'


def svg_bars(groups: Sequence[Group], colors: Mapping[str, str] | None, label: str) -> str:
    rows = [(g.key, g.cost_units) for g in groups if g.cost_units > 0]
    if not rows:
        return '<p class="empty">No priced calls yet.</p>'
    if len(rows) > _TOP_BARS:
        rest = rows[_TOP_BARS - 1 :]
        rows = [*rows[: _TOP_BARS - 1], (f"{len(rest)} more", sum(u for _, u in rest))]
    width, row_h, label_w, value_w = 560, 28, 190, 96
    bar_max = width - label_w - value_w - 8
    peak = max(u for _, u in rows)
    height = len(rows) * row_h + 4
    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="{escape(label)}">']
    for i, (key, units) in enumerate(rows):
        y = 2 + i * row_h
        w = max(1.0, bar_max * units / peak)
        color = PALETTE[0] if colors is None else colors.get(key, OTHER_COLOR)
        shown = "(none)" if key == NONE_KEY else key
        out.append(
            f'<text class="label" x="{label_w - 8}" y="{y + 18}" text-anchor="end">{escape(short(shown, 28))}'
            f"<title>{escape(shown)}</title></text>"
            f'<rect class="mark" x="{label_w}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}" rx="2" '
            f'fill="{color}"><title>{escape(shown)} · {escape(format_usd(from_units(units)))}</title></rect>'
            f'<text class="value" x="{label_w + w + 6:.1f}" y="{y + 18}">{escape(format_usd(from_units(units)))}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def svg_gauges(lines: Sequence[BudgetLine]) -> str:
    if not lines:
        return '<p class="empty">No budgets declared by this ledger\'s trackers.</p>'
    width, row_h, label_w = 560, 40, 190
    bar_w = width - label_w - 8
    height = len(lines) * row_h + 4
    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="Budgets">']
    for i, line in enumerate(lines):
        y = 2 + i * row_h
        if line.limit_usd:
            fraction = line.spent_usd / line.limit_usd
            text = f"{format_usd(line.spent_usd)} of {format_usd(line.limit_usd)}"
        elif line.max_tokens:
            fraction = Decimal(line.tokens) / Decimal(line.max_tokens)
            text = f"{line.tokens:,} of {line.max_tokens:,} tokens"
        else:
            fraction = Decimal(1) if line.exceeded else Decimal(0)
            text = f"{format_usd(line.spent_usd)} (limit 0)"
        percent = int(fraction * 100)
        color = "#d64545" if line.exceeded or fraction >= 1 else "#e6a23c" if fraction >= Decimal("0.8") else "#3c9d5d"
        fill = bar_w * float(min(fraction, Decimal(1)))
        out.append(
            f'<text class="label" x="{label_w - 8}" y="{y + 17}" text-anchor="end">'
            f"{escape(short(line.label, 28))}<title>{escape(line.label)}</title></text>"
            f'<rect class="track" x="{label_w}" y="{y + 5}" width="{bar_w}" height="16" rx="8"/>'
            f'<rect class="mark gauge" x="{label_w}" y="{y + 5}" width="{max(fill, 0.0):.1f}" height="16" rx="8" '
            f'fill="{color}"><title>{escape(line.label)} · {escape(text)}</title></rect>'
            f'<text class="value" x="{label_w}" y="{y + 35}">{escape(text)} · {percent}%'
            f"{' · spent' if line.exceeded else ''}</text>"
        )
    out.append("</svg>")
    return "".join(out)

"""The dashboard's spend charts, drawn as inline SVG (no I/O; every text escaped).

The marks are geometry computed per datum, so they are built here rather than kept as templates; the page and
the fragment around them are package data (``templates/``, ``static/``), filled by ``render``.

Charts have no ``viewBox``: horizontal positions are percentages of the chart's width and heights are CSS
pixels, so the same SVG fills a 1280 px card or a 390 px phone with its text at its CSS size, never scaled down.
Each bar links to its calls (``link``), so a day, a model or a user drills down to the calls view.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping, Sequence
from decimal import ROUND_CEILING, Decimal

from tokencost.money import format_usd
from tokencost.reports import SummaryRow
from tokencost.stores.base import NONE_KEY

__all__ = ["OTHER", "OTHER_COLOR", "PALETTE", "escape", "pct", "short", "svg_bars", "svg_daily"]

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
OTHER = "other"
"""The stack segment of the models beyond the palette."""
_TOP_BARS = 10
_DESKTOP_LABELS = 16
_PHONE_LABELS = 5


def escape(text: object) -> str:
    """Escape any text for HTML and SVG, attributes included."""
    return html.escape(str(text), quote=True)


def short(text: str, limit: int = 32) -> str:
    """Cut ``text`` to ``limit`` characters, the last one an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def pct(value: float) -> str:
    """A horizontal position or width as a percentage of the chart's width."""
    return f"{value:.3f}%"


def _nice_step(peak: Decimal, ticks: int = 4) -> Decimal:
    """Return a 1, 2 or 5 times a power of ten step so ``ticks`` steps cover ``peak``."""
    raw = peak / ticks
    exponent = raw.adjusted()
    for mantissa in (1, 2, 5, 10):
        step = Decimal(mantissa).scaleb(exponent)
        if step >= raw:
            return step
    return Decimal(10).scaleb(exponent)  # pragma: no cover - 10 always covers


def _day_label_class(index: int, count: int) -> str | None:
    """The class of day ``index``'s axis label: None (no label), ``"day"`` (every width) or ``"day minor"``
    (hidden on a phone). Counted back from the last day, so today is always labelled."""
    every = max(1, math.ceil(count / _DESKTOP_LABELS))
    back = count - 1 - index
    if back % every:
        return None
    phone = every * max(1, math.ceil(math.ceil(count / every) / _PHONE_LABELS))
    return "day" if back % phone == 0 else "day minor"


def svg_daily(
    days: Sequence[str],
    per_day: Mapping[str, Sequence[tuple[str, Decimal]]],
    colors: Mapping[str, str],
    link: Callable[[str, str | None], str],
) -> str:
    """Spend per day stacked by model; ``link(day, model)`` is where a segment leads (``model`` None: the day)."""
    height, top, bottom = 240, 16, 22
    plot_h = height - top - bottom
    stacks: dict[str, list[tuple[str, Decimal]]] = {}
    for day in days:
        merged: dict[str, Decimal] = {}
        for model, cost in per_day.get(day, []):
            key = model if model in colors else OTHER
            merged[key] = merged.get(key, Decimal(0)) + cost
        order = [m for m in colors if m in merged] + ([OTHER] if OTHER in merged else [])
        stacks[day] = [(m, merged[m]) for m in order]
    peak = max((sum((c for _, c in stack), Decimal(0)) for stack in stacks.values()), default=Decimal(0))
    if peak <= 0:
        return '<p class="empty">No priced calls in this range.</p>'
    step = _nice_step(peak)
    ticks = int((peak / step).to_integral_value(rounding=ROUND_CEILING)) or 1
    scale = plot_h / float(step * ticks)
    out = [
        f'<svg class="chart daily" width="100%" height="{height}" role="img" '
        f'aria-label="Spend per day, stacked by model">'
    ]
    labels = []
    for i in range(ticks + 1):
        y = top + plot_h - float(step * i) * scale
        out.append(f'<line class="grid" x1="0" x2="100%" y1="{y:.1f}" y2="{y:.1f}"/>')
        if i:
            labels.append(f'<text class="axis tick" x="2" y="{y - 3:.1f}">{escape(format_usd(step * i))}</text>')
    slot = 100 / len(days)
    bar_w = slot * 0.72
    for index, day in enumerate(days):
        x = index * slot + (slot - bar_w) / 2
        y = float(top + plot_h)
        for model, cost in stacks[day]:
            h = max(0.75, float(cost) * scale)
            y -= h
            tip = f"{day} · {model} · {format_usd(cost)} (click: its calls)"
            href = link(day, None if model == OTHER else model)
            out.append(
                f'<a href="{escape(href)}"><rect class="mark" x="{pct(x)}" y="{y:.1f}" width="{pct(bar_w)}" '
                f'height="{h:.1f}" fill="{colors.get(model, OTHER_COLOR)}"><title>{escape(tip)}</title></rect></a>'
            )
        kind = _day_label_class(index, len(days))
        if kind is not None:
            center = (index + 0.5) * slot
            anchor, at = "middle", center
            if center < 6:
                anchor, at = "start", index * slot
            elif center > 94:
                anchor, at = "end", (index + 1) * slot
            labels.append(
                f'<a href="{escape(link(day, None))}"><text class="axis {kind}" x="{pct(at)}" y="{height - 6}" '
                f'text-anchor="{anchor}">{escape(day[5:])}<title>{escape(day)}</title></text></a>'
            )
    out.extend(labels)
    out.append("</svg>")
    shown = [m for m in colors if any(m == s for stack in stacks.values() for s, _ in stack)]
    if any(s == OTHER for stack in stacks.values() for s, _ in stack):
        shown.append(OTHER)
    legend = "".join(
        f'<span class="key"><span class="swatch" style="background:{colors.get(m, OTHER_COLOR)}"></span>'
        f"{escape(short(m, 40))}</span>"
        for m in shown
    )
    return "".join(out) + f'<div class="legend">{legend}</div>'


def svg_bars(
    rows: Sequence[SummaryRow],
    colors: Mapping[str, str] | None,
    label: str,
    link: Callable[[str], str] | None = None,
) -> str:
    """Spend per group, most expensive first (the tenth bar sums the rest); ``link(key)`` leads to its calls."""
    bars: list[tuple[str, Decimal, bool]] = [(r.key, r.cost_usd, True) for r in rows if r.cost_usd > 0]
    if not bars:
        return '<p class="empty">No priced calls in this range.</p>'
    if len(bars) > _TOP_BARS:
        rest = bars[_TOP_BARS - 1 :]
        bars = [*bars[: _TOP_BARS - 1], (f"{len(rest)} more", sum((c for _, c, _ in rest), Decimal(0)), False)]
    row_h = 38
    peak = max(c for _, c, _ in bars)
    out = [
        f'<svg class="chart bars" width="100%" height="{len(bars) * row_h + 2}" role="img" '
        f'aria-label="{escape(label)}">'
    ]
    for i, (key, cost, linked) in enumerate(bars):
        y = 2 + i * row_h
        w = max(0.5, 100 * float(cost / peak))
        color = PALETTE[0] if colors is None else colors.get(key, OTHER_COLOR)
        shown = "(none)" if key == NONE_KEY else key
        money = escape(format_usd(cost))
        row = (
            f'<text class="label" x="0" y="{y + 14}">{escape(short(shown, 28))}<title>{escape(shown)}</title></text>'
            f'<text class="value" x="100%" y="{y + 14}" text-anchor="end">{money}</text>'
            f'<rect class="mark" x="0" y="{y + 20}" width="{pct(w)}" height="11" rx="2" fill="{color}">'
            f"<title>{escape(shown)} · {money}{' (click: its calls)' if linked and link else ''}</title></rect>"
        )
        out.append(f'<a href="{escape(link(key))}">{row}</a>' if linked and link is not None else row)
    out.append("</svg>")
    return "".join(out)

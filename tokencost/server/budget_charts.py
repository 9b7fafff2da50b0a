"""The dashboard's budgets, drawn as inline SVG: a gauge per scope and, for a money limit, its spend so far in
the window as a cumulative line against the limit, projected at the current rate to the day it runs out.

The rate and the date are ``tokencost.forecast``'s (the average daily spend since the window began); the line
is drawn in a stretched inner SVG (``preserveAspectRatio="none"``, strokes that do not scale), its text outside
it at CSS size, so it reads the same at any width.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

from tokencost.forecast import Forecast
from tokencost.money import format_usd
from tokencost.server.charts import escape, pct, short
from tokencost.server.dashboard import BudgetView

__all__ = ["budget_blocks"]

_DAY_S = 86_400.0
_INNER_W = 1000
_PLOT_H = 80


def _gauge_text(view: BudgetView) -> tuple[Decimal, str]:
    line = view.line
    if line.limit_usd:
        return line.spent_usd / line.limit_usd, f"{format_usd(line.spent_usd)} of {format_usd(line.limit_usd)}"
    if line.max_tokens:
        return Decimal(line.tokens) / Decimal(line.max_tokens), f"{line.tokens:,} of {line.max_tokens:,} tokens"
    return (Decimal(1) if line.exceeded else Decimal(0)), f"{format_usd(line.spent_usd)} (limit 0)"


def _color(exceeded: bool, fraction: Decimal) -> str:
    return "#d64545" if exceeded or fraction >= 1 else "#e6a23c" if fraction >= Decimal("0.8") else "#3c9d5d"


def _gauge(view: BudgetView) -> str:
    fraction, text = _gauge_text(view)
    line = view.line
    fill = 100 * float(min(max(fraction, Decimal(0)), Decimal(1)))
    return (
        f'<div class="budget-head"><span class="scope" title="{escape(line.label)}">{escape(short(line.label, 40))}'
        f'</span><span class="num">{escape(text)} · {int(fraction * 100)}%{" · spent" if line.exceeded else ""}'
        f"</span></div>"
        f'<svg class="chart gauge-bar" width="100%" height="14" role="img" aria-label="{escape(line.label)}">'
        f'<rect class="track" x="0" y="1" width="100%" height="12" rx="6"/>'
        f'<rect class="mark gauge" x="0" y="1" width="{pct(fill)}" height="12" rx="6" '
        f'fill="{_color(line.exceeded, fraction)}"><title>{escape(line.label)} · {escape(text)}</title></rect></svg>'
    )


def _when(timestamp: float, with_time: bool) -> str:
    moment = dt.datetime.fromtimestamp(timestamp, dt.timezone.utc)
    return moment.strftime("%m-%d %H:%M" if with_time else "%m-%d")


def _x_end(f: Forecast) -> float:
    """Where the chart's time axis ends: the window's reset, else past the run-out (bounded) or past now."""
    if f.resets is not None:
        return f.resets
    span = max(f.now - f.since, _DAY_S)
    if f.runs_out is not None and f.runs_out > f.now:
        return min(f.runs_out + span * 0.1, f.now + 3 * span)
    return f.now + span * 0.25


def _line_chart(view: BudgetView, f: Forecast) -> str:
    """The spend so far (solid), the limit (dashed red), the projection at the rate (dashed) to the run-out."""
    x0, x1 = f.since, _x_end(f)
    width = max(x1 - x0, 1.0)
    hours = x1 - x0 <= 2 * _DAY_S  # a day's window: its times, not its dates
    projected = not f.exhausted and f.rate_per_day > 0
    to = min(f.runs_out if f.runs_out is not None else x1, x1)
    at = f.spent_usd + f.rate_per_day * Decimal(str((to - f.now) / _DAY_S)) if projected else f.spent_usd
    top = max(f.limit_usd, at, *(v for _, v in view.cumulative), Decimal(0))
    y_max = float(top) * 1.1 or 1.0

    def x(t: float) -> float:
        return (min(max(t, x0), x1) - x0) / width * _INNER_W

    def y(value: Decimal) -> float:
        return _PLOT_H - float(value) / y_max * _PLOT_H

    spent = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in view.cumulative)
    limit_y = y(f.limit_usd)
    inner = [
        f'<line class="limit" x1="0" x2="{_INNER_W}" y1="{limit_y:.1f}" y2="{limit_y:.1f}" '
        f'vector-effect="non-scaling-stroke"/>',
        f'<polyline class="spent" points="{spent}" vector-effect="non-scaling-stroke"/>',
    ]
    if projected:
        inner.append(
            f'<line class="projected" x1="{x(f.now):.1f}" y1="{y(f.spent_usd):.1f}" x2="{x(to):.1f}" '
            f'y2="{y(at):.1f}" vector-effect="non-scaling-stroke"/>'
        )
    below = limit_y < 14  # no room above the limit line: write under it
    runs_out = f.runs_out if projected and f.runs_out is not None and f.runs_out <= x1 else None
    at_pct = 0.0 if runs_out is None else x(runs_out) / _INNER_W * 100
    # The limit's label on the side away from the run-out's.
    side = 'x="2"' if runs_out is not None and at_pct > 50 else 'x="100%" dx="-2" text-anchor="end"'
    labels = [
        f'<text class="axis" x="0" y="{_PLOT_H + 22}">{escape(_when(x0, hours))}</text>',
        f'<text class="axis" x="100%" y="{_PLOT_H + 22}" text-anchor="end">{escape(_when(x1, hours))}</text>',
        f'<text class="axis limit-label tick" {side} y="{8 + limit_y + (12 if below else -3):.1f}">'
        f"limit {escape(format_usd(f.limit_usd))}</text>",
    ]
    if runs_out is not None:
        inner.append(
            f'<line class="runs-out" x1="{x(runs_out):.1f}" x2="{x(runs_out):.1f}" y1="0" y2="{_PLOT_H}" '
            f'vector-effect="non-scaling-stroke"/>'
        )
        anchor = "end" if at_pct > 60 else "start"
        labels.append(
            f'<text class="axis runs-out-label tick" x="{pct(at_pct)}" dx="{-4 if anchor == "end" else 4}" '
            f'y="{8 + (limit_y + 26 if below else 10):.1f}" text-anchor="{anchor}">'
            f"runs out {escape(_when(runs_out, runs_out - f.now < 2 * _DAY_S))}</text>"
        )
    return (
        f'<svg class="chart forecast" width="100%" height="{_PLOT_H + 28}" role="img" '
        f'aria-label="{escape(view.line.label)}: spend so far against the limit">'
        f'<svg x="0" y="8" width="100%" height="{_PLOT_H}" viewBox="0 0 {_INNER_W} {_PLOT_H}" '
        f'preserveAspectRatio="none" overflow="visible">{"".join(inner)}</svg>{"".join(labels)}</svg>'
    )


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def budget_blocks(views: Sequence[BudgetView]) -> str:
    """Every budget scope: its gauge, and for the ones with a forecast the cumulative line and when it runs out."""
    if not views:
        return '<p class="empty">No budgets declared by this ledger\'s trackers.</p>'
    out = []
    for view in views:
        parts = [_gauge(view)]
        f = view.forecast
        if f is not None:
            parts.append(_line_chart(view, f))
            parts.append(
                f'<p class="forecast"><b>{escape(_sentence(f.describe()))}</b> '
                f"<span>({escape(f.describe_rate())})</span></p>"
            )
        out.append(f'<div class="budget">{"".join(parts)}</div>')
    return f'<div class="budgets">{"".join(out)}</div>'

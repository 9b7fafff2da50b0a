"""The dashboard's data: what one look at the ledger reads from the store (``render`` draws it).

Collecting is apart from drawing so each can be tested and changed alone: ``collect`` does every store read of
one refresh and returns plain values; ``render.render_fragment`` turns them into HTML and SVG without I/O.
The spend comes from the reports (``reports.build_summaries``: the groups of ``/summary`` and ``tokencost
report``, over the view's range and filters); budgets are the ledger's own (``budgets.budget_lines``), whatever
the filters, each with its spend so far day by day and a forecast (``tokencost.forecast``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from tokencost.budget_line import BudgetLine
from tokencost.events import Event
from tokencost.forecast import Forecast, forecast
from tokencost.money import from_units
from tokencost.reports import KEY_JOIN, Summary, SummaryRow, build_summaries, grouped, newest_events
from tokencost.server.view import View
from tokencost.stores import Store

__all__ = ["BREAKDOWNS", "MAX_FORECASTS", "MAX_GAUGES", "RECENT_ROWS", "BudgetView", "DashboardData", "collect"]

RECENT_ROWS = 15
MAX_GAUGES = 20
MAX_FORECASTS = 8
"""Budget scopes drawn with their cumulative spend and forecast (the others: a gauge)."""
BREAKDOWNS = ("model", "user", "tag", "endpoint")
"""The keys the dashboard shows spend by, beside the spend per day and model."""
_DAY_S = 86_400.0


@dataclass(frozen=True)
class BudgetView:
    """One budget scope: its state, and for a money limit its spend so far and where the rate takes it."""

    line: BudgetLine
    forecast: Forecast | None = None
    cumulative: tuple[tuple[float, Decimal], ...] = ()
    """The scope's spend so far in its window: (time, USD spent by then), oldest first, from the window's start
    (a total budget: its first day with calls) to ``now``."""


@dataclass(frozen=True)
class DashboardData:
    """One look at a ledger through a view: totals, spend per day and model, per key, budgets, recent calls."""

    ledger: str
    view: View
    summary: Summary
    """The view's calls by model (totals, and the rows of the spend-by-model chart)."""
    days: list[str]
    """The days shown, oldest first (``YYYY-MM-DD``, UTC)."""
    per_day: dict[str, list[tuple[str, Decimal]]]
    """Per day with priced calls: (model, cost) of each model that cost something."""
    breakdowns: dict[str, tuple[SummaryRow, ...]]
    """The rows of each of ``BREAKDOWNS``, most expensive first."""
    budgets: list[BudgetView]
    recent: list[Event]
    """The view's newest calls, newest first."""

    @property
    def now(self) -> float:
        """When the data was read."""
        return self.view.now


def collect(store: Store, ledger: str, view: View) -> DashboardData:
    """Read what the dashboard shows of ``ledger`` through ``view`` (its range and filters, at ``view.now``)."""
    summaries = build_summaries(
        store,
        ledger,
        ["day,model", *BREAKDOWNS],
        since=view.start,
        until=view.stop,
        where=view.where,
        now=view.now,
    )
    days = view.chart_days
    shown = set(days)
    per_day: dict[str, list[tuple[str, Decimal]]] = {}
    for row in summaries["day,model"].rows:
        day, _, model = row.key.partition(KEY_JOIN)
        if day in shown and row.cost_usd > 0:
            per_day.setdefault(day, []).append((model, row.cost_usd))
    by_model = summaries["model"]
    return DashboardData(
        ledger=ledger,
        view=view,
        summary=by_model,
        days=days,
        per_day=per_day,
        breakdowns={key: summaries[key].rows for key in BREAKDOWNS},
        budgets=_budget_views(store, ledger, by_model.budgets[:MAX_GAUGES], view.now),
        recent=newest_events(store, ledger, RECENT_ROWS, view.start, view.stop, view.where),
    )


def _budget_views(store: Store, ledger: str, lines: Sequence[BudgetLine], now: float) -> list[BudgetView]:
    """Each line, and for the first ``MAX_FORECASTS`` with a money limit their daily spend and forecast.

    The scopes of one budget share one read: its window's spend per day and ``per`` value.
    """
    charted = [line for line in lines if line.limit_usd is not None][:MAX_FORECASTS]
    drawn = {id(line) for line in charted}
    daily: dict[tuple[str | None, float | None], dict[str, list[tuple[str, int]]]] = {}
    for line in charted:
        scope = (line.per, line.window_start)
        if scope in daily:
            continue
        keys = ["day"] if line.per is None else ["day", line.per]
        per_value: dict[str, list[tuple[str, int]]] = {}
        for group in grouped(store, ledger, [keys], line.window_start, None)[0]:
            day, _, value = group.key.partition(KEY_JOIN)
            per_value.setdefault(value or "*", []).append((day, group.cost_units))
        daily[scope] = per_value
    out: list[BudgetView] = []
    for line in lines:
        if id(line) not in drawn or line.limit_usd is None:
            out.append(BudgetView(line))
            continue
        spend = sorted(daily[(line.per, line.window_start)].get(line.value, []))
        points = _cumulative(spend, line.window_start, now)
        since = points[0][0] if points else now
        projected = forecast(line.spent_usd, line.limit_usd, since=since, now=now, resets=line.window_end)
        out.append(BudgetView(line, projected, points))
    return out


def _cumulative(
    spend: Sequence[tuple[str, int]], window_start: float | None, now: float
) -> tuple[tuple[float, Decimal], ...]:
    """The running total of per-day spend, as points at each spending day's start and end (the spend within a
    day drawn as a straight line), from the window's start (or the first day's) to ``now``."""
    days = [(dt.datetime.fromisoformat(day).replace(tzinfo=dt.timezone.utc).timestamp(), units) for day, units in spend]
    first = window_start if window_start is not None else (days[0][0] if days else now)
    first = min(first, now)
    points: list[tuple[float, Decimal]] = [(first, Decimal(0))]
    total = 0
    for start, units in days:
        if units <= 0:
            continue
        lo = max(start, first)
        hi = min(start + _DAY_S, now)
        if lo > points[-1][0]:
            points.append((lo, from_units(total)))
        total += units
        points.append((max(hi, lo), from_units(total)))
    if now > points[-1][0]:
        points.append((now, from_units(total)))
    return tuple(points)

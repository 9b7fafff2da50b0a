"""The dashboard's data: what one look at the ledger reads from the store (``render`` draws it).

Collecting is apart from drawing so each can be tested and changed alone: ``collect`` does every store read of
one refresh and returns plain values; ``render.render_fragment`` turns them into HTML and SVG without I/O.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from tokencost.budgets import BudgetLine, budget_lines
from tokencost.events import Event
from tokencost.stores import Group, Store, Totals

__all__ = ["MAX_GAUGES", "RECENT_ROWS", "DashboardData", "collect"]

RECENT_ROWS = 15
MAX_GAUGES = 20
_DAY_S = 86_400


@dataclass(frozen=True)
class DashboardData:
    """One look at a ledger: totals, spend per day and model, per model and endpoint, budgets, recent calls."""

    ledger: str
    now: float
    totals: Totals
    days: list[str]
    """The days shown, oldest first (``YYYY-MM-DD``, UTC)."""
    per_day: dict[str, list[tuple[str, int]]]
    """Per day with priced calls: (model, cost in pico-dollars) of each model that cost something."""
    by_model: list[Group]
    by_endpoint: list[Group]
    budgets: list[BudgetLine]
    recent: list[Event]
    """The newest calls, newest first."""


def collect(store: Store, ledger: str, days: int, now: float) -> DashboardData:
    """Read what the dashboard shows of ``ledger`` over the last ``days`` days up to ``now`` (UTC days)."""
    today = dt.datetime.fromtimestamp(now, dt.timezone.utc).date()
    first = today - dt.timedelta(days=days - 1)
    start = dt.datetime(first.year, first.month, first.day, tzinfo=dt.timezone.utc).timestamp()
    day_names = [(first + dt.timedelta(days=i)).isoformat() for i in range(days)]
    per_day: dict[str, list[tuple[str, int]]] = {}
    # One aggregate finds the days with calls; only those are broken down by model.
    for group in store.aggregate(ledger, "day", since=start):
        if group.key not in day_names or group.requests == 0:
            continue
        day_start = dt.datetime.fromisoformat(group.key).replace(tzinfo=dt.timezone.utc).timestamp()
        models = store.aggregate(ledger, "model", since=day_start, until=day_start + _DAY_S)
        per_day[group.key] = [(g.key, g.cost_units) for g in models if g.cost_units > 0]
    return DashboardData(
        ledger=ledger,
        now=now,
        totals=store.totals(ledger),
        days=day_names,
        per_day=per_day,
        by_model=store.aggregate(ledger, "model"),
        by_endpoint=store.aggregate(ledger, "endpoint"),
        budgets=budget_lines(store, ledger, None, now)[:MAX_GAUGES],
        recent=list(reversed(store.events(ledger, limit=RECENT_ROWS))),
    )

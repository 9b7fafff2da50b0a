"""Reports on a ledger: the summary table, streaming exports, and what the same usage would cost elsewhere.

Everything here is data first: ``Summary`` and ``WhatIf`` are frozen dataclasses that also render with rich
(``__rich_console__``), so the tracker's exit summary, ``tokencost report`` and the server share one code path and
nothing prints unless a console is handed in. Aggregation runs in the store (SQL ``GROUP BY`` on SQLite); this
module only shapes the groups it gets back.

Example::

    from rich.console import Console
    from tokencost.reports import report

    summary = report("sqlite:///costs.db", by="user", since="2026-11-01")
    Console().print(summary)
    print(summary.total_usd, summary.to_dict()["rows"][0])
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime as dt
import itertools
import json
import math
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from rich import box
from rich.bar import Bar
from rich.cells import cell_len
from rich.table import Table
from rich.text import Text

from tokencost.budget_line import BudgetLine
from tokencost.budgets import Budget, budget_lines
from tokencost.errors import PriceNotFoundError, StoreError
from tokencost.events import Event
from tokencost.money import UNITS_PER_USD, format_usd, from_units, units_text, usd_text
from tokencost.pricing import Price, PriceChain
from tokencost.stores.base import NONE_KEY, Group, Store, Totals
from tokencost.stores.grouping import add_sums, day_key, event_groups, ranked_groups, sums_of
from tokencost.usage import BUCKETS, Usage
from tokencost.when import describe_when, parse_range, parse_when
from tokencost.where import Where

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, JustifyMethod, RenderResult

__all__ = [
    "BUILTIN_KEYS",
    "EXPORT_FIELDS",
    "KEY_JOIN",
    "Alternative",
    "Summary",
    "SummaryRow",
    "WhatIf",
    "WhatIfRow",
    "budget_dict",
    "build_summaries",
    "build_summary",
    "check_group_key",
    "check_ledger",
    "export_events",
    "export_record",
    "grouped",
    "iter_events",
    "metadata_keys",
    "newest_events",
    "open_store",
    "parse_when",
    "report",
    "split_keys",
    "whatif",
]

EXPORT_FORMATS = ("csv", "json", "jsonl")
# Columns of a CSV export, and the keys of each JSON / JSONL record, in this order.
EXPORT_FIELDS = (
    "call_id",
    "timestamp",
    "model",
    "provider",
    "status",
    "priced",
    "cost",
    "price_source",
    "prompt_tokens",
    "completion_tokens",
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
    "audio_in_tokens",
    "audio_out_tokens",
    "image_tokens",
    "cache_read_audio_tokens",
    "saved_by_cache",
    "cost_breakdown",
    "price_per_mtok",
    "reason",
    "metadata",
)
# Export fetches at most about this many events at a time (a few MB of Event objects).
EXPORT_PAGE = 10_000
# Rows a rendered summary shows; to_dict() always holds every row.
MAX_ROWS = 25

_BAR_WIDTH = 10
_DAY_S = 86_400.0
# One space between columns, none at the edges: the by-model table fits 100 columns with a 24-character key.
_COMPACT: dict[str, Any] = {"padding": (0, 1, 0, 0), "pad_edge": False, "collapse_padding": True}
_SHARE = Decimal("0.0001")
_MILLION = Decimal(1_000_000)
_TOKEN_FIELDS = ("input", "cache_read", "cache_write", "output", "reasoning")


# ---------------------------------------------------------------------------------------------------- time


def _window_start(window: str, now: float) -> float:
    moment = dt.datetime.fromtimestamp(now, dt.timezone.utc)
    start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if window == "month":
        start = start.replace(day=1)
    return start.timestamp()


def _utc(ts: float | None) -> dt.datetime | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, dt.timezone.utc)


def _window_label(window: str | None, since: dt.datetime | None, asked_since: object, asked_until: object) -> str:
    """The header's words for the range: what was asked (``until 2026-12-03``), not the bound it became."""
    if window == "day" and since is not None:
        return f"today ({since.date().isoformat()} UTC)"
    if window == "month" and since is not None:
        return f"this month ({since.strftime('%Y-%m')} UTC)"
    if asked_since is None and asked_until is None:
        return "all time"
    parts = []
    if asked_since is not None:
        parts.append(f"from {describe_when(asked_since)}")
    if asked_until is not None:
        parts.append(f"until {describe_when(asked_until)}")
    return " ".join(parts) + " UTC"


# ---------------------------------------------------------------------------------------------------- display


def _tokens(count: int) -> str:
    """Show a token count: exact below 100,000, else 123k / 12.3M / 1.2B."""
    if count < 100_000:
        return f"{count:,}"
    for size, suffix in ((10**9, "B"), (10**6, "M"), (10**3, "k")):
        if count >= size:
            value = count / size
            return f"{value:.1f}{suffix}" if value < 100 else f"{value:,.0f}{suffix}"
    return str(count)  # pragma: no cover - unreachable


def _percent(fraction: Decimal | None) -> str:
    return "-" if fraction is None else f"{fraction * 100:.1f}%"


def _share(part: int, whole: int) -> Decimal:
    if whole <= 0:
        return Decimal(0)
    return (Decimal(part) / Decimal(whole)).quantize(_SHARE, rounding=ROUND_HALF_EVEN)


def _bar(fraction: float, color: str) -> Bar:
    # A bar shows a proportion, not money: float is fine here.
    return Bar(size=1.0, begin=0.0, end=max(0.0, min(1.0, fraction)), width=_BAR_WIDTH, color=color)


# ---------------------------------------------------------------------------------------------------- fitting


@dataclass
class _Col:
    """One column of a table that must fit the console: money and counts never truncate, columns drop instead."""

    header: str
    cells: list[Any]
    footer: str = ""
    justify: JustifyMethod = "right"
    keep: int = 0  # the higher, the later it is dropped on a narrow console; the key column is never dropped
    fixed: int | None = None  # a bar's width

    def need(self) -> int:
        if self.fixed is not None:
            return self.fixed
        texts = [self.header, self.footer, *(c.plain if isinstance(c, Text) else str(c) for c in self.cells)]
        return max((cell_len(t) for t in texts), default=0)


_KEY_MIN = 8
_EXTRA = 3


def _fitted(key: _Col, cols: Sequence[_Col], width: int, *, footer: bool, title: str | None = None) -> Table:
    """Build a table of ``key`` (folded to what is left, at least 8 wide) and the ``cols`` that fit in ``width``.

    Columns are dropped lowest ``keep`` first until the rest fit whole: a cost is never cut to ``$0.0…``.
    """
    shown = list(cols)
    key_need = key.need()

    # Each column takes its cells, a padding space and a divider; the table has an edge on each side.
    def total(columns: Sequence[_Col], key_width: int) -> int:
        return sum(c.need() + 2 for c in columns) + key_width + 3

    # Extras (keep <= _EXTRA: bars, cache columns) give way to a whole key; the rest only to fit at all.
    while any(c.keep <= _EXTRA for c in shown) and total(shown, key_need) > width:
        shown.remove(min(shown, key=lambda c: c.keep))
    while shown and total(shown, min(key_need, _KEY_MIN)) > width:
        shown.remove(min(shown, key=lambda c: c.keep))
    used = sum(c.need() + 2 for c in shown) + 3
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_footer=footer, **_COMPACT)
    key_width = max(min(key_need, width - used), min(key_need, _KEY_MIN))
    table.add_column(key.header, footer=key.footer, overflow="fold", min_width=key_width, max_width=max(key_width, 8))
    for col in shown:
        if col.fixed is not None:
            table.add_column(col.header, footer=col.footer, width=col.fixed)
        else:
            table.add_column(
                col.header,
                footer=col.footer,
                justify=col.justify,
                no_wrap=True,
                min_width=col.need(),
            )
    order = [cols.index(c) for c in shown]
    for i, key_cell in enumerate(key.cells):
        table.add_row(key_cell, *(cols[j].cells[i] for j in order))
    return table


# ---------------------------------------------------------------------------------------------------- summary


@dataclass(frozen=True)
class SummaryRow:
    """Totals of one group (one model, user, day...) of a summary."""

    key: str
    requests: int
    cost_usd: Decimal
    share: Decimal  # of the summary's total cost, 0 to 1, four decimals
    unpriced: int = 0
    saved_by_cache_usd: Decimal = Decimal(0)
    input_tokens: int = 0  # uncached input
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0  # without reasoning
    reasoning_tokens: int = 0

    @property
    def prompt_tokens(self) -> int:
        """All input tokens: uncached, cache reads and cache writes."""
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens

    @property
    def completion_tokens(self) -> int:
        """All output tokens, reasoning included."""
        return self.output_tokens + self.reasoning_tokens

    @property
    def cached_share(self) -> Decimal | None:
        """Cache reads over all input tokens (prompt-cache hit rate), or None without input."""
        prompt = self.prompt_tokens
        return None if not prompt else _share(self.cache_read_tokens, prompt)

    def to_dict(self) -> dict[str, Any]:
        """Return the row as JSON-able data (money and shares as decimal text)."""
        cached = self.cached_share
        return {
            "key": self.key,
            "requests": self.requests,
            "cost": usd_text(self.cost_usd),
            "share": _dec(self.share),
            "unpriced": self.unpriced,
            "saved_by_cache": usd_text(self.saved_by_cache_usd),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "input_tokens": self.input_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "output_tokens": self.output_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "cached_share": None if cached is None else _dec(cached),
        }


def _row(group: Group, total_units: int) -> SummaryRow:
    return SummaryRow(
        key=group.key,
        requests=group.requests,
        cost_usd=from_units(group.cost_units),
        share=_share(group.cost_units, total_units),
        unpriced=group.unpriced,
        saved_by_cache_usd=from_units(group.saved_units),
        input_tokens=group.input_tokens,
        cache_read_tokens=group.cache_read_tokens,
        cache_write_tokens=group.cache_write_tokens,
        output_tokens=group.output_tokens,
        reasoning_tokens=group.reasoning_tokens,
    )


def budget_dict(line: BudgetLine) -> dict[str, Any]:
    """Return one budget scope in its current window as JSON data (docs/json.md: a budget)."""
    return {
        "scope": line.label,
        "window": line.window,
        "limit": None if line.limit_usd is None else usd_text(line.limit_usd),
        "spent": usd_text(line.spent_usd),
        "remaining": None if line.remaining_usd is None else usd_text(line.remaining_usd),
        "max_tokens": line.max_tokens,
        "tokens": line.tokens,
        "strict": line.strict,
        "exceeded": line.exceeded,
    }


@dataclass(frozen=True)
class Summary:
    """What a ledger spent, grouped one way; renders as a rich table (``console.print(summary)``).

    Money is ``Decimal`` USD, exact. ``total_usd`` counts priced calls only; ``unpriced`` says how many calls
    have no known cost (they are never counted as $0). ``rows`` are the groups, most expensive first (by day:
    oldest first). ``budgets`` is the state of every budget scope in its current window.
    """

    ledger: str
    by: str
    total_usd: Decimal
    requests: int
    unpriced: int
    saved_by_cache_usd: Decimal
    tokens: Mapping[str, int]  # input, cache_read, cache_write, output, reasoning
    rows: tuple[SummaryRow, ...] = ()
    budgets: tuple[BudgetLine, ...] = ()
    window: str = "all time"
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    cache_hits: int = 0  # calls answered from a response cache (status cache_hit), nothing sent
    cache_hits_saved_usd: Decimal = Decimal(0)  # what those calls would have cost

    @property
    def prompt_tokens(self) -> int:
        """All input tokens (cache reads and writes included)."""
        return self.tokens["input"] + self.tokens["cache_read"] + self.tokens["cache_write"]

    @property
    def completion_tokens(self) -> int:
        """All output tokens (reasoning included)."""
        return self.tokens["output"] + self.tokens["reasoning"]

    @property
    def cached_share(self) -> Decimal | None:
        """Cache reads over all input tokens, or None without input."""
        prompt = self.prompt_tokens
        return None if not prompt else _share(self.tokens["cache_read"], prompt)

    @property
    def budget_exceeded(self) -> bool:
        """Whether any budget scope is spent."""
        return any(line.exceeded for line in self.budgets)

    def to_dict(self) -> dict[str, Any]:
        """Return the summary as JSON-able data: money as exact decimal text, times as ISO-8601 UTC."""
        cached = self.cached_share
        return {
            "ledger": self.ledger,
            "by": self.by,
            "window": self.window,
            "since": None if self.since is None else self.since.isoformat(),
            "until": None if self.until is None else self.until.isoformat(),
            "cost": usd_text(self.total_usd),
            "requests": self.requests,
            "unpriced": self.unpriced,
            "saved_by_cache": usd_text(self.saved_by_cache_usd),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            **{f"{bucket}_tokens": self.tokens[bucket] for bucket in _TOKEN_FIELDS},
            "cached_share": None if cached is None else _dec(cached),
            "cache_hits": self.cache_hits,
            "cache_hits_saved": usd_text(self.cache_hits_saved_usd),
            "groups_total": len(self.rows),
            "groups": [row.to_dict() for row in self.rows],
            "budgets": [budget_dict(line) for line in self.budgets],
        }

    # -- rendering ---------------------------------------------------------------------------------------------
    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        """Render the table, the unpriced and cache lines, and the budgets."""
        yield Text(f"tokencost · {self.ledger} · by {self.by} · {self.window}", style="bold")
        if not self.requests:
            yield Text("No calls recorded.", style="dim")
            yield from self._render_budgets(options.max_width)
            return
        yield self._table(options.max_width)
        spark = self._spark(options.max_width)
        if spark is not None:
            yield spark
        if len(self.rows) > MAX_ROWS:
            yield Text(f"… and {len(self.rows) - MAX_ROWS} more {self.by} values (to_dict() / --json has all)")
        if self.unpriced:
            yield self._unpriced_line()
        prompt_saved = self.saved_by_cache_usd - self.cache_hits_saved_usd  # response-cache hits: next line
        if self.tokens["cache_read"] or prompt_saved:
            cached = self.cached_share
            yield Text.assemble(
                ("Prompt cache: ", "bold"),
                f"{self.tokens['cache_read']:,} of {self.prompt_tokens:,} input tokens read from cache "
                f"({_percent(cached)}), saved ",
                (format_usd(prompt_saved), "green"),
            )
        if self.cache_hits:
            yield Text.assemble(
                ("Response cache: ", "bold"),
                f"{self.cache_hits:,} {'call' if self.cache_hits == 1 else 'calls'} answered from cache, saved ",
                (format_usd(self.cache_hits_saved_usd), "green"),
            )
        yield from self._render_budgets(options.max_width)

    def _table(self, width: int) -> Table:
        by_model = self.by == "model"
        rows = self.rows[:MAX_ROWS]
        costs = []
        for row in rows:
            cost = Text(format_usd(row.cost_usd))
            if row.unpriced:
                cost.append(f" +{row.unpriced}?", style="bold yellow")
            costs.append(cost)
        # Narrow consoles drop the bar, the cache columns, then shares and token counts; never a cost or the key.
        cols = [
            _Col("calls", [f"{r.requests:,}" for r in rows], f"{self.requests:,}", keep=8),
            _Col("input", [_tokens(r.prompt_tokens) for r in rows], _tokens(self.prompt_tokens), keep=5),
            _Col("cached", [_tokens(r.cache_read_tokens) for r in rows], _tokens(self.tokens["cache_read"]), keep=2),
            _Col("output", [_tokens(r.completion_tokens) for r in rows], _tokens(self.completion_tokens), keep=4),
            _Col("cost", costs, format_usd(self.total_usd), keep=10),
            _Col("share", [_percent(r.share) for r in rows], "100%" if self.total_usd else "-", keep=6),
            _Col("", self._bars(rows), keep=1, fixed=_BAR_WIDTH),
        ]
        if by_model:
            cols += [
                _Col("cache %", [_percent(r.cached_share) for r in rows], _percent(self.cached_share), keep=3),
                _Col(
                    "saved",
                    [format_usd(r.saved_by_cache_usd) for r in rows],
                    format_usd(self.saved_by_cache_usd),
                    keep=3,
                ),
            ]
        key = _Col(self.by, [r.key for r in rows], "total", justify="left")
        return _fitted(key, cols, width, footer=True)

    def _bars(self, rows: Sequence[SummaryRow]) -> list[Bar]:
        """A bar per row: its share of the total, or, over time (by day or month), its spend against the peak."""
        if self.by not in _PERIODS:
            return [_bar(float(r.share), "cyan") for r in rows]
        peak = max((r.cost_usd for r in rows), default=Decimal(0))
        return [_bar(float(r.cost_usd / peak) if peak else 0.0, "magenta") for r in rows]

    def _spark(self, width: int) -> Text | None:
        """Spend over time as one line of blocks, every day (or month) from the first row to the last."""
        if self.by not in _PERIODS or len(self.rows) < 2:
            return None
        costs = {row.key: row.cost_usd for row in self.rows}
        keys = sorted(costs)
        series = _periods(keys[0], keys[-1], self.by)
        label = f"spend per {self.by} "
        room = max(8, width - len(label) - 2)
        series = series[-room:]
        peak = max(costs.values())
        blocks = "▁▂▃▄▅▆▇█"
        line = "".join(
            "·" if not costs.get(key) or not peak else blocks[min(7, int(costs[key] / peak * 7))] for key in series
        )
        return Text.assemble((label, "bold"), (line, "magenta"), f"  {series[0]} → {series[-1]}")

    def _unpriced_line(self) -> Text:
        which = [f"{row.key}: {row.unpriced}" for row in self.rows if row.unpriced]
        detail = f" ({', '.join(which[:5])}{', …' if len(which) > 5 else ''})" if which else ""
        noun = "call" if self.unpriced == 1 else "calls"
        return Text(
            f"⚠ {self.unpriced} {noun} unpriced{detail}: no price known, not counted in the total",
            style="bold yellow",
        )

    def _render_budgets(self, width: int) -> Iterator[Text | Table]:
        if not self.budgets:
            return
        spent, limit, remaining, bars, states = [], [], [], [], []
        for line in self.budgets:
            if line.limit_usd is not None:
                fraction = line.fraction or 0.0
                spent.append(format_usd(line.spent_usd))
                text = format_usd(line.limit_usd)
                remaining.append(format_usd(line.remaining_usd if line.remaining_usd is not None else Decimal(0)))
            else:
                max_tokens = line.max_tokens or 0
                fraction = line.tokens / max_tokens if max_tokens else 1.0
                spent.append(f"{line.tokens:,} tok")
                text = f"{max_tokens:,} tok"
                remaining.append(f"{max(0, max_tokens - line.tokens):,} tok")
            if line.limit_usd is not None and line.max_tokens is not None:
                text += f" / {line.max_tokens:,} tok"
            limit.append(text)
            color = "red" if line.exceeded else ("yellow" if fraction >= 0.8 else "green")
            bars.append(_bar(fraction, color))
            states.append(Text("EXCEEDED" if line.exceeded else "ok", style=f"bold {color}"))
        cols = [
            _Col("spent", spent, keep=10),
            _Col("limit", limit, keep=8),
            _Col("remaining", remaining, keep=6),
            _Col("", bars, keep=1, fixed=_BAR_WIDTH),
            _Col("state", states, justify="left", keep=9),
        ]
        yield Text("Budgets (current window)", style="bold")
        yield _fitted(_Col("scope", [line.label for line in self.budgets], justify="left"), cols, width, footer=False)


_PERIODS = ("day", "month")
KEY_JOIN = " · "
"""What joins the values of a combination's group key (``--by day,model``: ``2026-12-01 · gpt-4o``)."""


def split_keys(by: object) -> list[str]:
    """Return the grouping keys of ``by`` (``"user,model"`` is two).

    Raises:
        ValueError: for a ``by`` that is not a non-empty str of non-empty keys.
    """
    if not isinstance(by, str) or not by.strip():
        raise ValueError("by must be a non-empty str")
    keys = [key.strip() for key in by.split(",")]
    if not all(keys):
        raise ValueError(f"by: an empty key in {by!r}")
    return keys


def _event_keys(event: Event, key: str) -> list[str]:
    if key == "month":
        return [day_key(event.timestamp)[:7]]
    return event_groups(event, key)


def _group_sums(group: Group) -> list[int]:
    return [getattr(group, f.name) for f in fields(Totals)]


def _store_groups(
    store: Store, ledger: str, keys: Sequence[str], start: float | None, stop: float | None
) -> list[Group] | None:
    """The groups the store can aggregate itself: one key, ``month`` (from days), ``day`` with one other key (an
    aggregate per day with calls); None for the combinations only the calls can tell."""
    if len(keys) == 1 and keys[0] != "month":
        return store.aggregate(ledger, keys[0], start, stop)
    sums: dict[str, list[int]] = {}
    if keys == ["month"]:
        for group in store.aggregate(ledger, "day", start, stop):
            add_sums(sums, group.key[:7], _group_sums(group))
        return ranked_groups(sums.items())
    if len(keys) != 2 or keys[0] != "day" or keys[1] in _PERIODS:
        return None
    for day in store.aggregate(ledger, "day", start, stop):
        lo = _day_start(day.key)
        if lo is None:
            return None
        hi = lo + _DAY_S
        lo, hi = max(lo, start if start is not None else lo), min(hi, stop if stop is not None else hi)
        for group in store.aggregate(ledger, keys[1], lo, hi):
            add_sums(sums, day.key + KEY_JOIN + group.key, _group_sums(group))
    return ranked_groups(sums.items())


def grouped(
    store: Store,
    ledger: str,
    bys: Sequence[Sequence[str]],
    start: float | None = None,
    stop: float | None = None,
    where: Where | None = None,
) -> list[list[Group]]:
    """Group the calls of ``[start, stop)`` that ``where`` matches by each key list of ``bys``, in ``aggregate()``
    order (most expensive first).

    ``["user"]`` groups by user, ``["day", "model"]`` by each day and model (keys joined by ``KEY_JOIN``). The
    store aggregates what it can; the rest (and everything when ``where`` filters) comes from one read of the
    calls, shared by every key list.

    Raises:
        StoreError: when the store fails.
    """
    results: list[list[Group] | None] = [None] * len(bys)
    if not where:
        results = [_store_groups(store, ledger, keys, start, stop) for keys in bys]
    pending = [i for i, found in enumerate(results) if found is None]
    if pending:
        sums: list[dict[str, list[int]]] = [{} for _ in pending]
        for event in iter_events(store, ledger, start, stop):
            if where and not where.matches(event):
                continue
            one = sums_of([event])
            for acc, i in zip(sums, pending, strict=True):
                for combo in itertools.product(*(_event_keys(event, key) for key in bys[i])):
                    add_sums(acc, KEY_JOIN.join(combo), one)
        for acc, i in zip(sums, pending, strict=True):
            results[i] = ranked_groups(acc.items())
    return [found or [] for found in results]


def newest_events(
    store: Store,
    ledger: str,
    limit: int,
    start: float | None = None,
    stop: float | None = None,
    where: Where | None = None,
) -> list[Event]:
    """Return the newest ``limit`` calls of ``[start, stop)`` that ``where`` matches, newest first.

    Filtered, the calls are read a day at a time from the newest day, until ``limit`` match.

    Raises:
        StoreError: when the store fails.
    """
    if not where:
        return list(reversed(store.events(ledger, start, stop, limit=limit)))
    days = sorted((g.key for g in store.aggregate(ledger, "day", start, stop)), reverse=True)
    bounds = [_day_start(day) for day in days]
    if any(lo is None for lo in bounds):  # pragma: no cover - a store's day keys are ISO dates
        bounds, days = [None], ["all"]
    found: list[Event] = []
    model = where.get("model")
    for lo in bounds:
        lo_ = start if lo is None else max(lo, start if start is not None else lo)
        hi = stop if lo is None else min(lo + _DAY_S, stop if stop is not None else lo + _DAY_S)
        for event in reversed(store.events(ledger, lo_, hi, model=model)):
            if where.matches(event):
                found.append(event)
                if len(found) >= limit:
                    return found
    return found


def _periods(first: str, last: str, by: str) -> list[str]:
    """Every day (``2026-12-01``) or month (``2026-12``) from ``first`` to ``last``; the keys alone if unreadable."""
    try:
        day = dt.date.fromisoformat(first if by == "day" else first + "-01")
        end = dt.date.fromisoformat(last if by == "day" else last + "-01")
    except ValueError:
        return [first, last]
    out: list[str] = []
    while day <= end and len(out) < 10_000:
        out.append(day.isoformat() if by == "day" else day.isoformat()[:7])
        day = day + dt.timedelta(days=1) if by == "day" else (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return out


def _sum_groups(groups: Sequence[Group]) -> Totals:
    names = [f.name for f in fields(Totals)]
    return Totals.from_sums([sum(getattr(group, name) for group in groups) for name in names])


def build_summary(
    store: Store,
    ledger: str,
    *,
    window: str | None = None,
    by: str = "model",
    since: object = None,
    until: object = None,
    where: Where | None = None,
    budgets: Sequence[Budget] | None = None,
    now: float | None = None,
    top: int | None = None,
) -> Summary:
    """Summarize a ledger: totals, one row per value of ``by``, budget state.

    Args:
        store: the ledger's store.
        ledger: the ledger's name (the tracker's ``name``).
        window: None (everything), ``"day"`` or ``"month"``: the current calendar window in UTC.
        by: ``"model"``, ``"provider"``, ``"user"``, ``"tag"``, ``"day"``, ``"month"``, ``"status"`` or any
            metadata key; several keys joined by commas (``"user,model"``) group by each combination.
        since, until: bounds (epoch seconds, datetime, date, ISO text, ``7d``, ``yesterday``; see
            ``tokencost.when``); not with ``window``.
        where: only the calls these filters match (``tokencost.where``); totals are theirs too.
        budgets: the budgets to show; None reads the ones the tracker saved in the store.
        now: the current time (epoch seconds), for the window and budget windows.
        top: keep only this many rows: the most expensive, or by ``day``/``month`` the latest (totals are
            over every call either way).

    Raises:
        ValueError: for an unknown window, ``window`` together with ``since``/``until``, a bad time or ``top``.
        StoreError: when the store fails.
    """
    if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top < 1):
        raise ValueError(f"top must be a positive int, got {top!r}")
    by = ",".join(split_keys(by))
    summary = build_summaries(
        store, ledger, [by], window=window, since=since, until=until, where=where, budgets=budgets, now=now
    )[by]
    if top is None:
        return summary
    rows = summary.rows[-top:] if by in _PERIODS else summary.rows[:top]
    return dataclasses.replace(summary, rows=rows)


def build_summaries(
    store: Store,
    ledger: str,
    bys: Sequence[str],
    *,
    window: str | None = None,
    since: object = None,
    until: object = None,
    where: Where | None = None,
    budgets: Sequence[Budget] | None = None,
    now: float | None = None,
) -> dict[str, Summary]:
    """Summarize the same calls grouped several ways (``["model", "user", "day,model"]``) with one read of the
    store: ``build_summary`` for each ``by``, keyed by it (as ``split_keys`` joins it back: ``"day,model"``).

    Raises:
        ValueError: for an unknown window, ``window`` together with ``since``/``until``, a bad time or key.
        StoreError: when the store fails.
    """
    keyed = {",".join(keys): keys for keys in map(split_keys, bys)}
    if window not in (None, "day", "month"):
        raise ValueError(f"window must be None, 'day' or 'month', got {window!r}")
    now = time.time() if now is None else now
    start, stop = parse_range(since, until, now=now)
    if window is not None:
        if start is not None or stop is not None:
            raise ValueError("give window or since/until, not both")
        start = _window_start(window, now)
    whole = start is None and stop is None and not where
    # Every event has exactly one model, so the model groups add up to the calls' totals (tags do not).
    extra = [key for key in ("model", "status") if key not in keyed and not (key == "model" and whole)]
    found = grouped(store, ledger, [*keyed.values(), *([key] for key in extra)], start, stop, where)
    groups = dict(zip([*keyed, *extra], found, strict=True))
    totals = store.totals(ledger) if whole else _sum_groups(groups["model"])
    lines = tuple(budget_lines(store, ledger, budgets, now))
    hits = next((g for g in groups["status"] if g.key == "cache_hit"), None)
    since_dt, until_dt = _utc(start), _utc(stop)
    label = _window_label(window, since_dt, since, until) + (f" · where {where}" if where else "")
    out: dict[str, Summary] = {}
    for by in keyed:
        rows = [_row(group, totals.cost_units) for group in groups[by]]
        if by in _PERIODS:
            rows.sort(key=lambda row: row.key)
        out[by] = Summary(
            ledger=ledger,
            by=by,
            total_usd=from_units(totals.cost_units),
            requests=totals.requests,
            unpriced=totals.unpriced,
            saved_by_cache_usd=from_units(totals.saved_units),
            tokens={
                "input": totals.input_tokens,
                "cache_read": totals.cache_read_tokens,
                "cache_write": totals.cache_write_tokens,
                "output": totals.output_tokens,
                "reasoning": totals.reasoning_tokens,
            },
            rows=tuple(rows),
            budgets=lines,
            window=label,
            since=since_dt,
            until=until_dt,
            cache_hits=0 if hits is None else hits.requests,
            cache_hits_saved_usd=Decimal(0) if hits is None else from_units(hits.saved_units),
        )
    return out


# ---------------------------------------------------------------------------------------------------- stores

# The group keys every event has; any other ``by`` is a metadata key.
BUILTIN_KEYS = ("model", "provider", "status", "price_source", "day", "month", "tag")
# Recent events whose metadata keys a typo's message lists.
_KEY_SAMPLE = 1000


def check_ledger(store: Store, ledger: str) -> None:
    """Refuse a ledger name the store does not hold, naming the ones it does.

    A store that cannot list its ledgers (``Store.ledgers()`` is ``None``) accepts every name.

    Raises:
        ValueError: ``no ledger named 'nosuch'; ledgers here: default, batch``.
        StoreError: when the store fails.
    """
    names = store.ledgers()
    if names is None or ledger in names:
        return
    here = ", ".join(repr(name) for name in names) if names else "none"
    raise ValueError(f"no ledger named {ledger!r}; ledgers here: {here}")


def metadata_keys(store: Store, ledger: str) -> list[str]:
    """Return the metadata keys of the ledger's newest calls (up to 1,000 of them), sorted."""
    keys: set[str] = set()
    for event in store.events(ledger, limit=_KEY_SAMPLE):
        keys.update(event.metadata)
    return sorted(keys - {"tags"})


def check_group_key(store: Store, ledger: str, by: str) -> None:
    """Refuse a metadata key no recorded call has (a typo would group everything under ``(none)``).

    Raises:
        ValueError: naming the built-in keys and the metadata keys recorded.
        StoreError: when the store fails.
    """
    keys = split_keys(by)
    if len(keys) > 1:
        for key in keys:
            check_group_key(store, ledger, key)
        return
    if by in BUILTIN_KEYS:
        return
    groups = store.aggregate(ledger, by)
    if not groups or any(group.key != NONE_KEY for group in groups):
        return  # an empty ledger has no keys to compare with
    found = metadata_keys(store, ledger)
    known = ", ".join(found) if found else "none recorded"
    raise ValueError(
        f"no recorded call has the key {by!r}: group by {', '.join(BUILTIN_KEYS)} or a metadata key ({known})"
    )


def open_store(url: str, **options: Any) -> Store:
    """Open an existing ledger for reading: unlike ``store_from_url``, a missing SQLite file is an error.

    Raises:
        StoreError: when the SQLite file does not exist (nothing is created), or the store cannot be opened.
        ValueError: for a malformed or unknown URL, or ``memory://`` (it holds nothing outside its process).
        MissingExtraError: when the backend's optional dependency is not installed.
    """
    from tokencost.stores import store_from_url

    if not isinstance(url, str):
        raise TypeError(f"store must be a URL string, not {type(url).__name__}")
    if url.startswith("memory:"):
        raise ValueError("memory:// holds no ledger outside the process that recorded it: use a sqlite or redis URL")
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :].split("?", 1)[0]
        if path and path != ":memory:" and not os.path.exists(path):
            raise StoreError(f"no ledger at {path}: the file does not exist (check --store)")
    return store_from_url(url, **options)


def report(
    store_url: str,
    *,
    name: str = "default",
    by: str = "model",
    since: object = None,
    until: object = None,
    window: str | None = None,
) -> Summary:
    """Open the ledger at ``store_url``, summarize it (see ``build_summary``) and close it.

    Example::

        summary = report("sqlite:///costs.db", by="user", window="month")

    Raises:
        StoreError: for a missing SQLite file or a store that fails (locked, unreachable).
        ValueError: for a bad URL, grouping, window or time.
    """
    store = open_store(store_url)
    try:
        return build_summary(store, name, window=window, by=by, since=since, until=until)
    finally:
        store.close()


# ---------------------------------------------------------------------------------------------------- export


def _day_start(key: str) -> float | None:
    try:
        day = dt.date.fromisoformat(key)
    except ValueError:
        return None
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc).timestamp()


def _count(store: Store, ledger: str, lo: float | None, hi: float | None) -> int:
    # "status" has a handful of values and every event has exactly one.
    return sum(group.requests for group in store.aggregate(ledger, "status", lo, hi))


def _split(
    store: Store, ledger: str, lo: float | None, hi: float | None, inner: tuple[float, float], count: int, page: int
) -> Iterator[tuple[float | None, float | None]]:
    """Cut [lo, hi) into windows of at most about ``page`` events, slicing the busy span ``inner`` evenly."""
    # Slice only inside the window: a cut outside [lo, hi) would drop the window's own bound.
    a = inner[0] if lo is None else max(inner[0], lo)
    b = inner[1] if hi is None else min(inner[1], hi)
    if count <= page or b - a < 1e-6:
        yield lo, hi
        return
    parts = min(1024, math.ceil(count / page) * 2)
    step = (b - a) / parts
    cuts = [a + step * i for i in range(1, parts)]
    bounds: list[float | None] = [lo, *cuts, hi]
    for i in range(parts):
        s_lo, s_hi = bounds[i], bounds[i + 1]
        n = _count(store, ledger, s_lo, s_hi)
        if n == 0:
            continue
        span = (a + step * i, a + step * (i + 1))
        yield from _split(store, ledger, s_lo, s_hi, span, n, page)


def _windows(
    store: Store, ledger: str, since: float | None, until: float | None, page: int
) -> tuple[list[tuple[float | None, float | None, tuple[float, float], int]], int]:
    """Cut [since, until) into contiguous windows, one per day that has events, with each day's count."""
    days = []
    for group in store.aggregate(ledger, "day", since, until):
        start = _day_start(group.key)
        if start is not None:
            days.append((start, group.requests))
    days.sort()
    total = sum(n for _, n in days)
    if not days:
        # Nothing dated: one window, so no event can be missed whatever the store's day grouping says.
        return ([(since, until, (0.0, 0.0), 0)], 0) if store.totals(ledger).requests else ([], 0)
    out: list[tuple[float | None, float | None, tuple[float, float], int]] = []
    for i, (start, n) in enumerate(days):
        lo = since if i == 0 else start
        hi = until if i == len(days) - 1 else days[i + 1][0]
        out.append((lo, hi, (start, start + _DAY_S), n))
    return out, total


def iter_events(
    store: Store,
    ledger: str,
    since: float | None = None,
    until: float | None = None,
    *,
    page: int = EXPORT_PAGE,
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[Event]:
    """Yield every event of ``[since, until)`` without holding them all: a page of about ``page`` at a time.

    Pages are contiguous time windows (busy days are cut into slices counted in the store), so every event is
    yielded exactly once; within a window in the order recorded. Events sharing one timestamp are never split,
    so a burst of more than ``page`` calls in the same microsecond comes as one larger page.
    ``progress(done, total)`` is called after each page.
    """
    windows, total = _windows(store, ledger, since, until, page)
    done = 0
    for lo, hi, inner, count in windows:
        for s_lo, s_hi in _split(store, ledger, lo, hi, inner, count, page):
            batch = store.events(ledger, s_lo, s_hi)
            done += len(batch)
            yield from batch
            del batch
            if progress is not None:
                progress(done, max(total, done))


def _dec(amount: Decimal) -> str:
    """Return a Decimal as plain decimal text (never ``1E-12``)."""
    return f"{amount:f}"


@dataclass(frozen=True)
class _PriceFacts:
    units: tuple[int, ...] | None  # pico-dollars per token of each bucket, when all are whole numbers
    per_mtok: dict[str, str]


# Facts about each price seen by an export: a ledger holds a handful of prices and millions of events.
_PRICE_FACTS: dict[Price, _PriceFacts] = {}
_PRICE_FACTS_MAX = 4096


def _price_facts(price: Price) -> _PriceFacts:
    facts = _PRICE_FACTS.get(price)
    if facts is None:
        scaled = [price.per_token(bucket) * UNITS_PER_USD for bucket in BUCKETS]
        units = tuple(int(x) for x in scaled) if all(x == x.to_integral_value() for x in scaled) else None
        per_mtok = {k: f"{v:f}" for k, v in price.as_per_mtok().items()}
        facts = _PriceFacts(units, per_mtok)
        if len(_PRICE_FACTS) >= _PRICE_FACTS_MAX:
            _PRICE_FACTS.clear()
        _PRICE_FACTS[price] = facts
    return facts


def _breakdown(event: Event, facts: _PriceFacts | None) -> dict[str, str]:
    """Return ``event.breakdown_units`` as decimal text, multiplying whole per-token units when it can."""
    if facts is None or facts.units is None or event.breakdown is not None:
        return {bucket: units_text(units) for bucket, units in event.breakdown_units.items()}
    if event.cost_units is None or event.status == "cache_hit":
        return {}
    usage = event.usage
    out = {}
    for bucket, per_token in zip(BUCKETS, facts.units, strict=True):
        tokens: int = getattr(usage, bucket)
        if tokens:
            out[bucket] = units_text(tokens * per_token)
    return out


def _fields(event: Event) -> list[Any]:
    """Return the values of ``EXPORT_FIELDS`` for ``event`` (money as decimal text, dicts as dicts)."""
    usage = event.usage
    cost = event.cost_units
    price = event.price
    facts = None if price is None else _price_facts(price)
    return [
        event.call_id,
        dt.datetime.fromtimestamp(event.timestamp, dt.timezone.utc).isoformat(),
        event.model,
        event.provider,
        event.status,
        cost is not None,
        None if cost is None else units_text(cost),
        event.price_source,
        usage.prompt_tokens,
        usage.completion_tokens,
        usage.input,
        usage.cache_read + usage.cache_read_audio,  # every cache read, as in summaries
        usage.cache_write + usage.cache_write_1h,  # every cache write (both TTLs), as in summaries
        usage.output,
        usage.reasoning,
        usage.audio_in,
        usage.audio_out,
        usage.image,
        usage.cache_read_audio,
        units_text(event.saved_units),
        _breakdown(event, facts),
        {} if facts is None else dict(facts.per_mtok),
        event.reason,
        dict(event.metadata),
    ]


def _cell(value: Any) -> Any:
    """Return a field as a CSV cell: booleans as true/false, None as empty, dicts as JSON text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return _json(value)
    return value


def export_record(event: Event) -> dict[str, Any]:
    """Return one event as an export record: every field, money as exact decimal text, time ISO-8601 UTC."""
    return dict(zip(EXPORT_FIELDS, _fields(event), strict=True))


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _write_events(out: IO[str], events: Iterator[Event], fmt: str) -> int:
    count = 0
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(EXPORT_FIELDS)
        for event in events:
            writer.writerow([_cell(value) for value in _fields(event)])
            count += 1
    elif fmt == "jsonl":
        for event in events:
            out.write(_json(export_record(event)))
            out.write("\n")
            count += 1
    else:
        out.write("[")
        for event in events:
            out.write(",\n" if count else "\n")
            out.write(_json(export_record(event)))
            count += 1
        out.write("\n]\n" if count else "]\n")
    return count


def export_events(
    store: Store,
    ledger: str,
    path_or_file: str | os.PathLike[str] | IO[str],
    fmt: str = "csv",
    since: object = None,
    until: object = None,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Write every event of a ledger to a file, streaming, and return how many were written.

    ``fmt`` is ``"csv"`` (a header row, dicts as JSON text), ``"json"`` (one array) or ``"jsonl"`` (one object
    per line). Every record has the fields of ``EXPORT_FIELDS``; money is exact decimal text, so the exported
    costs add up to the report's total to the last digit. A path is written atomically (a temporary file renamed
    into place when complete); an open text file is written as is.

    Example::

        export_events(store, "default", "costs.csv", since="2026-11-01")

    Raises:
        ValueError: for an unknown format or a bad time.
        StoreError: when the store fails (a path is then left untouched).
        OSError: when the file cannot be written.
    """
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"format must be one of {', '.join(EXPORT_FORMATS)}, got {fmt!r}")
    start, stop = parse_range(since, until)
    events = iter_events(store, ledger, start, stop, progress=progress)
    if not isinstance(path_or_file, (str, os.PathLike)):
        return _write_events(path_or_file, events, fmt)
    path = Path(path_or_file)
    # A new name next to the target (so the rename is atomic), created like any file (so umask applies).
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8", newline="") as out:
            count = _write_events(out, events, fmt)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.strerror:
            # Name the user's file, not the temporary one.
            raise OSError(exc.errno, f"cannot write {path}: {exc.strerror}") from exc
        raise
    return count


# ---------------------------------------------------------------------------------------------------- whatif


def default_chain() -> PriceChain:
    """Return the chain whatif prices with: ``register_price`` overrides, litellm's map, then genai-prices."""
    from tokencost.pricing.genai_prices import GenaiPricesSource
    from tokencost.pricing.litellm_map import LitellmMapSource
    from tokencost.pricing.override import OverrideSource

    return PriceChain([OverrideSource(), LitellmMapSource(), GenaiPricesSource()])


def _usage(group: Group | WhatIfRow) -> Usage:
    return Usage(
        input=group.input_tokens,
        cache_read=group.cache_read_tokens,
        cache_write=group.cache_write_tokens,
        output=group.output_tokens,
        reasoning=group.reasoning_tokens,
    )


def _per_mtok(price: Price, bucket: str) -> Decimal:
    return (price.per_token(bucket) * _MILLION).normalize()


def _price_text(price: Price) -> str:
    parts = [f"in {format_usd(_per_mtok(price, 'input'))}", f"out {format_usd(_per_mtok(price, 'output'))}"]
    if price.cache_read is not None:
        parts.append(f"cached {format_usd(_per_mtok(price, 'cache_read'))}")
    return " / ".join(parts) + " per 1M"


def _price_short(price: Price) -> str:
    text = f"{format_usd(_per_mtok(price, 'input'))} / {format_usd(_per_mtok(price, 'output'))}"
    if price.cache_read is not None:
        text += f" ({format_usd(_per_mtok(price, 'cache_read'))})"
    return text


@dataclass(frozen=True)
class WhatIfRow:
    """One recorded model's usage, its recorded cost and its cost under the target price."""

    model: str
    requests: int
    unpriced: int
    recorded_usd: Decimal
    repriced_usd: Decimal
    input_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def difference_usd(self) -> Decimal:
        """Repriced minus recorded cost: negative means the target would have been cheaper."""
        return self.repriced_usd - self.recorded_usd

    def to_dict(self) -> dict[str, Any]:
        """Return the row as JSON-able data (money as decimal text)."""
        return {
            "model": self.model,
            "requests": self.requests,
            "unpriced": self.unpriced,
            "recorded_cost": usd_text(self.recorded_usd),
            "repriced_cost": usd_text(self.repriced_usd),
            "cost_difference": usd_text(self.difference_usd),
            "input_tokens": self.input_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "output_tokens": self.output_tokens,
            "reasoning_tokens": self.reasoning_tokens,
        }


@dataclass(frozen=True)
class Alternative:
    """A model that could serve the recorded token mix, and what it would have cost."""

    model: str
    provider: str | None
    cost_usd: Decimal
    price: Price

    def to_dict(self) -> dict[str, Any]:
        """Return the alternative as JSON-able data (money as decimal text)."""
        return {
            "model": self.model,
            "provider": self.provider,
            "cost": usd_text(self.cost_usd),
            "price_per_mtok": {k: f"{v:f}" for k, v in self.price.as_per_mtok().items()},
        }


@dataclass(frozen=True)
class WhatIf:
    """Recorded usage repriced under another model's price, and the cheapest models for the same token mix."""

    ledger: str
    model: str | None
    price: Price | None
    from_model: str | None
    rows: tuple[WhatIfRow, ...] = ()
    alternatives: tuple[Alternative, ...] = ()
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    @property
    def recorded_usd(self) -> Decimal:
        """What the repriced calls cost as recorded (priced calls only)."""
        return sum((row.recorded_usd for row in self.rows), Decimal(0))

    @property
    def repriced_usd(self) -> Decimal:
        """What every call of the rows would have cost under the target price."""
        return sum((row.repriced_usd for row in self.rows), Decimal(0))

    @property
    def difference_usd(self) -> Decimal:
        """Repriced minus recorded: negative means savings."""
        return self.repriced_usd - self.recorded_usd

    @property
    def unpriced(self) -> int:
        """Calls with no recorded cost (their tokens are repriced, but add nothing to the recorded cost)."""
        return sum(row.unpriced for row in self.rows)

    def to_dict(self) -> dict[str, Any]:
        """Return the comparison as JSON-able data (money as decimal text)."""
        return {
            "ledger": self.ledger,
            "model": self.model,
            "price_source": None if self.price is None else self.price.source,
            "price_per_mtok": None
            if self.price is None
            else {k: f"{v:f}" for k, v in self.price.as_per_mtok().items()},
            "from_model": self.from_model,
            "since": None if self.since is None else self.since.isoformat(),
            "until": None if self.until is None else self.until.isoformat(),
            "recorded_cost": usd_text(self.recorded_usd),
            "repriced_cost": usd_text(self.repriced_usd),
            "cost_difference": usd_text(self.difference_usd),
            "unpriced": self.unpriced,
            "models": [row.to_dict() for row in self.rows],
            "alternatives": [alt.to_dict() for alt in self.alternatives],
        }

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        """Render the per-model comparison and the cheapest alternatives."""
        if not self.rows:
            yield Text(f"tokencost whatif · {self.ledger}: no recorded usage to reprice.", style="dim")
            return
        if self.model is not None and self.price is not None:
            yield Text.assemble(
                (f"What if every call used {self.model}", "bold"),
                f"  ({self.price.source}: {_price_text(self.price)})",
            )
            diff = self.difference_usd
            recorded = []
            for row in self.rows:
                cell = Text(format_usd(row.recorded_usd))
                if row.unpriced:
                    cell.append(f" +{row.unpriced}?", style="bold yellow")
                recorded.append(cell)
            rows = self.rows
            cols = [
                _Col("calls", [f"{r.requests:,}" for r in rows], f"{sum(r.requests for r in rows):,}", keep=5),
                _Col(
                    "input",
                    [_tokens(_usage(r).prompt_tokens) for r in rows],
                    _tokens(sum(_usage(r).prompt_tokens for r in rows)),
                    keep=3,
                ),
                _Col(
                    "output",
                    [_tokens(r.output_tokens + r.reasoning_tokens) for r in rows],
                    _tokens(sum(r.output_tokens + r.reasoning_tokens for r in rows)),
                    keep=2,
                ),
                _Col("recorded", recorded, format_usd(self.recorded_usd), keep=10),
                _Col(
                    f"as {self.model}",
                    [format_usd(r.repriced_usd) for r in rows],
                    format_usd(self.repriced_usd),
                    keep=9,
                ),
                _Col(
                    "difference",
                    [self._diff(r.difference_usd, r.recorded_usd) for r in rows],
                    self._diff(diff, self.recorded_usd).plain,
                    keep=8,
                ),
            ]
            key = _Col("recorded model", [r.model for r in rows], "total", justify="left")
            table = _fitted(key, cols, options.max_width, footer=True)
            yield table
            if self.unpriced:
                yield Text(
                    f"⚠ {self.unpriced} recorded calls were unpriced: their tokens are repriced above, but their "
                    "recorded cost is unknown",
                    style="bold yellow",
                )
        if self.alternatives:
            alternatives = self.alternatives
            alt_cols = [
                _Col("#", [str(i) for i in range(1, len(alternatives) + 1)], keep=2),
                _Col("provider", [a.provider or "" for a in alternatives], justify="left", keep=3),
                _Col("cost", [format_usd(a.cost_usd) for a in alternatives], keep=10),
                _Col(
                    "vs recorded",
                    [self._diff(a.cost_usd - self.recorded_usd, self.recorded_usd) for a in alternatives],
                    keep=8,
                ),
                _Col("$/1M in/out (cached)", [_price_short(a.price) for a in alternatives], justify="left", keep=4),
            ]
            yield Text(
                f"Cheapest {len(alternatives)} chat models for this token mix (litellm's price map)", style="bold"
            )
            alts = _fitted(
                _Col("model", [a.model for a in alternatives], justify="left"),
                alt_cols,
                options.max_width,
                footer=False,
            )
            yield alts

    @staticmethod
    def _diff(diff: Decimal, base: Decimal) -> Text:
        text = format_usd(diff, signed=True)
        if base:
            text += f" ({diff / base * 100:+.0f}%)"
        return Text(text, style="green" if diff < 0 else ("red" if diff > 0 else ""))


def _deprecated(info: Mapping[str, Any], today: dt.date) -> bool:
    when = info.get("deprecation_date")
    if not isinstance(when, str):
        return False
    try:
        return dt.date.fromisoformat(when[:10]) <= today
    except ValueError:
        return False


def cheapest_models(usage: Usage, requests: int, top: int, *, today: dt.date | None = None) -> list[Alternative]:
    """Rank the chat models of litellm's price map by what ``usage`` (summed over ``requests`` calls) would cost.

    Skipped: models that are not chat models, have no per-token price or a zero input or output price, are past their
    deprecation date, or whose context window is smaller than the average prompt of the recorded calls.
    """
    import litellm

    from tokencost.pricing.litellm_map import price_from_entry

    today = today or dt.datetime.now(dt.timezone.utc).date()
    mean_prompt = usage.prompt_tokens // requests if requests else 0
    ranked: list[tuple[int, str, Alternative]] = []
    for name, info in litellm.model_cost.items():
        if not isinstance(info, dict) or info.get("mode") != "chat" or name == "sample_spec":
            continue
        price = price_from_entry(info)
        # A zero input or output price is a placeholder in the map (or a free tier), not a real offer.
        if price is None or price.input == 0 or price.output == 0 or _deprecated(info, today):
            continue
        window = info.get("max_input_tokens")
        if isinstance(window, int) and window < mean_prompt:
            continue
        units = price.cost_units(usage)
        provider = info.get("litellm_provider")
        alt = Alternative(name, provider if isinstance(provider, str) else None, from_units(units), price)
        ranked.append((units, name, alt))
    ranked.sort(key=lambda item: (item[0], item[1]))
    return [alt for _, _, alt in ranked[:top]]


def whatif(
    store: Store,
    ledger: str,
    model: str | None,
    *,
    from_model: str | None = None,
    top: int | None = None,
    since: object = None,
    until: object = None,
    chain: PriceChain | None = None,
) -> WhatIf:
    """Reprice the recorded usage under ``model``'s price, per recorded model; optionally rank alternatives.

    The token sums of each recorded model (per bucket: input, cache reads and writes, output, reasoning) come from
    the store's aggregate and are priced with ``model``'s price from ``chain`` (default: ``register_price``
    overrides, then litellm's map). ``from_model`` limits the comparison to one recorded model. ``top`` adds the
    ``top`` cheapest chat models of litellm's map for the same token mix.

    Example::

        result = whatif(store, "default", "gpt-4o-mini", from_model="gpt-4o", top=5)
        print(result.difference_usd)

    Raises:
        PriceNotFoundError: when no source prices ``model``.
        ValueError: when neither ``model`` nor ``top`` is given, ``from_model`` has no recorded calls, or a bad
            time or ``top``.
        StoreError: when the store fails.
    """
    if model is None and not top:
        raise ValueError("give a model to reprice with, or top=N to rank alternatives")
    if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top < 1):
        raise ValueError(f"top must be a positive int, got {top!r}")
    price: Price | None = None
    if model is not None:
        price = (chain or default_chain()).lookup(model)
        if price is None:
            raise PriceNotFoundError(model)
    start, stop = parse_range(since, until)
    groups = [g for g in store.aggregate(ledger, "model", start, stop) if from_model is None or g.key == from_model]
    if from_model is not None and not groups:
        raise ValueError(f"no calls to {from_model!r} recorded in ledger {ledger!r}")
    rows = []
    for group in groups:
        usage = _usage(group)
        repriced = from_units(price.cost_units(usage)) if price is not None else Decimal(0)
        rows.append(
            WhatIfRow(
                model=group.key,
                requests=group.requests,
                unpriced=group.unpriced,
                recorded_usd=from_units(group.cost_units),
                repriced_usd=repriced,
                input_tokens=group.input_tokens,
                cache_read_tokens=group.cache_read_tokens,
                cache_write_tokens=group.cache_write_tokens,
                output_tokens=group.output_tokens,
                reasoning_tokens=group.reasoning_tokens,
            )
        )
    alternatives: list[Alternative] = []
    if top and rows:
        mix = Usage(*(sum(getattr(row, f"{name}_tokens") for row in rows) for name in _TOKEN_FIELDS))
        alternatives = cheapest_models(mix, sum(row.requests for row in rows), top)
    return WhatIf(
        ledger=ledger,
        model=model,
        price=price,
        from_model=from_model,
        rows=tuple(rows),
        alternatives=tuple(alternatives),
        since=_utc(start),
        until=_utc(stop),
    )

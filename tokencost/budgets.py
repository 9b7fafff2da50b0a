"""Budgets: limits on a scope of calls, the windows they reset on, and the scoped limits set in code.

* ``Budget``: a limit on one scope (all calls, or per model, user, tag or metadata key) over a window
  (``"total"``, ``"day"``, ``"month"``, calendar boundaries in ``tz``). Kept in the store as counters, so every
  process sharing the store enforces it.
* ``budget(...)`` (``tokencost.scoped``) and ``scope(**metadata)`` (``tokencost.context``), re-exported here.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tokencost.context import current_scope, scope
from tokencost.money import from_units, parse_amount, to_units
from tokencost.scoped import ScopedBudget, budget

if TYPE_CHECKING:
    from tokencost.budget_line import BudgetLine
    from tokencost.stores.base import Store
    from tokencost.typing import Money, Per, Unpriced, Window

__all__ = [
    "Budget",
    "BudgetLine",
    "ScopedBudget",
    "budget",
    "budget_lines",
    "counter_checks",
    "current_scope",
    "scope",
    "tighter",
]

WINDOWS: tuple[Window, ...] = ("total", "day", "month")


# window_id remembers its answer for a quarter hour of UTC time: today's time zone offsets and clock changes are
# multiples of 15 minutes, so a window does not begin inside one (window_id checks both ends before remembering).
_SLOT_S = 900.0
_UNSET = object()


@dataclass(frozen=True)
class Budget:
    """A limit on one scope of calls.

    Args:
        limit_usd: the most the scope may spend in the window (int, float, str or Decimal USD), or None.
        max_tokens: the most tokens the scope may use in the window, or None.
        window: ``"total"`` (never resets), ``"day"`` or ``"month"`` (calendar boundaries in ``tz``).
        per: None (all calls together), ``"model"``, ``"user"``, ``"tag"`` or any metadata key: one limit per value.
        tz: the IANA time zone of the window boundaries.
        strict: reserve the worst-case cost before each call, so the limit is never exceeded.
        unpriced: ``"refuse"`` or ``"allow"`` calls whose cost cannot be known; default refuse when strict.

    After construction ``limit_usd`` is always a ``Decimal`` (or None) and ``unpriced`` is never None.
    """

    limit_usd: Decimal | None = None
    max_tokens: int | None = None
    window: Window = "total"
    per: Per | None = None
    tz: str = "UTC"
    strict: bool = False
    unpriced: Unpriced | None = None

    if TYPE_CHECKING:
        # What type checkers see of the generated __init__: it takes any amount (``Money``), which __post_init__
        # turns into a Decimal, so ``Budget(limit_usd=2)`` type-checks and ``budget.limit_usd`` still reads as
        # ``Decimal | None``. The same parameters, order and defaults as the fields (tests/test_typing.py checks).
        def __init__(
            self,
            limit_usd: Money | None = None,
            max_tokens: int | None = None,
            window: Window = "total",
            per: Per | None = None,
            tz: str = "UTC",
            strict: bool = False,
            unpriced: Unpriced | None = None,
        ) -> None: ...

    def __post_init__(self) -> None:
        limit = parse_amount(self.limit_usd, "limit_usd")
        object.__setattr__(self, "limit_usd", limit)
        if self.max_tokens is not None and (
            isinstance(self.max_tokens, bool) or not isinstance(self.max_tokens, int) or self.max_tokens < 0
        ):
            raise ValueError(f"max_tokens must be a non-negative int, got {self.max_tokens!r}")
        if limit is None and self.max_tokens is None:
            raise ValueError("a Budget needs limit_usd or max_tokens")
        if self.window not in WINDOWS:
            raise ValueError(f"window must be one of {', '.join(WINDOWS)}, got {self.window!r}")
        if self.per is not None and (not isinstance(self.per, str) or not self.per or "|" in self.per):
            raise ValueError(f"per must be None, 'model', 'user', 'tag' or a metadata key, got {self.per!r}")
        try:
            ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise ValueError(f"unknown time zone {self.tz!r}") from None
        if self.unpriced is None:
            object.__setattr__(self, "unpriced", "refuse" if self.strict else "allow")
        elif self.unpriced not in ("refuse", "allow"):
            raise ValueError(f"unpriced must be 'refuse' or 'allow', got {self.unpriced!r}")

    @property
    def limit_units(self) -> int | None:
        """The limit in pico-dollars."""
        units: int | None = self.__dict__.get("_limit_units", _UNSET)
        if units is _UNSET:  # worked out once (every call checks and charges its budgets)
            units = None if self.limit_usd is None else to_units(self.limit_usd)
            object.__setattr__(self, "_limit_units", units)
        return units

    def window_id(self, timestamp: float) -> str:
        """Return the window a time falls in: ``"total"``, ``"2026-11-24"`` or ``"2026-11"`` (in ``tz``).

        Remembered per quarter hour of UTC time (every call asks for its budgets' windows several times): the
        answer of ``window_id_at`` for a quarter hour whose first and last instant fall in the same window.
        """
        if self.window == "total":
            return "total"
        slot = timestamp // _SLOT_S
        seen = self.__dict__.get("_window_slot")
        if seen is not None and seen[0] == slot:
            return seen[1]  # type: ignore[no-any-return]
        found = self.window_id_at(timestamp)
        start = slot * _SLOT_S
        if self.window_id_at(start) == found == self.window_id_at(start + _SLOT_S - 0.001):
            object.__setattr__(self, "_window_slot", (slot, found))
        return found

    def window_id_at(self, timestamp: float) -> str:
        """``window_id`` worked out from the calendar, nothing remembered (its plain reference)."""
        if self.window == "total":
            return "total"
        local = dt.datetime.fromtimestamp(timestamp, ZoneInfo(self.tz))
        return local.strftime("%Y-%m-%d" if self.window == "day" else "%Y-%m")

    def window_start(self, timestamp: float) -> float | None:
        """Return when the window holding ``timestamp`` began (epoch seconds), or None for ``"total"``."""
        if self.window == "total":
            return None
        local = dt.datetime.fromtimestamp(timestamp, ZoneInfo(self.tz))
        start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        if self.window == "month":
            start = start.replace(day=1)
        return start.timestamp()

    def window_end(self, timestamp: float) -> float | None:
        """Return when the window holding ``timestamp`` ends, the next one's start (None for ``"total"``)."""
        start = self.window_start(timestamp)
        if start is None:
            return None
        # Past any DST shift of a day (23 to 25 hours) and any month's length, inside the next window.
        return self.window_start(start + (36 * 3600 if self.window == "day" else 32 * 86_400))

    def values(self, model: str, metadata: Mapping[str, Any]) -> list[str]:
        """Return the scope values a call falls in (none when it lacks the ``per`` key)."""
        if self.per is None:
            return ["*"]
        if self.per == "model":
            return [model]
        if self.per == "tag":
            tags = metadata.get("tags")
            return [str(t) for t in dict.fromkeys(tags)] if isinstance(tags, (list, tuple)) else []
        value = metadata.get(self.per)
        return [] if value is None else [str(value)]

    def counter_key(self, value: str, timestamp: float) -> str:
        """Return the store counter that holds this scope value's spend in the window of ``timestamp``.

        Budgets with the same ``per``, ``window`` and ``tz`` share counters: the spend is the same quantity.
        """
        window = self.window_id(timestamp)
        suffix = "" if self.window == "total" else f"@{self.tz}"
        return f"{self.per or '*'}={value}|{self.window}={window}{suffix}"

    def label(self, value: str) -> str:
        """Return the scope as a person reads it: ``"total"``, ``"user=alice, day"``."""
        parts = [] if self.per is None else [f"{self.per}={value}"]
        if self.window != "total":
            parts.append(self.window)
        return ", ".join(parts) or "total"

    def to_dict(self) -> dict[str, Any]:
        """Return the budget as JSON-able data (money as decimal text)."""
        return {
            "limit_usd": None if self.limit_usd is None else str(self.limit_usd),
            "max_tokens": self.max_tokens,
            "window": self.window,
            "per": self.per,
            "tz": self.tz,
            "strict": self.strict,
            "unpriced": self.unpriced,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Budget:
        """Build a budget from ``to_dict()`` data."""
        return cls(
            **{k: data.get(k) for k in ("limit_usd", "max_tokens", "per", "unpriced")},
            window=data.get("window", "total"),
            tz=data.get("tz", "UTC"),
            strict=bool(data.get("strict")),
        )


def dump_budgets(budgets: Sequence[Budget]) -> str:
    """Serialize budgets for the store's meta (so reports can show them)."""
    return json.dumps([b.to_dict() for b in budgets], sort_keys=True)


def load_budgets(text: str | None) -> list[Budget]:
    """Read budgets serialized by ``dump_budgets``; bad data gives an empty list."""
    if not text:
        return []
    try:
        return [Budget.from_dict(item) for item in json.loads(text)]
    except (ValueError, TypeError):
        return []


def budget_lines(
    store: Store,
    ledger: str,
    budgets: Sequence[Budget] | None = None,
    now: float | None = None,
) -> list[BudgetLine]:
    """Return the current state of each budget scope of a ledger (read from the store's counters).

    ``budgets`` defaults to the ones the tracker saved in the store. A per-scope budget gives one line per value
    seen in the current window.
    """
    import time

    from tokencost.budget_line import BudgetLine

    if budgets is None:
        budgets = load_budgets(store.get_meta(ledger, "budgets"))
    now = time.time() if now is None else now
    lines: list[BudgetLine] = []
    for b in budgets:
        since = b.window_start(now)
        if b.per is None:
            values = ["*"]
        else:
            by = b.per if b.per != "model" else "model"
            values = [g.key for g in store.aggregate(ledger, by, since=since) if g.key != "(none)"]
        keys = [b.counter_key(v, now) for v in values]
        counters = store.counters(ledger, keys) if keys else {}
        for value, key in zip(values, keys, strict=True):
            units, tokens, reserved = counters.get(key, (0, 0, 0))
            spent = from_units(units)
            remaining = None if b.limit_usd is None else max(Decimal(0), b.limit_usd - spent)
            lines.append(
                BudgetLine(
                    b.label(value),
                    b.window,
                    b.limit_usd,
                    spent,
                    remaining,
                    b.max_tokens,
                    tokens,
                    b.strict,
                    from_units(reserved),
                    per=b.per,
                    value=value,
                    window_start=since,
                    window_end=b.window_end(now),
                )
            )
    return lines


def tighter(a: Budget, b: Budget) -> Budget:
    """Return one budget holding the tighter limits of two that share a counter (same scope and window)."""

    def low(x: Any, y: Any) -> Any:
        return y if x is None else x if y is None else min(x, y)

    return dataclasses.replace(
        a,
        limit_usd=low(a.limit_usd, b.limit_usd),
        max_tokens=low(a.max_tokens, b.max_tokens),
        strict=a.strict or b.strict,
        unpriced="refuse" if "refuse" in (a.unpriced, b.unpriced) else "allow",
    )


def counter_checks(
    budgets: Sequence[Budget], model: str, metadata: Mapping[str, Any], now: float
) -> dict[str, tuple[Budget, str]]:
    """Return the counters a call in this scope is checked against and charged to, each once.

    Budgets with the same ``per``, window and time zone share one counter (the spend is the same quantity): it
    is charged once per call, and checked against the budget that refuses first (``tighter``), so a looser
    budget beside it changes nothing. Values are ``(budget, scope value)``.
    """
    out: dict[str, tuple[Budget, str]] = {}
    for b in budgets:
        for value in b.values(model, metadata):
            key = b.counter_key(value, now)
            seen = out.get(key)
            out[key] = (b, value) if seen is None else (tighter(seen[0], b), value)
    return out


def __getattr__(name: str) -> Any:
    # BudgetLine lives in tokencost.budget_line, built on first use: most programs never read their budgets' state.
    if name == "BudgetLine":
        from tokencost.budget_line import BudgetLine

        globals()[name] = BudgetLine
        return BudgetLine
    raise AttributeError(f"module 'tokencost.budgets' has no attribute {name!r}")

"""Budgets: limits on a scope of calls, the windows they reset on, and the scoped limits set in code.

* ``Budget``: a limit on one scope (all calls, or per model, user, tag or metadata key) over a window
  (``"total"``, ``"day"``, ``"month"``, calendar boundaries in ``tz``). Kept in the store as counters, so every
  process sharing the store enforces it.
* ``budget(...)``: a limit on the calls made inside a ``with`` block or a decorated function (this process).
* ``scope(**metadata)``: metadata every call made inside carries, for attribution and per-scope budgets.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import functools
import inspect
import json
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tokencost.money import from_units, parse_amount, to_units
from tokencost.typing import Money, Per, Unpriced, Window

if TYPE_CHECKING:
    from tokencost.stores.base import Store
    from tokencost.tracker import CostTracker

__all__ = ["Budget", "BudgetLine", "ScopedBudget", "budget", "budget_lines", "current_scope", "scope"]

WINDOWS: tuple[Window, ...] = ("total", "day", "month")
_F = TypeVar("_F", bound=Callable[..., Any])


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
        return None if self.limit_usd is None else to_units(self.limit_usd)

    def window_id(self, timestamp: float) -> str:
        """Return the window a time falls in: ``"total"``, ``"2026-11-24"`` or ``"2026-11"`` (in ``tz``)."""
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


@dataclass(frozen=True)
class BudgetLine:
    """The state of one budget scope, for summaries and reports."""

    label: str
    window: Window
    limit_usd: Decimal | None
    spent_usd: Decimal
    remaining_usd: Decimal | None
    max_tokens: int | None
    tokens: int
    strict: bool
    reserved_usd: Decimal = Decimal(0)
    """What strict reservations of calls in flight (or of crashed workers, until they expire) hold."""

    @property
    def exceeded(self) -> bool:
        """Whether the scope is spent (money or tokens)."""
        over_money = self.limit_usd is not None and self.spent_usd >= self.limit_usd
        over_tokens = self.max_tokens is not None and self.tokens >= self.max_tokens
        return over_money or over_tokens

    @property
    def fraction(self) -> float | None:
        """Spent over limit (for bars), or None without a money limit. Display only."""
        if not self.limit_usd:
            return None
        return float(self.spent_usd / self.limit_usd)


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
                )
            )
    return lines


# -- scope(**metadata) -------------------------------------------------------------------------------------
_NO_SCOPE: Mapping[str, Any] = MappingProxyType({})
_SCOPE: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar("tokencost_scope", default=_NO_SCOPE)


def current_scope() -> dict[str, Any]:
    """Return the metadata of the ``scope()`` blocks the caller is inside (inner keys win; tags add up)."""
    scope = _SCOPE.get()
    return dict(scope) if scope else {}  # dict() of the empty default (a MappingProxyType) is slow


@contextmanager
def scope(**metadata: Any) -> Iterator[dict[str, Any]]:
    """Attach metadata to every call made inside the block (also in threads and tasks started inside).

    ``user=`` and ``tags=`` are the usual keys; per-user and per-tag budgets read them before the call is sent,
    so this is how a plain synchronous ``litellm.completion`` is refused per user.

    Example::

        with tokencost.scope(user="alice", tags=["batch"]):
            litellm.completion(...)
    """
    outer = _SCOPE.get()
    merged = {**outer, **metadata}
    if "tags" in metadata:
        tags = metadata["tags"]
        if isinstance(tags, str) or not isinstance(tags, (list, tuple)):
            raise TypeError("tags must be a list of str")
        merged["tags"] = list(dict.fromkeys([*outer.get("tags", ()), *tags]))
    token = _SCOPE.set(merged)
    try:
        yield dict(merged)
    finally:
        _SCOPE.reset(token)


# -- budget(...) ------------------------------------------------------------------------------------------
_ACTIVE: contextvars.ContextVar[tuple[ScopedBudget, ...]] = contextvars.ContextVar("tokencost_budgets", default=())


def active_budgets() -> tuple[ScopedBudget, ...]:
    """Return the ``budget()`` blocks the caller is inside, outermost first."""
    return _ACTIVE.get()


@dataclass(eq=False)
class ScopedBudget:
    """A limit on the calls made inside a ``with`` block or decorated function. See ``budget()``."""

    max_cost_usd: Decimal | None
    max_tokens: int | None
    tracker: CostTracker | None = None
    _spent_units: int = 0
    _tokens: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _tokens_stack: list[contextvars.Token[tuple[ScopedBudget, ...]]] = field(default_factory=list, repr=False)

    @property
    def spent(self) -> Decimal:
        """What the calls inside have cost so far, in USD."""
        if self.tracker is not None:
            self.tracker._await_returned()
        return from_units(self._spent_units)

    @property
    def spent_units(self) -> int:
        """What the calls inside have cost so far, in pico-dollars (no waiting for calls still landing)."""
        return self._spent_units

    @property
    def tokens(self) -> int:
        """Tokens the calls inside have used."""
        return self._tokens

    @property
    def remaining(self) -> Decimal | None:
        """What is left of ``max_cost_usd`` (never negative), or None without a money limit."""
        if self.max_cost_usd is None:
            return None
        return max(Decimal(0), self.max_cost_usd - self.spent)

    @property
    def exceeded(self) -> bool:
        """Whether the block's money or token limit is spent."""
        over_money = self.max_cost_usd is not None and self._spent_units >= to_units(self.max_cost_usd)
        over_tokens = self.max_tokens is not None and self._tokens >= self.max_tokens
        return over_money or over_tokens

    def charge(self, cost_units: int | None, tokens: int) -> None:
        """Add a recorded call's cost and tokens (called by the tracker)."""
        with self._lock:
            self._spent_units += cost_units or 0
            self._tokens += tokens

    def check(self) -> None:
        """Raise ``BudgetExceededError`` when the block's limit is spent."""
        if self.exceeded:
            from tokencost.errors import BudgetExceededError  # imports litellm: only when refusing

            raise BudgetExceededError(
                self.max_cost_usd,
                from_units(self._spent_units),
                "budget()",
                max_tokens=self.max_tokens,
                tokens=self._tokens,
            )

    def __enter__(self) -> ScopedBudget:
        if self.tracker is None:
            from tokencost._litellm_glue import registered_tracker

            self.tracker = registered_tracker()
        self._tokens_stack.append(_ACTIVE.set((*_ACTIVE.get(), self)))
        return self

    def __exit__(self, *exc: object) -> None:
        _ACTIVE.reset(self._tokens_stack.pop())

    def __call__(self, func: _F) -> _F:
        """Decorate a function (sync or async): each call runs inside a fresh budget with the same limits."""
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with self._fresh():
                    return await func(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self._fresh():
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    def _fresh(self) -> ScopedBudget:
        return ScopedBudget(self.max_cost_usd, self.max_tokens, self.tracker)


def budget(
    max_cost_usd: Money | None = None, max_tokens: int | None = None, *, tracker: CostTracker | None = None
) -> ScopedBudget:
    """Limit what the calls made inside a block (or a decorated function) may spend.

    Counts only calls made inside (threads and tasks started inside count too, through contextvars). The call
    that crosses the limit completes; the next call inside is refused with ``BudgetExceededError``. Nested
    blocks all apply, so the tightest wins.

    Example::

        with tokencost.budget(max_cost_usd=0.50, max_tokens=20_000) as b:
            litellm.completion(...)
        print(b.spent, b.remaining)

    Args:
        max_cost_usd: USD limit (int, float, str or Decimal), or None.
        max_tokens: token limit, or None.
        tracker: the tracker to count with; None means the one ``CostTracker`` registered in litellm.

    Raises:
        ValueError: for a bad limit, or when ``tracker`` is None and not exactly one tracker is registered.
    """
    limit = parse_amount(max_cost_usd, "max_cost_usd")
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 0):
        raise ValueError(f"max_tokens must be a non-negative int, got {max_tokens!r}")
    if limit is None and max_tokens is None:
        raise ValueError("budget() needs max_cost_usd or max_tokens")
    return ScopedBudget(limit, max_tokens, tracker)

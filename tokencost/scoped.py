"""``budget(...)``: a limit on the calls made inside a ``with`` block or a decorated function (this process).

The blocks a call is inside are carried by a contextvar (``active_budgets()``), read in the caller's thread or task
before a call is sent and when it is set up, so they follow the call into threads and tasks started inside.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from tokencost.money import from_units, parse_amount, to_units

if TYPE_CHECKING:
    from tokencost.typing import Money

__all__ = ["ACTIVE_BUDGETS", "BlockTracker", "ScopedBudget", "active_budgets", "budget"]

_F = TypeVar("_F", bound=Callable[..., Any])


class _ReturnedCalls(Protocol):
    def await_returned(self) -> None: ...


class BlockTracker(Protocol):
    """What a ``budget()`` block uses of its tracker (a ``CostTracker``): its litellm calls, to wait for the ones
    that returned before it reports what was spent."""

    @property
    def calls(self) -> _ReturnedCalls: ...


@dataclass(eq=False)
class ScopedBudget:
    """A limit on the calls made inside a ``with`` block or decorated function. See ``budget()``."""

    max_cost_usd: Decimal | None
    max_tokens: int | None
    tracker: BlockTracker | None = None
    _spent_units: int = 0
    _tokens: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _tokens_stack: list[contextvars.Token[tuple[ScopedBudget, ...]]] = field(default_factory=list, repr=False)

    @property
    def spent(self) -> Decimal:
        """What the calls inside have cost so far, in USD."""
        if self.tracker is not None:
            self.tracker.calls.await_returned()
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
            from tokencost.registry import registered_tracker  # imports litellm: only when entering

            self.tracker = registered_tracker()
        self._tokens_stack.append(ACTIVE_BUDGETS.set((*ACTIVE_BUDGETS.get(), self)))
        return self

    def __exit__(self, *exc: object) -> None:
        ACTIVE_BUDGETS.reset(self._tokens_stack.pop())

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
    max_cost_usd: Money | None = None, max_tokens: int | None = None, *, tracker: BlockTracker | None = None
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


ACTIVE_BUDGETS: contextvars.ContextVar[tuple[ScopedBudget, ...]] = contextvars.ContextVar(
    "tokencost_budgets", default=()
)


def active_budgets() -> tuple[ScopedBudget, ...]:
    """Return the ``budget()`` blocks the caller is inside, outermost first."""
    return ACTIVE_BUDGETS.get()

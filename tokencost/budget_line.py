"""``BudgetLine``: the state of one budget scope (spent, left, held by reservations, its window), for summaries
and reports.

``budgets.budget_lines()`` builds them from a store's counters; they live apart from ``budgets`` so that a program
that never reads its budgets' state does not build their class at import.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tokencost.typing import Window

__all__ = ["BudgetLine"]


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
    per: str | None = None
    """The budget's ``per`` key (None: all calls together)."""
    value: str = "*"
    """The scope's value of ``per`` (``"alice"``), ``"*"`` without one."""
    window_start: float | None = None
    """When the current window began (epoch seconds); None for ``"total"``."""
    window_end: float | None = None
    """When the current window ends; None for ``"total"``."""

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

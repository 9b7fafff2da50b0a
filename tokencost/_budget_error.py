"""``BudgetExceededError``, apart from ``errors`` because it subclasses litellm's class (importing litellm)."""

from __future__ import annotations

from decimal import Decimal

import litellm

from tokencost.errors import TokencostError

__all__ = ["BudgetExceededError"]


class BudgetExceededError(TokencostError, litellm.BudgetExceededError):  # type: ignore[misc]
    """A budget is spent: the call was refused before any request was sent.

    Attributes:
        budget: the limit in USD (``None`` for a token-only limit).
        total_cost: what the scope has spent in USD (plus reservations, under a strict budget).
        scope: the scope's label, e.g. ``"total"`` or ``"user=alice, day"``.
        max_tokens: the token limit, when the refusal is about tokens.
        tokens: the tokens the scope has used.
    """

    def __init__(
        self,
        budget: Decimal | None,
        total_cost: Decimal,
        scope: str = "total",
        *,
        max_tokens: int | None = None,
        tokens: int | None = None,
    ) -> None:
        self.budget = budget
        self.total_cost = total_cost
        self.scope = scope
        self.max_tokens = max_tokens
        self.tokens = tokens
        if budget is not None and (max_tokens is None or tokens is None or tokens < max_tokens):
            spent = f"${_show(total_cost)} of ${_show(budget)}"
        else:
            spent = f"{tokens:,} of {max_tokens:,} tokens"
        message = f"budget '{scope}' spent: {spent}"
        # litellm's class builds its own message from floats; keep ours, and its attributes.
        litellm.BudgetExceededError.__init__(
            self, current_cost=float(total_cost), max_budget=float(budget or 0), message=message
        )
        self.message = message
        self.args = (message,)

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[object, ...]:
        return (
            _rebuild_budget_error,
            (self.budget, self.total_cost, self.scope, self.max_tokens, self.tokens),
        )


def _rebuild_budget_error(
    budget: Decimal | None, total_cost: Decimal, scope: str, max_tokens: int | None, tokens: int | None
) -> BudgetExceededError:
    return BudgetExceededError(budget, total_cost, scope, max_tokens=max_tokens, tokens=tokens)


def _show(amount: Decimal) -> str:
    """Show cents, or four decimals when the amount has more digits than cents."""
    return f"{amount:.2f}" if amount == amount.quantize(Decimal("0.01")) else f"{amount:.4f}"

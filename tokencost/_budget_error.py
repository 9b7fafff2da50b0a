"""``BudgetExceededError``, apart from ``errors`` because it subclasses litellm's class (importing litellm)."""

from __future__ import annotations

from decimal import Decimal

import litellm

from tokencost.error_base import TokencostError

__all__ = ["BudgetExceededError", "StoreUnavailableError"]


class BudgetExceededError(TokencostError, litellm.BudgetExceededError):  # type: ignore[misc]
    """A budget is spent: the call was refused before any request was sent.

    Attributes:
        budget: the limit in USD (``None`` for a token-only limit).
        total_cost: what the scope's recorded calls have spent in USD (reservations not included).
        scope: the scope's label, e.g. ``"total"`` or ``"user=alice, day"``.
        max_tokens: the token limit, when the refusal is about tokens.
        tokens: the tokens the scope has used.
        reserved: what strict reservations of calls in flight hold on the scope, in USD.
        detail: more on why, e.g. what this call would reserve and how ``max_tokens`` would make it fit.
        type: ``"budget_exceeded"``, the error type of litellm's own budget errors: litellm's proxy answers a
            refusal with it (and HTTP ``status_code``, litellm's ``budget_exceeded_status_code``, 422 by default).
    """

    # litellm's proxy answers an exception with its ``type`` and ``status_code``: a refusal then reads like the
    # proxy's own budget errors (``ProxyErrorTypes.budget_exceeded``), not like a malformed request.
    type: str = "budget_exceeded"

    def __init__(
        self,
        budget: Decimal | None,
        total_cost: Decimal,
        scope: str = "total",
        *,
        max_tokens: int | None = None,
        tokens: int | None = None,
        reserved: Decimal | None = None,
        detail: str | None = None,
    ) -> None:
        self.budget = budget
        self.total_cost = total_cost
        self.scope = scope
        self.max_tokens = max_tokens
        self.tokens = tokens
        self.reserved = reserved if reserved is not None else Decimal(0)
        self.detail = detail
        message = f"budget '{scope}' {self._state()}"
        if detail:
            message = f"{message}; {detail}"
        # litellm's class builds its own message from floats; keep ours, and its attributes.
        litellm.BudgetExceededError.__init__(
            self, current_cost=float(total_cost), max_budget=float(budget or 0), message=message
        )
        self.message = message
        self.args = (message,)

    def _state(self) -> str:
        """Say what the scope holds: spent (and reserved) of the money limit, or used of the token limit."""
        tokens_over = self.max_tokens is not None and self.tokens is not None and self.tokens >= self.max_tokens
        if self.budget is not None and not tokens_over:
            held = f" (+ ${_show(self.reserved)} reserved by calls in flight)" if self.reserved else ""
            return f"spent: ${_show(self.total_cost)}{held} of ${_show(self.budget)}"
        if self.max_tokens is not None:
            return f"spent: {self.tokens or 0:,} of {self.max_tokens:,} tokens"
        return f"refused (spent ${_show(self.total_cost)})"

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[object, ...]:
        return (
            _rebuild_budget_error,
            (self.budget, self.total_cost, self.scope, self.max_tokens, self.tokens, self.reserved, self.detail),
        )


def _rebuild_budget_error(
    budget: Decimal | None,
    total_cost: Decimal,
    scope: str,
    max_tokens: int | None,
    tokens: int | None,
    reserved: Decimal | None = None,
    detail: str | None = None,
) -> BudgetExceededError:
    return BudgetExceededError(
        budget, total_cost, scope, max_tokens=max_tokens, tokens=tokens, reserved=reserved, detail=detail
    )


class StoreUnavailableError(BudgetExceededError):
    """The call was refused because the ledger store could not be reached and ``on_store_error="refuse"``.

    ``except BudgetExceededError`` catches it too; ``scope`` is ``"store unavailable"`` and ``detail`` says why.
    """

    def __init__(self, detail: str, budget: Decimal | None = None) -> None:
        super().__init__(budget, Decimal(0), "store unavailable", detail=detail)

    def _state(self) -> str:
        return "cannot be checked: the store is unavailable and on_store_error='refuse'"

    def __reduce__(self) -> tuple[object, ...]:
        return (StoreUnavailableError, (self.detail or "", self.budget))


def _show(amount: Decimal) -> str:
    """Show cents, or up to six decimals when the amount has more digits than cents (``0.00225``, not ``0.0023``)."""
    if amount == amount.quantize(Decimal("0.01")):
        return f"{amount:.2f}"
    return f"{amount:.6f}".rstrip("0")

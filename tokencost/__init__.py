"""tokencost: exact cost tracking and hard budgets for every LLM call made through litellm.

Example::

    import litellm
    from tokencost import CostTracker

    tracker = CostTracker(budget=5)
    litellm.callbacks = [tracker]
"""

from __future__ import annotations

from tokencost.budgets import Budget, BudgetLine, ScopedBudget, budget, scope
from tokencost.errors import (
    BudgetExceededError,
    MissingExtraError,
    PriceNotFoundError,
    StoreError,
    TokencostError,
)
from tokencost.events import Event
from tokencost.pricing import Price
from tokencost.pricing.override import register_price
from tokencost.tracker import CostTracker
from tokencost.usage import Usage

__all__ = [
    "Budget",
    "BudgetExceededError",
    "BudgetLine",
    "CostTracker",
    "Event",
    "MissingExtraError",
    "Price",
    "PriceNotFoundError",
    "ScopedBudget",
    "StoreError",
    "TokencostError",
    "Usage",
    "budget",
    "register_price",
    "scope",
]

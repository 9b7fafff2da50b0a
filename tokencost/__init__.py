"""tokencost: exact cost tracking and hard budgets for every LLM call made through litellm.

Example::

    import litellm
    from tokencost import CostTracker

    tracker = CostTracker(budget=5)
    litellm.callbacks = [tracker]

Type aliases for annotating code that uses the API (``Money``, ``Window``, ``Per``...) are in ``tokencost.typing``.

Names are imported on first use, so ``import tokencost`` (and the ``tokencost`` command's start) does not pay
for litellm until a name that needs it is touched.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tokencost.budget_line import BudgetLine
    from tokencost.budgets import Budget, ScopedBudget, budget, scope
    from tokencost.errors import (
        BudgetExceededError,
        MissingExtraError,
        PriceNotFoundError,
        StoreError,
        StoreUnavailableError,
        TokencostError,
    )
    from tokencost.events import Event
    from tokencost.extractors import register_usage_extractor
    from tokencost.pricing import Price
    from tokencost.pricing.override import register_price
    from tokencost.reports import Summary
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
    "StoreUnavailableError",
    "Summary",
    "TokencostError",
    "Usage",
    "budget",
    "register_price",
    "register_usage_extractor",
    "scope",
]

# Where each public name lives.
_HOMES = {
    "Budget": "tokencost.budgets",
    "BudgetExceededError": "tokencost.errors",
    "BudgetLine": "tokencost.budget_line",
    "CostTracker": "tokencost.tracker",
    "Event": "tokencost.events",
    "MissingExtraError": "tokencost.errors",
    "Price": "tokencost.pricing",
    "PriceNotFoundError": "tokencost.errors",
    "ScopedBudget": "tokencost.budgets",
    "StoreError": "tokencost.errors",
    "StoreUnavailableError": "tokencost.errors",
    "Summary": "tokencost.reports",
    "TokencostError": "tokencost.errors",
    "Usage": "tokencost.usage",
    "budget": "tokencost.budgets",
    "register_price": "tokencost.pricing.override",
    "register_usage_extractor": "tokencost.extractors",
    "scope": "tokencost.budgets",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'tokencost' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])

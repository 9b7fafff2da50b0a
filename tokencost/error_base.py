"""``TokencostError``, the base of every error tokencost raises (``tokencost.errors`` draws the whole tree).

Apart so that the module defining ``BudgetExceededError`` (which imports litellm, and so is loaded on first use)
and ``tokencost.errors`` both build on it without importing each other.
"""

from __future__ import annotations

__all__ = ["TokencostError"]


class TokencostError(Exception):
    """Base class of every error tokencost raises."""

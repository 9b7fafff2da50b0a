"""Errors tokencost raises.

::

    TokencostError
    ├── BudgetExceededError   (also litellm.BudgetExceededError, so litellm and its Router let it through)
    │   └── StoreUnavailableError (the store could not be checked and on_store_error="refuse")
    ├── StoreError            (a ledger store failed; wraps the backend's exception)
    ├── PriceNotFoundError    (no source prices a model, raised only where a price is required)
    ├── MissingExtraError     (an optional dependency is not installed; names the extra)
    ├── LinkupError           (a Linkup price search failed; tokencost.pricing.linkup, never raised into calls)
    └── PriceValidationError  (a discovered price failed the checks; tokencost.pricing.linkup)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tokencost.error_base import TokencostError

if TYPE_CHECKING:
    from tokencost._budget_error import BudgetExceededError, StoreUnavailableError

__all__ = [
    "BudgetExceededError",
    "MissingExtraError",
    "PriceNotFoundError",
    "StoreError",
    "StoreUnavailableError",
    "TokencostError",
]


class StoreError(TokencostError):
    """A ledger store failed (unreachable, locked, corrupt); the backend's exception is the cause."""


class PriceNotFoundError(TokencostError, LookupError):
    """No price source knows the model."""

    def __init__(self, model: str, provider: str | None = None) -> None:
        self.model = model
        self.provider = provider
        where = f" (provider {provider})" if provider else ""
        super().__init__(f"no price known for model {model!r}{where}")


def install_hint(extra: str) -> str:
    """Return the install line of an extra that works from this repository (the distribution is tokencost-ledger)."""
    return f"pip install -e '.[{extra}]' in a tokencost checkout (the distribution tokencost-ledger[{extra}])"


class MissingExtraError(TokencostError, ImportError):
    """An optional dependency is missing; the message says which extra installs it."""

    def __init__(self, extra: str, module: str) -> None:
        self.extra = extra
        super().__init__(f"{module} is not installed: {install_hint(extra)}")


def __getattr__(name: str) -> Any:
    # BudgetExceededError subclasses litellm's class, so defining it imports litellm (seconds): only on first use,
    # so reading a ledger (the CLI, the server) does not pay for it.
    if name in ("BudgetExceededError", "StoreUnavailableError"):
        from tokencost import _budget_error

        return getattr(_budget_error, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

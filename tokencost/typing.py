"""The types of tokencost's public API, for annotating code that uses it.

Example::

    from tokencost import Budget
    from tokencost.typing import Money, Window

    def daily(limit: Money, window: Window = "day") -> Budget:
        return Budget(limit_usd=limit, window=window, per="user")

* ``Money``: what the API accepts as a USD amount (``Decimal``, ``int``, ``float`` or numeric ``str``; never
  ``bool``). Amounts the API returns are always ``Decimal``.
* ``Window``: the window a ``Budget`` resets on: ``"total"`` (never), ``"day"`` or ``"month"`` (calendar
  boundaries in the budget's ``tz``).
* ``ReportWindow``: the current window a summary covers: ``"day"`` or ``"month"`` (UTC); ``None`` means all time.
* ``Per``: what a ``Budget`` keeps one limit for: ``"model"``, ``"user"``, ``"tag"`` (each tag its own scope) or any
  metadata key (``"team"``, ``"endpoint"``...). Any non-empty text without ``|``, so it is a plain ``str``;
  ``None`` (not a ``Per``) means all calls together.
* ``OnStoreError``: what ``CostTracker(on_store_error=...)`` does while the store cannot be checked.
* ``Unpriced``: what a ``Budget`` does with a call no price source knows.
* ``PriceSource``: the protocol a price source implements (``name`` and ``lookup(model, provider)``); see
  ``tokencost.pricing``.

Importing this module loads no other tokencost module (``PriceSource`` is loaded on first use), so any module
of the package can use these aliases at runtime without an import cycle.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from tokencost.money import Money

if TYPE_CHECKING:
    from tokencost.pricing import PriceSource

__all__ = ["Money", "OnStoreError", "Per", "PriceSource", "ReportWindow", "Unpriced", "Window"]

# Money (re-exported from tokencost.money, so that low layers use it without importing this module): a USD amount
# the API accepts: Decimal, int, float (read through str, so 0.1 stays 0.1) or text.

Window: TypeAlias = Literal["total", "day", "month"]
"""The window a ``Budget`` resets on."""

ReportWindow: TypeAlias = Literal["day", "month"]
"""The current calendar window (UTC) a summary covers; ``None`` in its place means all time."""

Per: TypeAlias = str
"""``"model"``, ``"user"``, ``"tag"`` or any metadata key: a ``Budget`` keeps one limit per value of it."""

OnStoreError: TypeAlias = Literal["allow", "refuse"]
"""``"allow"`` lets calls through while the store cannot be checked; ``"refuse"`` raises ``StoreUnavailableError``."""

Unpriced: TypeAlias = Literal["refuse", "allow"]
"""What a ``Budget`` with a money limit does with a call whose cost cannot be known."""


def __getattr__(name: str) -> Any:
    # PriceSource lives in tokencost.pricing; loaded on first use so this module imports nothing of tokencost.
    if name == "PriceSource":
        value = importlib.import_module("tokencost.pricing").PriceSource
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tokencost.typing' has no attribute {name!r}")

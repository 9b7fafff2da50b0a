"""Ledger stores, chosen by URL: ``memory://``, ``sqlite:///path/costs.db``, ``redis://host:6379/0``."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tokencost.stores.base import Check, Group, Store, Totals, plausible_event

if TYPE_CHECKING:
    from tokencost.stores.reservation import Reservation

__all__ = ["Check", "Group", "Reservation", "Store", "Totals", "plausible_event", "store_from_url"]

# scheme -> (module, class). Modules are imported only when their scheme is used.
SCHEMES: dict[str, tuple[str, str]] = {
    "memory": ("tokencost.stores.memory", "MemoryStore"),
    "sqlite": ("tokencost.stores.sqlite", "SQLiteStore"),
    "redis": ("tokencost.stores.redis", "RedisStore"),
    "rediss": ("tokencost.stores.redis", "RedisStore"),
}


def store_from_url(url: str, **options: Any) -> Store:
    """Build the store a URL names; ``options`` go to its class.

    Every store takes ``timeout`` (seconds one round trip may take before ``StoreError``: Redis socket timeouts,
    SQLite's wait for a lock; ``None``: the store's default) and ``clock`` (seconds since the epoch, for
    reservation times; default ``time.time``; Redis uses its server's clock unless one is given).

    Example::

        store = store_from_url("sqlite:///var/lib/app/costs.db", timeout=2.0)

    Raises:
        TypeError: for a URL that is not a str.
        ValueError: for an unknown scheme or a malformed URL.
        MissingExtraError: when the backend's optional dependency is not installed.
    """
    if not isinstance(url, str):
        raise TypeError(f"store must be a URL string, not {type(url).__name__}")
    scheme, sep, _ = url.partition("://")
    if not sep or scheme not in SCHEMES:
        known = ", ".join(f"{s}://" for s in SCHEMES)
        raise ValueError(f"unknown store URL {url!r}: expected one of {known}")
    module_name, class_name = SCHEMES[scheme]
    cls: type[Store] = getattr(importlib.import_module(module_name), class_name)
    return cls(url, **options)


def __getattr__(name: str) -> Any:
    # Reservation is built on first use (only listing reservations needs it).
    if name == "Reservation":
        from tokencost.stores.reservation import Reservation

        globals()[name] = Reservation
        return Reservation
    raise AttributeError(f"module 'tokencost.stores' has no attribute {name!r}")

"""Local price overrides: ``register_price()`` for the process, and a tracker's ``prices=`` file or mapping."""

from __future__ import annotations

import json
import sys
import threading
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokencost.pricing._price import Price

if TYPE_CHECKING:
    from tokencost.money import Money

__all__ = ["OverrideSource", "load_prices", "register_price"]

_FIELDS = (
    "input_per_mtok",
    "output_per_mtok",
    "cache_read_per_mtok",
    "cache_write_per_mtok",
    "reasoning_per_mtok",
)

# Guards _REGISTERED, _version and _watchers: prices registered for the whole process.
_lock = threading.Lock()
_REGISTERED: dict[str, Price] = {}
_version = 0
_watchers: weakref.WeakSet[Any] = weakref.WeakSet()  # price caches told to forget after each registration


def register_price(
    model: str,
    *,
    input_per_mtok: Money,
    output_per_mtok: Money,
    cache_read_per_mtok: Money | None = None,
    cache_write_per_mtok: Money | None = None,
    reasoning_per_mtok: Money | None = None,
) -> Price:
    """Set the price of ``model`` for every tracker in this process (it wins over litellm's map).

    Prices are USD per million tokens. ``model`` may carry a provider prefix (``"acme/large-2"``).

    Example::

        register_price("acme-large-2", input_per_mtok=4, output_per_mtok=12, cache_read_per_mtok="0.4")

    Raises:
        TypeError, ValueError: for a model that is not a non-empty string or a price that is not a
            non-negative number.
    """
    global _version
    if not isinstance(model, str) or not model:
        raise TypeError("model must be a non-empty str")
    price = Price.per_mtok(
        input_per_mtok,
        output_per_mtok,
        cache_read=cache_read_per_mtok,
        cache_write=cache_write_per_mtok,
        reasoning=reasoning_per_mtok,
        source="override",
    )
    with _lock:
        _REGISTERED[model] = price
        _version += 1
        watchers = list(_watchers)
    for cache in watchers:
        cache.forget()
    return price


def registered_prices() -> dict[str, Price]:
    """Return a copy of the prices ``register_price`` holds for this process, by model."""
    with _lock:
        return dict(_REGISTERED)


def registered_version() -> int:
    """Return a counter that changes whenever ``register_price`` is called (for price caches)."""
    return _version


def watch_registrations(cache: Any) -> None:
    """Call ``cache.forget()`` after every ``register_price`` from now on (``cache`` is held weakly)."""
    with _lock:
        _watchers.add(cache)


def _price_from_entry(entry: object, model: str, origin: str) -> Price:
    if not isinstance(entry, Mapping):
        raise ValueError(f"{origin}: price of {model!r} must be a table of *_per_mtok numbers")
    unknown = sorted(set(entry) - set(_FIELDS))
    if unknown:
        raise ValueError(f"{origin}: price of {model!r} has unknown field(s) {', '.join(map(str, unknown))}")
    if "input_per_mtok" not in entry or "output_per_mtok" not in entry:
        raise ValueError(f"{origin}: price of {model!r} needs input_per_mtok and output_per_mtok")
    try:
        return Price.per_mtok(
            entry["input_per_mtok"],
            entry["output_per_mtok"],
            cache_read=entry.get("cache_read_per_mtok"),
            cache_write=entry.get("cache_write_per_mtok"),
            reasoning=entry.get("reasoning_per_mtok"),
            source="override",
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{origin}: price of {model!r}: {exc}") from None


def load_prices(prices: str | Path | Mapping[str, Any]) -> dict[str, Price]:
    """Read a ``prices=`` argument: a path to a TOML or JSON file, or a mapping ``model -> {*_per_mtok}``.

    Raises:
        ValueError: naming the file and the model when an entry is wrong, or when the file cannot be read.
        TypeError: for an argument that is neither a path nor a mapping.
    """
    if isinstance(prices, Mapping):
        origin = "prices mapping"
        data: Any = prices
    elif isinstance(prices, (str, Path)):
        path = Path(prices)
        origin = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"{origin}: cannot read price file: {exc.strerror}") from None
        try:
            if path.suffix.lower() == ".json":
                data = json.loads(text)
            else:
                if sys.version_info >= (3, 11):
                    import tomllib
                else:  # pragma: no cover - exercised on Python 3.10 only
                    import tomli as tomllib
                data = tomllib.loads(text)
        except ValueError as exc:
            raise ValueError(f"{origin}: not a valid price file: {exc}") from None
    else:
        raise TypeError(f"prices must be a path or a mapping, not {type(prices).__name__}")
    if not isinstance(data, Mapping):
        raise ValueError(f"{origin}: expected a table of models")
    return {str(model): _price_from_entry(entry, str(model), origin) for model, entry in data.items()}


def _candidates(model: str, provider: str | None) -> list[str]:
    names = [model]
    if provider and not model.startswith(provider + "/"):
        names.append(f"{provider}/{model}")
    if "/" in model:
        names.append(model.split("/", 1)[1])
    return names


class OverrideSource:
    """Prices given by the user: the tracker's own ``prices=`` first, then ``register_price()``."""

    name = "override"

    def __init__(self, prices: Mapping[str, Price] | None = None) -> None:
        self._prices = dict(prices or {})

    def lookup(self, model: str, provider: str | None) -> Price | None:
        """Return the override price of ``model``, or ``None``."""
        for name in _candidates(model, provider):
            price = self._prices.get(name) or _REGISTERED.get(name)
            if price is not None:
                return price
        return None

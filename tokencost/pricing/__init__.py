"""Prices and the pricing chain: the first source that knows a model wins, and the price says which it was.

Sources, in order: the local override (``register_price``, ``prices=``), litellm's bundled map, pydantic's
genai-prices (``genai_prices``: dated prices, at the call's time), Linkup price discovery (cached files, then a
web search in the background). A source is any object with a ``name`` and
``lookup(model, provider) -> Price | None``; see ``PriceSource``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from tokencost.pricing._price import Price
from tokencost.pricing.override import registered_version, watch_registrations

__all__ = ["Price", "PriceChain", "PriceListener", "PriceSource"]

# listener(model, provider, price, reason): a price found after the fact (reason None), or a lookup that ended
# without one (price None, reason says why).
PriceListener = Callable[[str, "str | None", "Price | None", "str | None"], None]


@runtime_checkable
class PriceSource(Protocol):
    """A place prices come from.

    Optional members a source may have:

    * ``cacheable = False``: the chain asks it again on every lookup (its answers may change, e.g. files a
      person edits); by default the chain remembers each answer.
    * ``is_pending(model, provider) -> bool``: a price is being looked up and will be announced later.
    * ``lookup_at(model, provider, when) -> Price | None``: the price at ``when`` (epoch seconds), for a call
      made at a given time (``track(timestamp=...)``); without it, ``lookup`` answers for every time.
    * ``set_listener(fn)``: the chain passes ``fn(model, provider, price, reason)``; the source calls it when a
      pending lookup ends: with the price found (``reason`` None), or with ``price`` None and the reason.
    """

    name: str

    def lookup(self, model: str, provider: str | None) -> Price | None:
        """Return the price of ``model`` or ``None`` when this source does not know it."""
        ...


_MISS = object()


class PriceChain:
    """Ask sources in order; remember what cacheable sources said."""

    def __init__(self, sources: Sequence[PriceSource]) -> None:
        self.sources = tuple(sources)
        # Guards _cache: answers of cacheable sources, forgotten when a price is registered.
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str | None], Price | None] = {}
        watch_registrations(self)
        self._listeners: list[PriceListener] = []
        for source in self.sources:
            set_listener = getattr(source, "set_listener", None)
            if callable(set_listener):
                set_listener(self._announce)

    def add_listener(self, listener: PriceListener) -> None:
        """Call ``listener(model, provider, price, reason)`` when a pending lookup ends."""
        self._listeners.append(listener)

    def _announce(self, model: str, provider: str | None, price: Price | None, reason: str | None) -> None:
        with self._lock:
            self._cache.pop((model, provider), None)
        for listener in list(self._listeners):
            listener(model, provider, price, reason)

    def forget(self) -> None:
        """Drop every remembered answer (a price was registered)."""
        with self._lock:
            self._cache.clear()

    def lookup(self, model: str, provider: str | None = None, at: float | None = None) -> Price | None:
        """Return the first price a source knows for ``model`` (at the time ``at``, epoch seconds; default now:
        a source with ``lookup_at`` is asked for the price at that time), or ``None``.

        Only answers of cacheable sources are remembered; a dated source is not cacheable, so a remembered
        answer holds at any time.
        """
        key = (model, provider)
        cached = self._cache.get(key, _MISS)
        if cached is not _MISS:
            return cached  # type: ignore[return-value]
        version = registered_version()
        cacheable = True
        price: Price | None = None
        for source in self.sources:
            lookup_at = None if at is None else getattr(source, "lookup_at", None)
            price = source.lookup(model, provider) if lookup_at is None else lookup_at(model, provider, at)
            if price is not None:
                cacheable = cacheable and getattr(source, "cacheable", True)
                break
            cacheable = cacheable and getattr(source, "cacheable", True)
        if cacheable:
            with self._lock:
                # Not an answer from before a registration that forget() has just dropped.
                if registered_version() == version:
                    self._cache[key] = price
        return price

    def is_pending(self, model: str, provider: str | None = None) -> bool:
        """Return whether a source is still looking ``model`` up (the event is then repriced later)."""
        for source in self.sources:
            is_pending = getattr(source, "is_pending", None)
            if callable(is_pending) and is_pending(model, provider):
                return True
        return False

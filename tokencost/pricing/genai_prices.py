"""Prices from pydantic's ``genai-prices`` (Decimal, dated, maintained): the source after litellm's map.

It prices the models litellm's map does not carry (``claude-sonnet-4-20250514``, ``gpt-4-32k``,
``groq/llama-3.3-70b-versatile``, ...) at the price that applied at the call's own time: genai-prices dates its
price changes, and a lookup reads the price active at the tracker's clock (``lookup_at`` takes any time).

``genai_prices`` is imported on the first lookup; without it (or when it fails) the source knows no model.
A model whose genai-prices entry tokencost cannot express exactly (a per-request fee on every call, several
price tiers, prices per hour or per page) is not priced here: it is left to the next source, or unpriced.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from tokencost.pricing._price import Price

__all__ = ["GenaiPricesSource"]

_MILLION = Decimal(1_000_000)
# genai-prices price key (USD per million tokens) -> tokencost bucket.
_BUCKETS = {
    "input_mtok": "input",
    "output_mtok": "output",
    "cache_read_mtok": "cache_read",
    "cache_write_mtok": "cache_write",
    "output_reasoning_mtok": "reasoning",
    "input_audio_mtok": "audio_in",
    "output_audio_mtok": "audio_out",
    "input_image_mtok": "image",
    "cache_write_1h_mtok": "cache_write_1h",
    "cache_audio_read_mtok": "cache_read_audio",
}
_PRICE_FIELDS = frozenset(f.name for f in dataclasses.fields(Price) if f.init)
# Prices of things a call is billed for only when it uses them, and tokencost does not count (yet): a call that
# does not use them is priced exactly without them.
_ONLY_WHEN_USED = frozenset({"web_searches_kcount", "storage_searches_kcount"})
# litellm's provider names -> genai-prices provider ids (where they differ, or the name is not the id).
_PROVIDER_IDS = {
    "gemini": "google",
    "vertex_ai": "google",
    "vertex_ai_beta": "google",
    "google": "google",
    "bedrock": "aws",
    "bedrock_converse": "aws",
    "azure": "azure",
    "azure_ai": "azure",
    "xai": "x-ai",
    "together_ai": "together",
    "fireworks_ai": "fireworks",
    "cohere_chat": "cohere",
    "mistral": "mistral",
}


def _provider_id(provider: str | None) -> str | None:
    if not provider:
        return None
    provider = provider.lower()
    return _PROVIDER_IDS.get(provider, provider)


def price_from_model_price(model_price: Any, source_url: str | None = None) -> Price | None:
    """Build a ``Price`` from a genai-prices ``ModelPrice``; None when tokencost cannot express it exactly."""
    from genai_prices.types import TieredPrices

    values: dict[str, Decimal | None] = {}
    above: dict[str, Decimal] = {}
    starts: set[int] = set()
    for key, value in vars(model_price).items():
        if value is None or key.startswith("_"):
            continue
        bucket = _BUCKETS.get(key)
        if bucket is not None and bucket not in _PRICE_FIELDS:
            continue  # a bucket this version of Price has not (its tokens are billed like their parent's)
        if bucket is None:
            if key in _ONLY_WHEN_USED:
                continue
            return None  # billed per request, hour, page or character on every call: not a token price
        if isinstance(value, TieredPrices):
            if len(value.tiers) != 1:
                return None
            starts.add(value.tiers[0].start)
            values[bucket] = Decimal(value.base) / _MILLION
            above[bucket] = Decimal(value.tiers[0].price) / _MILLION
        elif isinstance(value, Decimal):
            values[bucket] = value / _MILLION
        else:
            return None
    if values.get("input") is None or values.get("output") is None or len(starts) > 1:
        return None
    base = _price(values, source_url)
    if not starts:
        return base
    above_tier = _price({**values, **above}, source_url)
    return dataclasses.replace(base, tier_above_tokens=starts.pop(), above_tier=above_tier)


def _price(values: dict[str, Decimal | None], source_url: str | None) -> Price:
    buckets: dict[str, Any] = {bucket: value for bucket, value in values.items() if value is not None}
    return Price(**buckets, source="genai-prices", source_url=source_url)


class GenaiPricesSource:
    """pydantic's genai-prices, priced at the call's time (the tracker's clock, or ``lookup_at``'s ``when``)."""

    name = "genai-prices"
    # Its prices are dated: the chain asks it on every lookup (it remembers the prices it built itself).
    cacheable = False

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self._clock = clock or time.time
        self._lock = threading.Lock()  # guards _built
        # (model, provider) -> (the ModelPrice it was built from, kept alive so its id is not reused; the Price)
        self._built: dict[tuple[str, str | None, int], tuple[Any, Price | None]] = {}
        self._failed = False

    def lookup(self, model: str, provider: str | None) -> Price | None:
        """Return genai-prices' price of ``model`` at the tracker's clock, or None when it does not know it."""
        return self.lookup_at(model, provider, self._clock())

    def lookup_at(self, model: str, provider: str | None, when: float) -> Price | None:
        """Return genai-prices' price of ``model`` at ``when`` (seconds since the epoch), or None."""
        if self._failed:
            return None
        try:
            from genai_prices import data_snapshot
        except ImportError:
            self._failed = True
            return None
        at = dt.datetime.fromtimestamp(when, tz=dt.timezone.utc)
        found = _find(data_snapshot.get_snapshot(), model, provider)
        if found is None:
            return None
        genai_provider, info = found
        model_price = info.get_prices(at)
        key = (model, provider, id(model_price))
        with self._lock:
            built = self._built.get(key)
        if built is not None:
            return built[1]
        urls = getattr(genai_provider, "pricing_urls", None)
        price = price_from_model_price(model_price, urls[0] if urls else None)
        with self._lock:
            if len(self._built) > 10_000:
                self._built.clear()
            self._built[key] = (model_price, price)
        return price


def _find(snapshot: Any, model: str, provider: str | None) -> tuple[Any, Any] | None:
    """The genai-prices (provider, model) of a litellm model name, or None.

    A provider genai-prices knows is asked alone (another provider's price is not this call's); an unknown one
    (or none) lets genai-prices find the provider from the model name.
    """
    names = [model]
    if "/" in model:
        prefix, rest = model.split("/", 1)
        names.append(rest)
        provider = provider if provider and provider != "unknown" else prefix
    provider_id = _provider_id(provider)
    if provider_id is not None:
        try:
            snapshot.find_provider(None, provider_id, None)
        except LookupError:
            provider_id = None
    for name in names:
        try:
            found = snapshot.find_provider_model(name, None, provider_id, None)
        except LookupError:
            continue
        return found[0], found[1]
    return None

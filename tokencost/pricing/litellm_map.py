"""Prices from litellm's bundled cost map (``litellm.model_cost``), turned into ``Decimal`` through ``str``."""

from __future__ import annotations

import re
from dataclasses import replace
from decimal import Decimal
from typing import Any

import litellm

from tokencost.pricing._price import Price

__all__ = ["LitellmMapSource"]

_FIELDS = {
    "input": "input_cost_per_token",
    "output": "output_cost_per_token",
    "cache_read": "cache_read_input_token_cost",
    "cache_write": "cache_creation_input_token_cost",
    "reasoning": "output_cost_per_reasoning_token",
    "audio_in": "input_cost_per_audio_token",
    "audio_out": "output_cost_per_audio_token",
    "image": "input_cost_per_image_token",
    "cache_write_1h": "cache_creation_input_token_cost_above_1hr",
    "cache_read_audio": "cache_read_input_audio_token_cost",
}
# As text: ``re`` compiles it on first use and keeps it (compiling it at import slowed every import).
_TIER = r"^input_cost_per_token_above_(\d+)k_tokens$"
# Service tiers and the suffix of their keys in litellm's map (``input_cost_per_token_flex``...).
_SERVICE_TIERS = {"flex": "_flex", "priority": "_priority", "batch": "_batches"}
# litellm's default web search context size (what it bills a search at when the request does not say).
_SEARCH_SIZE = "search_context_size_medium"
# Providers that bill cache reads at a share of the input price when the map gives no cache-read price:
# Fireworks serverless bills cached prompt tokens at 50% of the input price (fireworks.ai/docs, prompt caching;
# litellm's FIREWORKS_AI_DEFAULT_CACHE_READ_RATE_RATIO).
_DEFAULT_CACHE_READ_SHARE = {"fireworks_ai": Decimal("0.5")}


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    amount = Decimal(str(value))
    return amount if amount.is_finite() and amount >= 0 else None


def price_from_entry(info: dict[str, Any]) -> Price | None:
    """Build a ``Price`` from one entry of litellm's map, or ``None`` when it has no per-token input price.

    A model with one long-context tier (``*_above_200k_tokens``) gets that tier's prices as ``above_tier``;
    several tiers are left to litellm's own ``response_cost``. Service tiers (``*_flex``, ``*_priority``,
    ``*_batches``) become ``service_tiers``; Anthropic's regional multipliers (``provider_specific_entry``'s
    ``"us": 1.1``) and Vertex AI's regional endpoint uplift (``"*"``: any non-global location)
    ``geo_multipliers``; the medium ``search_context_cost_per_query`` the web search price. A
    model with off-peak hours is marked ``unmodeled`` (litellm prices its calls).
    """
    base = _price_for(info, "")
    if base is None:
        return None
    tiers = []
    for name, suffix in _SERVICE_TIERS.items():
        variant = _price_for(info, suffix)
        if variant is not None:
            tiers.append((name, variant))
    geos = []
    specific = info.get("provider_specific_entry")
    if isinstance(specific, dict):
        for geo, value in specific.items():
            multiplier = _decimal(value)
            if geo in ("us", "eu") and multiplier is not None:  # geographies, not other provider flags
                geos.append((geo, multiplier))
    uplift = _decimal(info.get("regional_endpoint_uplift_multiplier"))
    if uplift is not None:
        geos.append(("*", uplift))  # Vertex AI: every non-global endpoint (litellm's vertex_location uplift)
    unmodeled = "off-peak pricing by time of day" if isinstance(info.get("off_peak_pricing"), dict) else None
    return replace(base, service_tiers=tuple(sorted(tiers)), geo_multipliers=tuple(sorted(geos)), unmodeled=unmodeled)


def _price_for(info: dict[str, Any], suffix: str) -> Price | None:
    """The price of the tier whose keys end in ``suffix`` (``""``: the standard tier), or ``None`` when the map
    has no input price for it. A tier's bucket without a key of its own is billed at the standard price."""
    values = {bucket: _tiered(info, key, suffix) for bucket, key in _FIELDS.items()}
    if values["input"] is None or (suffix and _decimal(info.get("input_cost_per_token" + suffix)) is None):
        return None
    share = _DEFAULT_CACHE_READ_SHARE.get(str(info.get("litellm_provider")))
    if share is not None and values["cache_read"] is None:
        values["cache_read"] = values["input"] * share
    source_url = info.get("source") if isinstance(info.get("source"), str) else None
    search = info.get("search_context_cost_per_query")
    web_search = _decimal(search.get(_SEARCH_SIZE)) if isinstance(search, dict) else None
    tier_key = re.compile(_TIER)
    tiers = sorted({int(m.group(1)) for key in info if (m := tier_key.match(key))})
    above_tier = None
    if len(tiers) == 1:
        above = f"_above_{tiers[0]}k_tokens"
        tier = {bucket: _tiered(info, key + above, suffix) for bucket, key in _FIELDS.items()}
        merged = {bucket: tier[bucket] if tier[bucket] is not None else values[bucket] for bucket in _FIELDS}
        above_tier = _price(merged, source_url, web_search)
    base = _price(values, source_url, web_search)
    if not tiers:
        return base
    return replace(base, tier_above_tokens=tiers[0] * 1000, above_tier=above_tier)


def _tiered(info: dict[str, Any], key: str, suffix: str) -> Decimal | None:
    """The value of ``key`` in the tier of ``suffix``, else in the standard tier."""
    if suffix:
        value = _decimal(info.get(key + suffix))
        if value is not None:
            return value
    return _decimal(info.get(key))


def _price(values: dict[str, Decimal | None], source_url: str | None, web_search: Decimal | None) -> Price:
    return Price(
        input=values["input"] or Decimal(0),
        output=values["output"] or Decimal(0),
        cache_read=values["cache_read"],
        cache_write=values["cache_write"],
        reasoning=values["reasoning"],
        audio_in=values["audio_in"],
        audio_out=values["audio_out"],
        image=values["image"],
        cache_write_1h=values["cache_write_1h"],
        cache_read_audio=values["cache_read_audio"],
        web_search=web_search,
        source="litellm",
        source_url=source_url,
    )


def model_info(model: str, provider: str | None) -> dict[str, Any] | None:
    """Return litellm's map entry for ``model`` (trying ``provider/model`` and the bare name), or ``None``."""
    cost_map: dict[str, Any] = litellm.model_cost
    names = [model]
    if provider:
        names.insert(0, f"{provider}/{model}")
    if "/" in model:
        names.append(model.split("/", 1)[1])
    for name in names:
        info = cost_map.get(name)
        if isinstance(info, dict):
            return info
    return None


class LitellmMapSource:
    """litellm's bundled cost map."""

    name = "litellm"

    def lookup(self, model: str, provider: str | None) -> Price | None:
        """Return litellm's price for ``model``, or ``None`` when the map has no per-token price for it."""
        info = model_info(model, provider)
        return None if info is None else price_from_entry(info)

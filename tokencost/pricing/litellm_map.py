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
}
_TIER = re.compile(r"^input_cost_per_token_above_(\d+)k_tokens$")


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    amount = Decimal(str(value))
    return amount if amount.is_finite() and amount >= 0 else None


def price_from_entry(info: dict[str, Any]) -> Price | None:
    """Build a ``Price`` from one entry of litellm's map, or ``None`` when it has no per-token input price.

    A model with one long-context tier (``*_above_200k_tokens``) gets that tier's prices as ``above_tier``;
    several tiers are left to litellm's own ``response_cost``.
    """
    values = {bucket: _decimal(info.get(key)) for bucket, key in _FIELDS.items()}
    if values["input"] is None:
        return None
    source_url = info.get("source") if isinstance(info.get("source"), str) else None
    tiers = sorted({int(m.group(1)) for key in info if (m := _TIER.match(key))})
    above_tier = None
    if len(tiers) == 1:
        suffix = f"_above_{tiers[0]}k_tokens"
        tier = {bucket: _decimal(info.get(key + suffix)) for bucket, key in _FIELDS.items()}
        merged = {bucket: tier[bucket] if tier[bucket] is not None else values[bucket] for bucket in _FIELDS}
        above_tier = _price(merged, source_url)
    base = _price(values, source_url)
    if not tiers:
        return base
    return replace(base, tier_above_tokens=tiers[0] * 1000, above_tier=above_tier)


def _price(values: dict[str, Decimal | None], source_url: str | None) -> Price:
    return Price(
        input=values["input"] or Decimal(0),
        output=values["output"] or Decimal(0),
        cache_read=values["cache_read"],
        cache_write=values["cache_write"],
        reasoning=values["reasoning"],
        audio_in=values["audio_in"],
        audio_out=values["audio_out"],
        image=values["image"],
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

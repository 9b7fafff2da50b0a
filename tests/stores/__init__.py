"""Ledger store tests: one contract suite over every backend, then each backend's own behaviour.

Helpers shared by the store tests live here (``from . import make_event``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tokencost.events import Event
from tokencost.pricing import Price
from tokencost.usage import Usage

# gpt-4o's price: $2.50 / $10.00 per million tokens, cache reads $1.25.
GPT4O = Price.per_mtok("2.5", "10", cache_read="1.25", source="litellm")
# claude-sonnet-4-5: $3 / $15, cache writes $3.75, reads $0.30.
SONNET = Price.per_mtok("3", "15", cache_read="0.3", cache_write="3.75", source="override")
DAY = 86_400.0
T0 = 1_764_000_000.0  # 2025-11-24T16:00:00Z


def make_event(
    call_id: str,
    *,
    model: str = "gpt-4o",
    provider: str = "openai",
    timestamp: float = T0,
    usage: Usage | None = None,
    price: Price | None = GPT4O,
    cost_units: int | None = None,
    metadata: Mapping[str, Any] | None = None,
    status: str = "ok",
    reason: str | None = None,
    breakdown: Mapping[str, int] | None = None,
) -> Event:
    """Build an event priced by ``price`` (unpriced when ``price`` is None), unless ``cost_units`` is given."""
    usage = usage if usage is not None else Usage(input=1000, cache_read=200, output=50)
    if cost_units is None and price is not None:
        cost_units = price.cost_units(usage)
    return Event(
        call_id=call_id,
        timestamp=timestamp,
        model=model,
        provider=provider,
        usage=usage,
        cost_units=cost_units,
        price_source=None if price is None else price.source,
        price=price,
        saved_units=0 if price is None else price.saved_units(usage),
        metadata=dict(metadata or {}),
        status=status,
        reason=reason,
        breakdown=breakdown,
    )


def flat_event(call_id: str, cost_units: int, *, timestamp: float = T0, tokens: int = 10) -> Event:
    """Build an event with a given cost and no price (the shape workers in race tests record)."""
    return Event(
        call_id=call_id,
        timestamp=timestamp,
        model="race-model",
        provider="openai",
        usage=Usage(input=tokens),
        cost_units=cost_units,
        price_source="override",
    )

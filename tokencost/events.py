"""``Event``: one recorded call, as stores keep it and as ``history`` shows it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tokencost.money import from_units
from tokencost.pricing import Price
from tokencost.usage import Usage

__all__ = ["STATUSES", "Event"]

# ok: priced from usage; cache_hit: served from litellm's cache (cost 0, savings counted); pending: a price lookup
# is running and the event is repriced when it ends; incomplete: a stream broken off early (estimated).
STATUSES = ("ok", "cache_hit", "pending", "incomplete")


@dataclass(slots=True)
class Event:
    """One call: its usage in billing buckets and its exact cost in pico-dollars (``None`` when unpriced).

    Treat it as read-only (it is not frozen only because frozen dataclasses are slow to create).
    """

    call_id: str
    timestamp: float
    model: str
    provider: str
    usage: Usage
    cost_units: int | None
    price_source: str | None = None
    price: Price | None = None
    saved_units: int = 0
    metadata: Mapping[str, Any] = field(default_factory=dict)
    status: str = "ok"
    reason: str | None = None
    # Set when the per-bucket costs cannot be derived from ``price`` (read back from a store, or a litellm
    # response_cost for pricing we do not model).
    breakdown: Mapping[str, int] | None = None

    @property
    def priced(self) -> bool:
        """Whether the event has a known cost."""
        return self.cost_units is not None

    @property
    def cost(self) -> Decimal | None:
        """The cost in USD, or ``None`` when unpriced."""
        return None if self.cost_units is None else from_units(self.cost_units)

    @property
    def breakdown_units(self) -> dict[str, int]:
        """The cost of each bucket in pico-dollars (empty when unpriced or served from cache)."""
        if self.breakdown is not None:
            return dict(self.breakdown)
        if self.price is None or self.cost_units is None or self.status == "cache_hit":
            return {}
        return self.price.breakdown_units(self.usage)

    @property
    def tokens(self) -> int:
        """All tokens of the call."""
        return self.usage.total_tokens

    def __getitem__(self, key: str) -> Any:
        """Read a field as ``history`` shows it: ``event["cost"]`` is the same as ``event.to_dict()["cost"]``."""
        return self.to_dict()[key]

    def keys(self) -> list[str]:
        """The keys of ``to_dict()`` (so ``dict(event)`` works)."""
        return list(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """Return the event as ``history`` shows it: money as ``Decimal``, time as ISO-8601 UTC."""
        usage = self.usage
        return {
            "call_id": self.call_id,
            "timestamp": dt.datetime.fromtimestamp(self.timestamp, dt.timezone.utc).isoformat(),
            "model": self.model,
            "provider": self.provider,
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "cache_read_tokens": usage.cache_read + usage.cache_read_audio,  # text and audio, as in summaries
            "cache_write_tokens": usage.cache_write + usage.cache_write_1h,  # both TTLs, as in summaries
            "reasoning_tokens": usage.reasoning,
            "cost": self.cost,
            "priced": self.priced,
            "price_source": self.price_source,
            "cost_breakdown": {bucket: from_units(units) for bucket, units in self.breakdown_units.items()},
            "saved_by_cache": from_units(self.saved_units),
            "status": self.status,
            "reason": self.reason,
            "metadata": dict(self.metadata),
        }

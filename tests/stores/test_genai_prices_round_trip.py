"""Every price the genai-prices source gives round-trips through every store: written, flushed, reopened, read
back with the same cost and an equal ``Price`` (its per-token figures are decimal divisions of per-million prices)."""

from __future__ import annotations

import dataclasses
import os

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

from pathlib import Path

import pytest
from genai_prices import data_snapshot

from tokencost.events import Event
from tokencost.pricing.genai_prices import GenaiPricesSource

from . import T0
from .conftest import ALL_STORES
from .test_price_round_trip import USAGE as ROUND_TRIP_USAGE
from .test_price_round_trip import open_kind

# The other round-trip test's usage, every token bucket filled, without web searches (a price with no web-search
# figure cannot bill them).
USAGE = dataclasses.replace(ROUND_TRIP_USAGE, web_search_requests=0)


def genai_events() -> list[Event]:
    """One event for each model of genai-prices' data that the source prices."""
    source = GenaiPricesSource()
    events = []
    for provider in data_snapshot.get_snapshot().providers:
        for info in provider.models:
            price = source.lookup(info.id, provider.id)
            if price is None:
                continue
            i = len(events)
            events.append(
                Event(
                    f"g{i}",
                    T0 + i,
                    info.id,
                    provider.id,
                    USAGE,
                    price.cost_units(USAGE),
                    price_source=price.source,
                    price=price,
                    saved_units=price.saved_units(USAGE),
                    metadata={"model": info.id},
                )
            )
    return events


def test_the_source_prices_most_of_genai_prices() -> None:
    events = genai_events()
    assert len(events) > 1000
    assert any(e.price is not None and e.price.above_tier is not None for e in events)
    assert any(e.price is not None and e.price.cache_read_audio is not None for e in events)


@pytest.mark.parametrize("kind", ALL_STORES)
def test_every_genai_price_round_trips(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    events = genai_events()
    store = open_kind(kind, request, tmp_path / "ledger.db")
    for event in events:
        store.record("genai", event, ("total",))
    assert store.flush(60) is True
    if kind != "memory":
        store.close()
        store = open_kind(kind, request, tmp_path / "ledger.db")
    try:
        back = store.events("genai")
        assert [e.call_id for e in back] == [e.call_id for e in events]
        wrong = [
            (e.model, b.cost_units, b.price)
            for e, b in zip(events, back, strict=True)
            if (b.cost_units, b.price, b.price_source, b.saved_units, b.usage)
            != (e.cost_units, e.price, e.price_source, e.saved_units, e.usage)
        ]
        assert wrong == []
        assert store.totals("genai").cost_units == sum(e.cost_units or 0 for e in events)
    finally:
        store.close()

"""Every price litellm's bundled map gives (long-context tiers, every bucket, provenance) round-trips through
every store: written, flushed, reopened, read back with the same cost and an equal ``Price``."""

from __future__ import annotations

import os

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

from decimal import Decimal
from pathlib import Path

import litellm
import pytest

from tokencost.events import Event
from tokencost.pricing import Price
from tokencost.pricing.litellm_map import LitellmMapSource
from tokencost.stores.base import Store
from tokencost.stores.memory import MemoryStore
from tokencost.stores.redis import RedisStore
from tokencost.stores.sqlite import SQLiteStore, price_from_json, price_to_json
from tokencost.usage import Usage

from . import T0
from .conftest import ALL_STORES

USAGE = Usage(
    input=1200,
    cache_read=300,
    cache_write=40,
    output=500,
    reasoning=70,
    audio_in=3,
    audio_out=4,
    image=5,
    cache_write_1h=6,
    cache_read_audio=7,
    web_search_requests=2,
)


def map_events() -> list[Event]:
    """One event for each model of litellm's map that the litellm source prices."""
    source = LitellmMapSource()
    events = []
    for i, name in enumerate(sorted(litellm.model_cost)):
        price = source.lookup(name, None)
        if price is None:
            continue
        events.append(
            Event(
                f"m{i}",
                T0 + i,
                name,
                "litellm",
                USAGE,
                price.cost_units(USAGE),
                price_source=price.source,
                price=price,
                saved_units=price.saved_units(USAGE),
                metadata={"model": name},
            )
        )
    return events


def test_the_map_has_the_shapes_that_broke_the_stores() -> None:
    """The map gives tiered prices (the shape that could not be encoded) and prices with source URLs."""
    events = map_events()
    assert len(events) > 1000
    tiered = [e for e in events if e.price is not None and e.price.above_tier is not None]
    assert len(tiered) > 100
    assert sum(1 for e in events if e.price is not None and e.price.service_tiers) > 100
    assert any(e.price is not None and e.price.geo_multipliers for e in events)
    assert any(e.price is not None and e.price.web_search is not None for e in events)
    assert any(e.price is not None and e.price.cache_write_1h is not None for e in events)
    assert any(e.price is not None and e.price.cache_read_audio is not None for e in events)
    if any("cache_read_input_audio_token_cost_priority" in info for info in litellm.model_cost.values()):  # 1.110
        tiers = [variant for e in events if e.price is not None for _, variant in e.price.service_tiers]
        assert any(variant.cache_read_audio is not None for variant in tiers)
    assert any(e.price is not None and e.price.source_url for e in events)


def test_a_price_with_nested_tiers_and_every_bucket_survives_the_codec() -> None:
    """Several nested tiers, every bucket set, provenance: decoded equal, field by field."""
    inner = Price(Decimal("9e-6"), Decimal("1.8E-5"), source="linkup", source_url="https://example.test/p")
    middle = Price(
        Decimal("0.000004"),
        Decimal("0.000012"),
        cache_read=Decimal("1E-7"),
        tier_above_tokens=400_000,
        above_tier=inner,
        source="linkup",
    )
    price = Price(
        Decimal("0.0000025"),
        Decimal("0.00001"),
        cache_read=Decimal("0.00000125"),
        cache_write=Decimal("0.000003"),
        reasoning=Decimal("0.00002"),
        audio_in=Decimal("0.00004"),
        audio_out=Decimal("0.00008"),
        image=Decimal("0.000001"),
        cache_write_1h=Decimal("0.000006"),
        cache_read_audio=Decimal("1E-7"),
        source="cache-file",
        source_url="https://example.test/prices",
        tier_above_tokens=200_000,
        above_tier=middle,
    )
    back = price_from_json(price_to_json(price))
    assert back == price
    assert back.above_tier == middle and back.above_tier.above_tier == inner
    assert back.above_tier.above_tier.source_url == "https://example.test/p"


def open_kind(kind: str, request: pytest.FixtureRequest, path: Path) -> Store:
    if kind == "memory":
        return MemoryStore()
    if kind == "sqlite":
        return SQLiteStore(f"sqlite:///{path}")
    return RedisStore(request.getfixturevalue("redis_server"))


@pytest.mark.parametrize("kind", ALL_STORES)
def test_every_price_of_litellms_map_round_trips(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """Each model's event is written, flushed, the store reopened, and read back with its cost and price."""
    events = map_events()
    store = open_kind(kind, request, tmp_path / "ledger.db")
    for event in events:
        store.record("map", event, ("total",))
    assert store.flush(60) is True
    if kind != "memory":
        store.close()
        store = open_kind(kind, request, tmp_path / "ledger.db")
    try:
        back = store.events("map")
        assert [e.call_id for e in back] == [e.call_id for e in events]
        wrong = [
            (e.model, b.cost_units, b.price)
            for e, b in zip(events, back, strict=True)
            if (b.cost_units, b.price, b.price_source, b.saved_units, b.usage)
            != (e.cost_units, e.price, e.price_source, e.saved_units, e.usage)
        ]
        assert wrong == []
        assert store.totals("map").cost_units == sum(e.cost_units or 0 for e in events)
        assert store.totals("map").unpriced == 0
    finally:
        store.close()

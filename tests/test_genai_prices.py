"""pydantic's genai-prices as the price source after litellm's map, priced at the call's own time (issue 16)."""

from __future__ import annotations

import os

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import genai_prices
import litellm
import pytest

from tokencost import CostTracker
from tokencost.pricing.genai_prices import GenaiPricesSource
from tokencost.pricing.litellm_map import model_info

M = Decimal(1_000_000)


@pytest.fixture
def tracker() -> Iterator[CostTracker]:
    t = CostTracker(print_summary=False, linkup_api_key=False)
    yield t
    t.close()


# The models litellm's map dropped, and their published prices (USD per million tokens, input / output):
DROPPED = [
    # anthropic.com/pricing: Claude Sonnet 4 $3 / $15, Opus 4.1 $15 / $75, Sonnet 3.5 $3 / $15
    ("claude-sonnet-4-20250514", "anthropic", Decimal(3), Decimal(15)),
    ("claude-opus-4-1-20250805", "anthropic", Decimal(15), Decimal(75)),
    ("claude-3-5-sonnet-20241022", "anthropic", Decimal(3), Decimal(15)),
    # openai.com/api/pricing (legacy models): gpt-4-32k $60 / $120
    ("gpt-4-32k", "openai", Decimal(60), Decimal(120)),
    # console.groq.com pricing: Llama 3.3 70B Versatile $0.59 / $0.79
    ("groq/llama-3.3-70b-versatile", "groq", Decimal("0.59"), Decimal("0.79")),
]


@pytest.mark.parametrize(("model", "provider", "input_mtok", "output_mtok"), DROPPED)
def test_models_litellm_dropped_get_their_published_prices(
    tracker: CostTracker, model: str, provider: str, input_mtok: Decimal, output_mtok: Decimal
) -> None:
    """10,000 prompt + 1,000 completion tokens at the published per-million prices.

    litellm 1.110's map dropped these models, so the default chain falls through to genai-prices; litellm 1.98's
    map still has them at the same prices. genai-prices asked first gives them on every litellm.
    """
    event = tracker.track(model, 10_000, 1_000, provider=provider)
    assert event.cost == (10_000 * input_mtok + 1_000 * output_mtok) / M
    assert event.price_source == ("litellm" if model_info(model, provider) else "genai-prices")
    genai = CostTracker(sources=[GenaiPricesSource()], print_summary=False, linkup_api_key=False)
    direct = genai.track(model, 10_000, 1_000, provider=provider)
    assert (direct.cost, direct.price_source) == (event.cost, "genai-prices")
    genai.close()


def test_claude_cache_prices_come_along(tracker: CostTracker) -> None:
    """claude-sonnet-4-20250514 (anthropic.com/pricing): cache reads $0.30, 5-minute cache writes $3.75 per million.

    100 input x 3 + 8,000 reads x 0.30 + 2,000 writes x 3.75 + 500 output x 15 = 300 + 2,400 + 7,500 + 7,500.
    """
    event = tracker.track(
        "claude-sonnet-4-20250514", 10_100, 500, provider="anthropic", cache_read_tokens=8_000, cache_write_tokens=2_000
    )
    assert event.cost == Decimal(300 + 2_400 + 7_500 + 7_500) / M


def test_litellm_map_wins_where_it_has_the_model(tracker: CostTracker) -> None:
    """A model in litellm's map is priced by the map (genai-prices comes after it)."""
    assert tracker.track("gpt-4o", 1_000, 100).price_source == "litellm"


def _dated_model() -> tuple[str, str, list[dt.datetime]]:
    """A model of genai-prices' data with a price change on a start date, and a time in each period."""
    from genai_prices import data_snapshot
    from genai_prices.types import ModelPrice, StartDateConstraint

    for provider in data_snapshot.get_snapshot().providers:
        for info in provider.models:
            if isinstance(info.prices, ModelPrice) or len(info.prices) < 2:
                continue
            starts = [c.constraint.start_date for c in info.prices if isinstance(c.constraint, StartDateConstraint)]
            if not starts or info.price_variants:
                continue
            if not all(c.constraint is None or isinstance(c.constraint, StartDateConstraint) for c in info.prices):
                continue
            model_ref = info.id
            if model_info(model_ref, provider.id) is not None:
                continue
            first = min(starts)
            noon = dt.time(12, tzinfo=dt.timezone.utc)
            times = [dt.datetime.combine(first - dt.timedelta(days=1), noon)]
            times += [dt.datetime.combine(start + dt.timedelta(days=1), noon) for start in sorted(starts)]
            return model_ref, provider.id, times
    raise AssertionError("genai-prices has no dated price change to test with")


def test_priced_at_the_calls_own_time() -> None:
    """Calls before and after a dated price change are priced at the price of their own day, as genai-prices does."""
    model, provider, times = _dated_model()
    usage = genai_prices.Usage(input_tokens=100_000, output_tokens=10_000)
    costs = set()
    for when in times:
        reference = genai_prices.calc_price(usage, model, provider_id=provider, genai_request_timestamp=when)
        tracker = CostTracker(print_summary=False, linkup_api_key=False, clock=when.timestamp)
        try:
            event = tracker.track(model, 100_000, 10_000, provider=provider)
        finally:
            tracker.close()
        assert event.price_source == "genai-prices"
        assert event.cost == reference.total_price, (model, when)
        costs.add(event.cost)
    assert len(costs) > 1  # the change is seen


def test_track_timestamp_prices_at_the_calls_time() -> None:
    """``track(timestamp=...)`` on a tracker whose clock is now: each call at the price of its own day."""
    model, provider, times = _dated_model()
    usage = genai_prices.Usage(input_tokens=100_000, output_tokens=10_000)
    tracker = CostTracker(print_summary=False, linkup_api_key=False)
    try:
        costs = set()
        for when in times:
            reference = genai_prices.calc_price(usage, model, provider_id=provider, genai_request_timestamp=when)
            event = tracker.track(model, 100_000, 10_000, provider=provider, timestamp=when)
            assert (event.price_source, event.timestamp) == ("genai-prices", when.timestamp())
            assert event.cost == reference.total_price, (model, when)
            recorded = tracker.record_usage(model, event.usage, provider=provider, timestamp=when.timestamp())
            assert recorded.cost == reference.total_price
            costs.add(event.cost)
        assert len(costs) > 1  # the change is seen
    finally:
        tracker.close()


def test_lookup_at_takes_any_time() -> None:
    model, provider, times = _dated_model()
    source = GenaiPricesSource()
    prices = [source.lookup_at(model, provider, when.timestamp()) for when in times]
    assert all(price is not None for price in prices)
    assert len(set(prices)) > 1


def test_unknown_model_and_a_provider_genai_prices_has_not_are_none() -> None:
    source = GenaiPricesSource()
    assert source.lookup("no-such-model-anywhere", "openai") is None
    # A model another provider sells is not this provider's price.
    assert source.lookup("gpt-4-32k", "anthropic") is None


def test_not_installed_is_no_price(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without genai_prices the source knows no model; the tracker goes on."""
    import sys

    monkeypatch.setitem(sys.modules, "genai_prices", None)
    assert GenaiPricesSource().lookup("claude-sonnet-4-20250514", "anthropic") is None


def test_through_litellm_too(fake: object) -> None:
    """A litellm call to a model its map dropped is priced by genai-prices as well."""
    from tokencost.testing import FakeProvider

    assert isinstance(fake, FakeProvider)
    tracker = CostTracker(print_summary=False, linkup_api_key=False)
    litellm.callbacks = [tracker]
    try:
        fake.set_openai_usage("gpt-4-32k", prompt_tokens=10_000, completion_tokens=1_000)
        litellm.completion(
            model="openai/gpt-4-32k",
            messages=[{"role": "user", "content": "hi"}],
            api_base=fake.openai_base,
            api_key="sk-fake",
            max_retries=0,
        )
        event = tracker.history[-1]
        # gpt-4-32k (openai.com/api/pricing): $60 / $120 per million: 0.6 + 0.12
        assert event["cost"] == Decimal("0.72")
        assert event["price_source"] == "genai-prices"
    finally:
        tracker.close()

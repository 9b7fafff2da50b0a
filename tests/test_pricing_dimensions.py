"""Priced dimensions beyond token buckets: service tiers, 1-hour cache writes, web searches, inference geography,
off-peak hours. Expected figures are computed from litellm's bundled map entries, never from our own output; a
call our price cannot bill is never billed at the base price."""

from __future__ import annotations

import os

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import re
from decimal import Decimal
from importlib.metadata import version
from typing import Any

import litellm
import pytest
from litellm.types.utils import PromptTokensDetailsWrapper
from map_entries import needs

from tokencost import CostTracker
from tokencost.events import Event
from tokencost.money import to_units
from tokencost.pricing.override import register_price
from tokencost.usage import Usage

LITELLM = tuple(int(part) for part in re.findall(r"\d+", version("litellm"))[:3])


def rate(model: str, key: str) -> Decimal:
    """A per-token (or per-query) figure of litellm's map entry, as exact decimal text."""
    value: Any = litellm.model_cost[model][key]
    return Decimal(str(value))


def record(tracker: CostTracker, model: str, usage: Usage, response_cost: Any = None) -> Event:
    """Price and commit a call as litellm's success event would (with its ``response_cost``)."""
    event = tracker.recorder.price_event("c1", model, "openai", usage, {}, response_cost=response_cost)
    return tracker.recorder.commit(event, (), None)


@pytest.mark.parametrize(("tier", "suffix"), [("priority", "_priority"), ("batch", "_batches"), ("flex", "_flex")])
def test_service_tier_bills_the_tiers_prices(
    tracker: CostTracker, monkeypatch: pytest.MonkeyPatch, tier: str, suffix: str
) -> None:
    """gpt-5 in each service tier: every bucket at that tier's price in litellm's map."""
    needs(monkeypatch, "gpt-5")
    usage = Usage(input=10_000, cache_read=4_000, output=2_000, service_tier=tier)
    event = tracker.record_usage("gpt-5", usage)
    expected = (
        10_000 * rate("gpt-5", "input_cost_per_token" + suffix)
        + 4_000 * rate("gpt-5", "cache_read_input_token_cost" + suffix)
        + 2_000 * rate("gpt-5", "output_cost_per_token" + suffix)
    )
    assert event.cost_units == to_units(expected)
    assert event.price is not None and event.price.input == rate("gpt-5", "input_cost_per_token" + suffix)
    standard = tracker.record_usage("gpt-5", Usage(input=10_000, cache_read=4_000, output=2_000))
    assert standard.cost_units != event.cost_units


@pytest.mark.parametrize("tier", ["default", "standard", "auto"])
def test_standard_tier_names_bill_the_standard_price(tracker: CostTracker, tier: str) -> None:
    event = tracker.record_usage("gpt-4o", Usage(input=1_000, output=100, service_tier=tier))
    expected = 1_000 * rate("gpt-4o", "input_cost_per_token") + 100 * rate("gpt-4o", "output_cost_per_token")
    assert event.cost_units == to_units(expected)


def test_a_tier_without_a_price_is_never_the_base_price(tracker: CostTracker) -> None:
    """gpt-4o has no flex prices in the map: litellm's response_cost when it gave one, else unpriced."""
    usage = Usage(input=1_000, output=100, service_tier="flex")
    unpriced = tracker.record_usage("gpt-4o", usage)
    assert unpriced.cost_units is None
    assert unpriced.reason == "cannot price this call: no flex service tier price"
    by_litellm = record(tracker, "gpt-4o", usage, response_cost=0.00123)
    assert (by_litellm.cost_units, by_litellm.price_source) == (to_units(Decimal("0.00123")), "response_cost")
    assert by_litellm.reason == "priced by litellm (no flex service tier price)"


def test_one_hour_cache_writes_bill_at_their_own_price(tracker: CostTracker) -> None:
    model = "claude-sonnet-4-5"
    usage = Usage(input=500, cache_write=1_000, cache_write_1h=3_000, output=200)
    event = tracker.record_usage(model, usage, provider="anthropic")
    expected = (
        500 * rate(model, "input_cost_per_token")
        + 1_000 * rate(model, "cache_creation_input_token_cost")
        + 3_000 * rate(model, "cache_creation_input_token_cost_above_1hr")
        + 200 * rate(model, "output_cost_per_token")
    )
    assert event.cost_units == to_units(expected)
    assert event.price is not None
    assert event.price.breakdown_units(usage)["cache_write_1h"] == to_units(
        3_000 * rate(model, "cache_creation_input_token_cost_above_1hr")
    )


def test_one_hour_cache_writes_without_a_price_are_not_billed_as_five_minute_ones(tracker: CostTracker) -> None:
    register_price("acme-cache-1", input_per_mtok=1, output_per_mtok=2, cache_write_per_mtok="1.25")
    event = tracker.record_usage("acme-cache-1", Usage(input=100, cache_write_1h=1_000, output=10))
    assert event.cost_units is None
    assert event.reason == "cannot price this call: no 1-hour cache write price"


def test_web_searches_bill_per_request(tracker: CostTracker) -> None:
    model = "claude-sonnet-4-5"
    per_query = Decimal(str(litellm.model_cost[model]["search_context_cost_per_query"]["search_context_size_medium"]))
    usage = Usage(input=1_000, output=100, web_search_requests=3)
    event = tracker.record_usage(model, usage, provider="anthropic")
    tokens = 1_000 * rate(model, "input_cost_per_token") + 100 * rate(model, "output_cost_per_token")
    assert event.cost_units == to_units(tokens + 3 * per_query)
    assert event.price is not None and event.price.breakdown_units(usage)["web_search"] == to_units(3 * per_query)
    assert event.usage.total_tokens == 1_100  # searches are no tokens


def test_web_searches_without_a_price_are_not_free(tracker: CostTracker) -> None:
    register_price("acme-search-1", input_per_mtok=1, output_per_mtok=2)
    event = tracker.record_usage("acme-search-1", Usage(input=100, output=10, web_search_requests=1))
    assert (event.cost_units, event.reason) == (None, "cannot price this call: no web search price")


def test_us_inference_costs_its_multiplier_more(tracker: CostTracker) -> None:
    """claude-opus-4-6 run in the US: every token at the map's ``provider_specific_entry`` "us" multiple."""
    model = "claude-opus-4-6"
    multiplier = Decimal(str(litellm.model_cost[model]["provider_specific_entry"]["us"]))
    usage = Usage(input=2_000, cache_read=1_000, output=300, inference_geo="us")
    event = tracker.record_usage(model, usage, provider="anthropic")
    tokens = (
        2_000 * rate(model, "input_cost_per_token")
        + 1_000 * rate(model, "cache_read_input_token_cost")
        + 300 * rate(model, "output_cost_per_token")
    )
    assert event.cost_units == to_units(tokens * multiplier)
    for geo in ("global", None):
        plain = tracker.record_usage(model, Usage(input=2_000, cache_read=1_000, output=300, inference_geo=geo))
        assert plain.cost_units == to_units(tokens)


def test_off_peak_pricing_takes_litellms_figure_or_stays_unpriced(
    tracker: CostTracker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """deepseek-flash bills by the hour of the call: tokencost does not guess the window."""
    needs(monkeypatch, "deepseek/deepseek-flash")
    usage = Usage(input=1_000, output=100)
    unpriced = tracker.record_usage("deepseek/deepseek-flash", usage, provider="deepseek")
    assert unpriced.cost_units is None
    assert unpriced.reason == "cannot price this call: off-peak pricing by time of day"
    by_litellm = record(tracker, "deepseek/deepseek-flash", usage, response_cost=0.0004)
    assert (by_litellm.cost_units, by_litellm.price_source) == (to_units(Decimal("0.0004")), "response_cost")


def test_vertex_regional_endpoints_cost_the_uplift_more(tracker: CostTracker, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Vertex AI model with ``regional_endpoint_uplift_multiplier``: a regional location costs that much more."""
    model = "vertex_ai/gemini-3.5-flash"
    needs(monkeypatch, model)
    uplift = Decimal(str(litellm.model_cost[model]["regional_endpoint_uplift_multiplier"]))
    tokens = 1_000 * rate(model, "input_cost_per_token") + 100 * rate(model, "output_cost_per_token")
    regional = tracker.record_usage(model, Usage(input=1_000, output=100, inference_geo="us-central1"))
    assert regional.cost_units == to_units(tokens * uplift)
    plain = tracker.record_usage(model, Usage(input=1_000, output=100, inference_geo="global"))
    assert plain.cost_units == to_units(tokens)


@pytest.mark.parametrize(
    ("tier", "suffix"), [(None, ""), ("flex", "_flex"), ("priority", "_priority"), ("batch", "_batches")]
)
def test_cached_audio_bills_at_its_own_price_in_every_service_tier(
    tracker: CostTracker, monkeypatch: pytest.MonkeyPatch, tier: str | None, suffix: str
) -> None:
    """gemini-3.1-flash-lite: cached audio at the map's ``cache_read_input_audio_token_cost`` of the call's tier
    (ai.google.dev/gemini-api/docs/pricing: $0.05 per million, $0.025 in flex and batch), text cache reads at the
    text cache price."""
    model = "gemini/gemini-3.1-flash-lite"
    needs(monkeypatch, model)
    usage = Usage(input=10_000, cache_read=4_000, cache_read_audio=3_000, output=2_000, service_tier=tier)
    event = tracker.record_usage("gemini-3.1-flash-lite", usage, provider="gemini")
    expected = (
        10_000 * rate(model, "input_cost_per_token" + suffix)
        + 4_000 * rate(model, "cache_read_input_token_cost" + suffix)
        + 3_000 * rate(model, "cache_read_input_audio_token_cost" + suffix)
        + 2_000 * rate(model, "output_cost_per_token" + suffix)
    )
    assert event.cost_units == to_units(expected)
    assert event.breakdown_units["cache_read_audio"] == to_units(
        3_000 * rate(model, "cache_read_input_audio_token_cost" + suffix)
    )


# An entry with audio input dearer than text and no cached-audio price of its own: litellm's
# generic_cost_per_token bills cached audio at the cache-read rate of the call's tier (its
# cache_read_input_audio_token_cost key of the tier, else the standard one, else that rate).
_NO_CACHED_AUDIO = {
    "litellm_provider": "openai",
    "mode": "chat",
    "input_cost_per_token": 1e-06,
    "input_cost_per_token_flex": 5e-07,
    "output_cost_per_token": 2e-06,
    "output_cost_per_token_flex": 1e-06,
    "input_cost_per_audio_token": 4e-06,
    "cache_read_input_token_cost": 1e-07,
    "cache_read_input_token_cost_flex": 5e-08,
}
_FALLBACKS = [
    # (model, its entry, service tier, what one cached audio token costs); litellm remembers an entry by name
    pytest.param("acme-audio-1", _NO_CACHED_AUDIO, None, "1e-07", id="the-cache-read-price"),
    pytest.param("acme-audio-2", _NO_CACHED_AUDIO, "flex", "5e-08", id="the-tiers-cache-read-price"),
    pytest.param("acme-audio-3", {**_NO_CACHED_AUDIO, "cache_read_input_audio_token_cost": 3e-07}, "flex", "3e-07",
                 id="the-standard-cached-audio-price"),
    pytest.param("acme-audio-4", {k: v for k, v in _NO_CACHED_AUDIO.items() if not k.startswith("cache_read")},
                 "flex", "5e-07", id="no-cache-price-the-tiers-input-price"),
]  # fmt: skip


@pytest.mark.parametrize(("model", "entry", "tier", "per_token"), _FALLBACKS)
def test_cached_audio_without_its_own_price_bills_as_litellm_bills_it(
    tracker: CostTracker,
    monkeypatch: pytest.MonkeyPatch,
    model: str,
    entry: dict[str, Any],
    tier: str | None,
    per_token: str,
) -> None:
    """Never the audio input price, never the standard price in another tier: what litellm bills."""
    monkeypatch.setitem(litellm.model_cost, model, entry)
    usage = Usage(input=100, cache_read_audio=1_000, output=10, service_tier=tier)
    event = tracker.record_usage(model, usage)
    suffix = "" if tier is None else f"_{tier}"
    expected = (
        100 * rate(model, "input_cost_per_token" + suffix)
        + 1_000 * Decimal(per_token)
        + 10 * rate(model, "output_cost_per_token" + suffix)
    )
    assert event.cost_units == to_units(expected)
    if LITELLM >= (1, 110, 0):  # litellm 1.98 bills cached audio as audio input too (tests/test_differential.py)
        details = PromptTokensDetailsWrapper(
            cached_tokens=1_000, audio_tokens=1_000, cached_tokens_details={"audio_tokens": 1_000}
        )
        theirs = litellm.cost_per_token(
            model=model,
            custom_llm_provider="openai",
            usage_object=litellm.Usage(prompt_tokens=1_100, completion_tokens=10, prompt_tokens_details=details),
            prompt_tokens=1_100,
            completion_tokens=10,
            service_tier=tier,
        )
        assert event.cost is not None
        assert abs(event.cost - (Decimal(str(theirs[0])) + Decimal(str(theirs[1])))) <= event.cost * Decimal("1e-9")


def test_fireworks_cache_reads_without_a_map_price_bill_at_half_the_input_price(
    tracker: CostTracker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fireworks serverless bills cached prompt tokens at 50% of the input price (fireworks.ai/docs, prompt
    caching); most of its map entries carry no cache-read price (found by tests/test_differential.py: they were
    billed at the full input price). An entry with its own cache-read price keeps it.

    $0.20 per million in and out: 4,000 uncached x 0.20 + 6,000 cached x 0.10 + 500 output x 0.20 = 800 + 600 + 100.
    """
    entry = {"input_cost_per_token": 2e-07, "output_cost_per_token": 2e-07, "litellm_provider": "fireworks_ai"}
    monkeypatch.setitem(litellm.model_cost, "fireworks_ai/acme-13b", {**entry, "mode": "chat"})
    monkeypatch.setitem(
        litellm.model_cost, "fireworks_ai/acme-14b", {**entry, "mode": "chat", "cache_read_input_token_cost": 5e-08}
    )
    usage = Usage(input=4_000, cache_read=6_000, output=500)
    assert tracker.record_usage("acme-13b", usage, provider="fireworks_ai").cost == Decimal(1_500) / 1_000_000
    # 4,000 x 0.20 + 6,000 x 0.05 + 500 x 0.20 = 800 + 300 + 100
    assert tracker.record_usage("acme-14b", usage, provider="fireworks_ai").cost == Decimal(1_200) / 1_000_000
    # Another provider's entry without a cache-read price bills cache reads at the input price.
    monkeypatch.setitem(litellm.model_cost, "together_ai/acme-13b", {**entry, "litellm_provider": "together_ai"})
    assert tracker.record_usage("acme-13b", usage, provider="together_ai").cost == Decimal(2_100) / 1_000_000

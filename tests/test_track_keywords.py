"""``track()``'s keywords for every priced dimension (issue 16): audio, images, 1-hour cache writes, service
tiers, web searches and the call's time.

Each expected cost is worked out here from the map entry's per-token prices (litellm's map, read through
``str`` as tokencost reads it) and the provider's published price page, quoted next to it.
"""

from __future__ import annotations

import os

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import litellm
import pytest
from map_entries import needs

from tokencost import CostTracker, Usage

M = Decimal(1_000_000)


@pytest.fixture
def tracker() -> Iterator[CostTracker]:
    t = CostTracker(print_summary=False, linkup_api_key=False)
    yield t
    t.close()


def rate(model: str, key: str) -> Decimal:
    """USD per token (or per query) of ``key`` in litellm's map entry for ``model``."""
    value = litellm.model_cost[model][key]
    return Decimal(str(value))


def test_audio_tokens_bill_at_the_audio_prices(tracker: CostTracker) -> None:
    """gpt-audio (openai.com/api/pricing: text $2.50 / $10, audio $32 / $64 per million).

    1,000 prompt tokens of which 800 audio, 500 completion tokens of which 400 audio:
    200 x 2.50 + 800 x 32 + 100 x 10 + 400 x 64 = 500 + 25,600 + 1,000 + 25,600 = $52,700 per million calls.
    """
    event = tracker.track("gpt-audio", 1_000, 500, audio_input_tokens=800, audio_output_tokens=400)
    expected = (
        200 * rate("gpt-audio", "input_cost_per_token")
        + 800 * rate("gpt-audio", "input_cost_per_audio_token")
        + 100 * rate("gpt-audio", "output_cost_per_token")
        + 400 * rate("gpt-audio", "output_cost_per_audio_token")
    )
    assert event.cost == expected == Decimal(52_700) / M
    assert event.usage == Usage(input=200, output=100, audio_in=800, audio_out=400)
    # The same call without the keywords bills the audio as text: the keywords change the cost.
    assert tracker.track("gpt-audio", 1_000, 500).cost == (1_000 * Decimal("2.5") + 500 * 10) / M


def test_audio_preview_model(tracker: CostTracker) -> None:
    """gpt-4o-audio-preview-2024-12-17: audio $40 in / $80 out per million, text $2.50 / $10."""
    model = "gpt-4o-audio-preview-2024-12-17"
    event = tracker.track(model, 2_000, 1_000, audio_input_tokens=1_500, audio_output_tokens=1_000)
    assert event.cost == 500 * rate(model, "input_cost_per_token") + 1_500 * rate(
        model, "input_cost_per_audio_token"
    ) + 1_000 * rate(model, "output_cost_per_audio_token")
    assert event.cost == (500 * Decimal("2.5") + 1_500 * 40 + 1_000 * 80) / M


def test_image_tokens_bill_at_the_image_price(tracker: CostTracker) -> None:
    """gpt-image-1 (openai.com/api/pricing): text input $5, image input $10 per million tokens."""
    event = tracker.track("gpt-image-1", 3_000, 0, image_input_tokens=2_000)
    assert event.usage == Usage(input=1_000, image=2_000)
    assert event.cost == 1_000 * rate("gpt-image-1", "input_cost_per_token") + 2_000 * rate(
        "gpt-image-1", "input_cost_per_image_token"
    )
    assert event.cost == (1_000 * 5 + 2_000 * 10) / M


def test_one_hour_cache_writes_bill_at_the_one_hour_rate(tracker: CostTracker) -> None:
    """claude-sonnet-4-5 (anthropic.com/pricing): input $3, 5-minute writes $3.75, 1-hour writes $6, output $15.

    10,000 prompt tokens: 3,000 cache writes (2,000 of them for an hour), 7,000 uncached; 500 output.
    7,000 x 3 + 1,000 x 3.75 + 2,000 x 6 + 500 x 15 = 21,000 + 3,750 + 12,000 + 7,500 = $44,250 per million calls.
    """
    model = "claude-sonnet-4-5"
    event = tracker.track(
        model, 10_000, 500, provider="anthropic", cache_write_tokens=3_000, cache_write_1h_tokens=2_000
    )
    assert event.usage == Usage(input=7_000, cache_write=1_000, cache_write_1h=2_000, output=500)
    assert event.cost == (
        7_000 * rate(model, "input_cost_per_token")
        + 1_000 * rate(model, "cache_creation_input_token_cost")
        + 2_000 * rate(model, "cache_creation_input_token_cost_above_1hr")
        + 500 * rate(model, "output_cost_per_token")
    )
    assert event.cost == Decimal(44_250) / M
    five_minutes = tracker.track(model, 10_000, 500, provider="anthropic", cache_write_tokens=3_000)
    assert event.cost - five_minutes.cost == 2_000 * (Decimal(6) - Decimal("3.75")) / M


def test_one_hour_writes_without_a_price_are_not_billed_at_the_five_minute_rate(tracker: CostTracker) -> None:
    """A model whose price has no 1-hour write figure: unpriced with the reason, never the 5-minute rate."""
    event = tracker.track("gpt-4o", 1_000, 10, cache_write_tokens=500, cache_write_1h_tokens=500)
    assert event.cost is None
    assert event.reason is not None and "1-hour" in event.reason


@pytest.mark.parametrize(
    ("tier", "suffix"),
    [("flex", "_flex"), ("priority", "_priority"), ("batch", "_batches"), ("FLEX", "_flex")],
)
def test_service_tiers_bill_the_tiers_prices(
    monkeypatch: pytest.MonkeyPatch, tracker: CostTracker, tier: str, suffix: str
) -> None:
    """gpt-5 (openai.com/api/pricing): standard $1.25 / $0.125 cached / $10; flex and batch half of it
    ($0.625 / $0.0625 / $5), priority double ($2.50 / $0.25 / $20)."""
    needs(monkeypatch, "gpt-5")
    event = tracker.track("gpt-5", 10_000, 2_000, cache_read_tokens=4_000, service_tier=tier)
    expected = (
        6_000 * rate("gpt-5", "input_cost_per_token" + suffix)
        + 4_000 * rate("gpt-5", "cache_read_input_token_cost" + suffix)
        + 2_000 * rate("gpt-5", "output_cost_per_token" + suffix)
    )
    assert event.cost == expected
    standard = tracker.track("gpt-5", 10_000, 2_000, cache_read_tokens=4_000)
    factor = Decimal(2) if tier.lower() == "priority" else Decimal("0.5")
    assert event.cost == standard.cost * factor  # type: ignore[operator]


@pytest.mark.parametrize("name", ["default", "standard", "auto", " Standard "])
def test_the_standard_tiers_names_bill_the_standard_price(tracker: CostTracker, name: str) -> None:
    event = tracker.track("gpt-5", 1_000, 100, service_tier=name)
    assert event.usage.service_tier is None
    assert event.cost == tracker.track("gpt-5", 1_000, 100).cost


def test_a_tier_the_model_has_no_price_for_is_not_the_standard_price(tracker: CostTracker) -> None:
    """claude-sonnet-4-5 has no flex price in the map: unpriced with the reason (no litellm figure here)."""
    event = tracker.track("claude-sonnet-4-5", 1_000, 100, provider="anthropic", service_tier="flex")
    assert event.cost is None
    assert event.reason is not None and "flex" in event.reason


def test_web_searches_add_their_fee(tracker: CostTracker) -> None:
    """claude-sonnet-4-5 (docs.anthropic.com, web search tool): $10 per 1,000 searches, on top of the tokens."""
    model = "claude-sonnet-4-5"
    plain = tracker.track(model, 1_000, 100, provider="anthropic")
    searched = tracker.track(model, 1_000, 100, provider="anthropic", web_search_requests=3)
    per_query = Decimal(str(litellm.model_cost[model]["search_context_cost_per_query"]["search_context_size_medium"]))
    assert per_query == Decimal("0.01")
    assert searched.cost == plain.cost + 3 * per_query  # type: ignore[operator]
    assert searched.usage.web_search_requests == 3
    assert searched.usage.total_tokens == plain.usage.total_tokens  # searches are not tokens


def test_timestamp_is_the_events_time(tracker: CostTracker) -> None:
    when = dt.datetime(2026, 3, 1, 12, 30, tzinfo=dt.timezone.utc)
    event = tracker.track("gpt-4o", 1_000, 100, timestamp=when)
    assert event.timestamp == when.timestamp()
    assert tracker.track("gpt-4o", 1_000, 100, timestamp=1_700_000_000).timestamp == 1_700_000_000.0
    naive = tracker.track("gpt-4o", 1_000, 100, timestamp=dt.datetime(2026, 3, 1, 12, 30))  # naive means UTC
    assert naive.timestamp == when.timestamp()
    assert [e.timestamp for e in tracker.events(until=when.timestamp() + 1)] == [
        when.timestamp(),
        1_700_000_000.0,
        when.timestamp(),
    ]


def test_record_usage_takes_the_timestamp(tracker: CostTracker) -> None:
    event = tracker.record_usage("gpt-4o", Usage(input=1_000, output=10), timestamp=1_750_000_000.5)
    assert event.timestamp == 1_750_000_000.5
    stored = tracker.store.events(tracker.name)[-1]
    assert stored.timestamp == 1_750_000_000.5
    with pytest.raises(TypeError, match="timestamp"):
        tracker.record_usage("gpt-4o", Usage(input=1), timestamp="yesterday")


def test_timestamp_charges_the_budget_window_of_its_day() -> None:
    """A call recorded with its own time counts in the daily window of that time, not today's."""
    from tokencost import Budget

    now = dt.datetime(2026, 3, 2, 9, tzinfo=dt.timezone.utc).timestamp()
    t = CostTracker(
        print_summary=False, linkup_api_key=False, budgets=[Budget(limit_usd="0.30", window="day")], clock=lambda: now
    )
    try:
        # gpt-4o: 100,000 x $2.50 + 10,000 x $10 per million = $0.35, over the day's $0.30
        t.track("gpt-4o", 100_000, 10_000, timestamp=now - 86_400)  # yesterday
        assert t.can_afford("gpt-4o", max_tokens=10)
        t.track("gpt-4o", 100_000, 10_000)  # today
        assert not t.can_afford("gpt-4o", max_tokens=10)
    finally:
        t.close()


BAD_TYPES: list[tuple[dict[str, Any], str]] = [
    ({"audio_input_tokens": 1.0}, "audio_input_tokens"),
    ({"audio_output_tokens": "3"}, "audio_output_tokens"),
    ({"cache_write_1h_tokens": None}, "cache_write_1h_tokens"),
    ({"image_input_tokens": True}, "image_input_tokens"),
    ({"web_search_requests": 2.5}, "web_search_requests"),
    ({"service_tier": 1}, "service_tier"),
    ({"timestamp": "2026-01-01"}, "timestamp"),
    ({"timestamp": True}, "timestamp"),
]


@pytest.mark.parametrize(("kwargs", "name"), BAD_TYPES)
def test_wrong_types_raise_type_error_naming_the_argument(
    tracker: CostTracker, kwargs: dict[str, Any], name: str
) -> None:
    with pytest.raises(TypeError, match=name):
        tracker.track("gpt-4o", 1_000, 100, **kwargs)
    assert tracker.request_count == 0


BAD_VALUES: list[tuple[dict[str, Any], str]] = [
    ({"audio_input_tokens": -1}, "audio_input_tokens must not be negative"),
    ({"web_search_requests": -2}, "web_search_requests must not be negative"),
    ({"audio_input_tokens": 800, "cache_read_tokens": 300}, "prompt_tokens"),
    ({"image_input_tokens": 1_001}, "prompt_tokens"),
    ({"audio_output_tokens": 101}, "completion_tokens"),
    ({"audio_output_tokens": 60, "reasoning_tokens": 50}, "completion_tokens"),
    ({"cache_write_1h_tokens": 10}, "cache_write_1h_tokens"),
    ({"cache_write_tokens": 5, "cache_write_1h_tokens": 6}, "cache_write_1h_tokens"),
    ({"service_tier": "turbo"}, "service_tier"),
    ({"service_tier": ""}, "service_tier"),
    ({"timestamp": -1}, "timestamp"),
    ({"timestamp": float("nan")}, "timestamp"),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD_VALUES)
def test_bad_values_raise_value_error(tracker: CostTracker, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tracker.track("gpt-4o", 1_000, 100, **kwargs)
    assert tracker.request_count == 0


def test_the_new_arguments_are_keyword_only(tracker: CostTracker) -> None:
    with pytest.raises(TypeError):
        tracker.track("gpt-4o", 1_000, 100, None, 0, 0, 0, None, 10)  # type: ignore[misc]


def test_parts_equal_to_the_whole_are_fine(tracker: CostTracker) -> None:
    event = tracker.track(
        "gpt-audio", 1_000, 500, audio_input_tokens=1_000, audio_output_tokens=300, reasoning_tokens=200
    )
    assert event.usage == Usage(audio_in=1_000, reasoning=200, audio_out=300)

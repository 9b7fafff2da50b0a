"""Exact pricing: usage buckets, the worked cases of README.md ("How pricing works"), overrides, unknown models."""

from __future__ import annotations

import logging
from decimal import Decimal
from pathlib import Path

import pytest

from tokencost import CostTracker, Price, register_price
from tokencost.money import from_units, parse_amount, to_units
from tokencost.pricing import override
from tokencost.pricing.litellm_map import LitellmMapSource
from tokencost.usage import Usage, UsageError, from_litellm_usage, from_openai_counts


def _cost(model: str, usage: Usage) -> Decimal:
    price = LitellmMapSource().lookup(model, None)
    assert price is not None
    return from_units(price.cost_units(usage))


def test_gpt4o_cached_prompt_costs_two_cents() -> None:
    """gpt-4o with 10,000 prompt tokens (8,000 cached) and 500 output costs exactly $0.02."""
    usage = from_openai_counts(10_000, 500, cache_read_tokens=8_000)
    assert _cost("gpt-4o", usage) == Decimal("0.02")


def test_o3_reasoning_tokens_billed_once_at_output_price() -> None:
    """o3 with 2,000 prompt and 4,000 completion tokens (3,500 reasoning) costs exactly $0.036."""
    usage = from_openai_counts(2_000, 4_000, reasoning_tokens=3_500)
    assert usage.output == 500 and usage.reasoning == 3_500
    assert _cost("o3", usage) == Decimal("0.036")


def test_anthropic_cache_write_and_read_are_not_billed_twice() -> None:
    """claude-sonnet-4-5: 100 input + 2,000 cache write + 8,000 cache read + 500 output costs exactly $0.0177."""
    litellm_usage = {
        "prompt_tokens": 10_100,
        "completion_tokens": 500,
        "cache_creation_input_tokens": 2_000,
        "cache_read_input_tokens": 8_000,
        "prompt_tokens_details": {"cached_tokens": 8_000},
    }
    usage = from_litellm_usage(litellm_usage)
    assert (usage.input, usage.cache_write, usage.cache_read, usage.output) == (100, 2_000, 8_000, 500)
    assert _cost("claude-sonnet-4-5", usage) == Decimal("0.0177")


def test_eight_hundred_two_cent_calls_sum_exactly(tracker: CostTracker) -> None:
    """800 calls of $0.02 sum to exactly $16.00, where float addition drifts."""
    for _ in range(800):
        tracker.track(model="gpt-4o", prompt_tokens=10_000, completion_tokens=500, cache_read_tokens=8_000)
    assert tracker.total_cost == Decimal("16.00")
    assert str(tracker.total_cost) == "16.00"
    assert sum([0.02] * 800) != 16.0  # the drift this avoids


def test_breakdown_and_savings_are_recorded(tracker: CostTracker) -> None:
    """Each event keeps its per-bucket cost, its price source, and what the cache read saved."""
    event = tracker.track(model="gpt-4o", prompt_tokens=10_000, completion_tokens=500, cache_read_tokens=8_000)
    assert event["cost_breakdown"] == {
        "input": Decimal("0.005"),
        "cache_read": Decimal("0.01"),
        "output": Decimal("0.005"),
    }
    assert sum(event["cost_breakdown"].values()) == event["cost"]
    assert event["price_source"] == "litellm" and event["priced"] is True
    assert tracker.saved_by_cache == Decimal("0.01")  # 8,000 x ($2.50 - $1.25) per million


def test_usage_parts_larger_than_whole_are_rejected() -> None:
    """More cached tokens than prompt tokens cannot be split into buckets."""
    with pytest.raises(UsageError):
        from_openai_counts(100, 10, cache_read_tokens=200)


@pytest.mark.parametrize(
    "usage", [None, {"prompt_tokens": -3}, {"prompt_tokens": "x"}, {"prompt_tokens": float("nan")}]
)
def test_malformed_usage_raises_usage_error(usage: object) -> None:
    """Missing, negative, text and NaN counts are refused with UsageError, never another exception."""
    with pytest.raises(UsageError):
        from_litellm_usage(usage)


def test_register_price_wins_over_litellm(tracker: CostTracker) -> None:
    """A registered price overrides litellm's map and the event says so."""
    register_price("gpt-4o-tokencost-test", input_per_mtok=4, output_per_mtok=12, cache_read_per_mtok="0.4")
    event = tracker.track(model="gpt-4o-tokencost-test", prompt_tokens=1_000_000, completion_tokens=1_000_000)
    assert event["cost"] == Decimal("16.00")
    assert event["price_source"] == "override"


def test_a_price_registered_later_reaches_a_running_tracker(
    tracker: CostTracker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model the tracker has already priced from litellm's map takes a price registered afterwards."""
    monkeypatch.setattr(override, "_REGISTERED", {})  # the registration ends with the test
    first = tracker.track(model="gpt-4-0613", prompt_tokens=1000, completion_tokens=0)
    assert first.price_source == "litellm"
    register_price("gpt-4-0613", input_per_mtok=2, output_per_mtok=4)
    second = tracker.track(model="gpt-4-0613", prompt_tokens=1000, completion_tokens=0)
    assert (second.cost, second.price_source) == (Decimal("0.002"), "override")


def test_prices_file_overrides_litellm(tmp_path: Path) -> None:
    """A TOML prices file given to the tracker wins over litellm's map for that tracker."""
    path = tmp_path / "prices.toml"
    path.write_text('["gpt-4o"]\ninput_per_mtok = 1\noutput_per_mtok = 2\n')
    tracker = CostTracker(prices=path, print_summary=False)
    event = tracker.track(model="gpt-4o", prompt_tokens=1_000_000, completion_tokens=1_000_000)
    assert event["cost"] == Decimal("3.00") and event["price_source"] == "override"
    tracker.close()


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('["acme-x"]\ninput_per_mtok = "abc"\noutput_per_mtok = 1\n', "acme-x"),
        ('["acme-y"]\ninput_per_mtok = -1\noutput_per_mtok = 1\n', "acme-y"),
        ('["acme-z"]\noutput_per_mtok = 1\n', "acme-z"),
        ("not toml [", "not a valid price file"),
    ],
)
def test_bad_prices_file_names_file_and_model(tmp_path: Path, text: str, needle: str) -> None:
    """A bad entry raises ValueError at construction naming the file and the model."""
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=needle) as info:
        CostTracker(prices=path, print_summary=False)
    assert str(path) in str(info.value)


def test_unknown_model_is_unpriced_not_zero(tracker: CostTracker, caplog: pytest.LogCaptureFixture) -> None:
    """A model no source prices is recorded unpriced, counted, and logged once; never as $0."""
    caplog.set_level(logging.WARNING, logger="tokencost")
    for _ in range(3):
        event = tracker.track(model="acme-unknown-9000", prompt_tokens=10, completion_tokens=5)
        assert event["cost"] is None and event["priced"] is False
    assert tracker.unpriced_count == 3
    assert tracker.request_count == 3
    assert tracker.total_cost == Decimal("0.00")
    assert [r.message for r in caplog.records].count(caplog.records[0].message) == 1
    assert "acme-unknown-9000" in caplog.records[0].message


@pytest.mark.parametrize("value", [-1, "abc", float("nan"), float("inf"), True, [1]])
def test_bad_amounts_are_rejected(value: object) -> None:
    """Negative, non-numeric, NaN, infinite and boolean amounts raise ValueError or TypeError."""
    with pytest.raises((ValueError, TypeError)):
        parse_amount(value, "budget")


def test_money_round_trips_through_units() -> None:
    """Pico-dollar units convert to Decimal and back without loss."""
    for text in ("0.02", "0.0177", "16.00", "0.000000000001", "123456.789"):
        assert from_units(to_units(Decimal(text))) == Decimal(text)


def test_price_fallbacks_bill_cache_like_input() -> None:
    """A price with no cache price bills cache reads and writes at the input price, reasoning at output."""
    price = Price.per_mtok(2, 8)
    usage = Usage(input=1_000_000, cache_read=1_000_000, reasoning=1_000_000)
    assert from_units(price.cost_units(usage)) == Decimal("12.00")


def test_long_prompt_is_billed_at_the_tier_price(tracker: CostTracker) -> None:
    """gemini-2.5-pro above 200k prompt tokens is billed at litellm's above-200k prices, exactly."""
    event = tracker.track(model="gemini-2.5-pro", prompt_tokens=300_000, completion_tokens=1_000)
    # 300,000 x $2.50 + 1,000 x $15 per 1M (the tier's prices) = $0.765
    assert event.cost == Decimal("0.765")
    assert event.price_source == "litellm"
    short = tracker.track(model="gemini-2.5-pro", prompt_tokens=100_000, completion_tokens=1_000)
    assert short.cost == Decimal("0.135")  # 100,000 x $1.25 + 1,000 x $10 per 1M


class _ContractPrices:
    """A user's own price source: negotiated prices for one model, and a model nobody else knows."""

    name = "contract"

    def __init__(self) -> None:
        self.asked: list[tuple[str, str | None]] = []

    def lookup(self, model: str, provider: str | None) -> Price | None:
        self.asked.append((model, provider))
        if model in ("gpt-4o", "in-house-model"):
            return Price.per_mtok(1, 2, source="contract")
        return None


def test_own_price_sources_come_after_prices_and_before_litellm_map() -> None:
    """CostTracker(sources=[...]) puts the user's sources in the chain: prices= still wins, then the user's
    source (over litellm's map), and models it does not know fall through to litellm's map."""
    contract = _ContractPrices()
    tracker = CostTracker(
        sources=[contract], prices={"gpt-4o-mini": {"input_per_mtok": 10, "output_per_mtok": 20}}, print_summary=False
    )
    try:
        negotiated = tracker.track(model="gpt-4o", prompt_tokens=1_000_000, completion_tokens=1_000_000)
        assert negotiated.cost == Decimal("3") and negotiated.price_source == "contract"
        own_model = tracker.track(model="in-house-model", prompt_tokens=500_000, completion_tokens=0)
        assert own_model.cost == Decimal("0.5")
        overridden = tracker.track(model="gpt-4o-mini", prompt_tokens=100_000, completion_tokens=0)
        assert overridden.cost == Decimal("1") and ("gpt-4o-mini", "openai") not in contract.asked
        from_map = tracker.track(model="o3", prompt_tokens=1_000_000, completion_tokens=0)
        assert from_map.cost == _cost("o3", Usage(input=1_000_000)) and from_map.price_source == "litellm"
    finally:
        tracker.close()


def test_own_price_sources_must_be_price_sources() -> None:
    with pytest.raises(TypeError, match="sources must hold price sources"):
        CostTracker(sources=[object()], print_summary=False)  # type: ignore[list-item]

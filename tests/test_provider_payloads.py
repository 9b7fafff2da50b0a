"""Real provider-shaped payloads (tests/fixtures), each priced by hand from the provider's published prices (issue 16).

Every test writes the per-token prices it uses (USD per million tokens, from the provider's price page) and the
arithmetic; the expected cost is that arithmetic, not a figure read from tokencost's output.
"""

from __future__ import annotations

import json
import os

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import litellm
import pytest

from tokencost import CostTracker, Price, Usage
from tokencost.events import Event
from tokencost.extractors import extract_usage
from tokencost.pricing.genai_prices import GenaiPricesSource
from tokencost.testing import FakeProvider
from tokencost.usage import UsageError
from tokencost.wrappers import track_response

FIXTURES = Path(__file__).parent / "fixtures"
MESSAGES = [{"role": "user", "content": "hi"}]
M = Decimal(1_000_000)


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture
def tracker() -> Iterator[CostTracker]:
    t = CostTracker(print_summary=False)
    litellm.callbacks = [t]
    yield t
    t.close()


def last_event(tracker: CostTracker) -> Event:
    assert tracker.history  # a view: waits for litellm's success event of the call just made
    return tracker.store.events(tracker.name)[-1]


def test_bedrock_converse_claude_with_cache(tracker: CostTracker) -> None:
    """Bedrock Converse: ``inputTokens`` excludes the cache reads and writes (today's fixture was unpriced).

    Claude Sonnet 4.5 on Bedrock (aws.amazon.com/bedrock/pricing, on-demand): input $3, output $15,
    cache write $3.75, cache read $0.30 per million tokens.
    1,200 x 3 + 10,000 x 0.30 + 2,000 x 3.75 + 400 x 15 = 3,600 + 3,000 + 7,500 + 6,000 = 20,100 per million.
    """
    payload = load("bedrock_converse_claude_cached.json")
    assert extract_usage("bedrock", payload) == Usage(input=1_200, cache_read=10_000, cache_write=2_000, output=400)
    event = track_response(tracker, "bedrock", "anthropic.claude-sonnet-4-5-20250929-v1:0", payload)
    expected = (1_200 * Decimal(3) + 10_000 * Decimal("0.30") + 2_000 * Decimal("3.75") + 400 * Decimal(15)) / M
    assert expected == Decimal("0.0201")
    assert event.cost == expected
    # A ConverseStream metadata event carries the same block.
    assert extract_usage("bedrock", {"metadata": {"usage": payload["usage"]}}) == event.usage


def test_vertex_claude_message_reads_anthropic_shape(tracker: CostTracker) -> None:
    """Claude on Vertex AI answers in Anthropic's Messages shape (``input_tokens`` excludes cache reads).

    Vertex AI pricing for Claude Sonnet 4.5 (cloud.google.com/vertex-ai/generative-ai/pricing, global endpoint):
    input $3, cache read $0.30, output $15 per million tokens.
    2,500 x 3 + 5,000 x 0.30 + 700 x 15 = 7,500 + 1,500 + 10,500 = 19,500 per million.
    """
    payload = load("vertex_claude_message.json")
    assert extract_usage("vertex_ai", payload) == Usage(input=2_500, cache_read=5_000, output=700)
    event = track_response(tracker, "vertex_ai", "claude-sonnet-4-5@20250929", payload)
    assert event.cost == (2_500 * Decimal(3) + 5_000 * Decimal("0.30") + 700 * Decimal(15)) / M == Decimal("0.0195")
    # Gemini answers on the same provider are still read as Gemini.
    gemini = {"usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15}}
    assert extract_usage("vertex_ai", gemini) == Usage(input=10, output=5)


def test_openrouter_is_priced_at_its_own_bill(tracker: CostTracker) -> None:
    """OpenRouter's ``usage.cost`` is what it charged: the event is priced at it, and says so.

    OpenRouter's anthropic/claude-sonnet-4.5 page: $3 input, $15 output per million tokens;
    1,500 x 3 + 300 x 15 = 4,500 + 4,500 = 9,000 per million = $0.009, the ``cost`` the payload reports.
    """
    payload = load("openrouter_chat_cost.json")
    event = track_response(tracker, "openrouter", "anthropic/claude-sonnet-4.5", payload)
    assert event.cost == (1_500 * Decimal(3) + 300 * Decimal(15)) / M == Decimal("0.009")
    assert event.price_source == "provider"
    assert event.usage.prompt_tokens == 1_500
    assert event.usage.completion_tokens == 300


def test_openrouter_bill_is_used_on_the_litellm_path(tracker: CostTracker, fake: FakeProvider) -> None:
    """Through litellm too, OpenRouter's ``usage.cost`` is the event's cost (litellm keeps it on its Usage)."""
    payload = load("openrouter_chat_cost.json")["usage"]
    fake.set_raw_usage("anthropic/claude-sonnet-4.5", payload)
    litellm.completion(
        model="openrouter/anthropic/claude-sonnet-4.5",
        messages=MESSAGES,
        api_base=fake.openai_base,
        api_key="sk-fake",
        max_retries=0,
    )
    event = last_event(tracker)
    assert event.cost == Decimal("0.009")
    assert event.price_source == "provider"


@pytest.mark.parametrize("cost", [-1, "lots", float("nan"), True, None])
def test_openrouter_bill_that_is_not_an_amount_is_ignored(tracker: CostTracker, cost: Any) -> None:
    """A ``cost`` that is no amount is not a bill: the call is priced from the price list, or unpriced."""
    payload = load("openrouter_chat_cost.json")
    payload["usage"]["cost"] = cost
    event = track_response(tracker, "openrouter", "anthropic/claude-sonnet-4.5", payload)
    assert event.price_source != "provider"


def test_azure_priced_by_the_model_that_ran(tracker: CostTracker) -> None:
    """An Azure deployment named ``my-gpt4o`` answering as ``gpt-4o-2024-05-13`` is billed as that model.

    Azure OpenAI pricing (azure.microsoft.com/pricing/details/cognitive-services/openai-service),
    GPT-4o 2024-05-13 global: input $5, output $15 per million tokens.
    2,000 x 5 + 500 x 15 = 10,000 + 7,500 = 17,500 per million.
    """
    payload = load("azure_gpt_4o_deployment.json")
    event = track_response(tracker, "azure", "my-gpt4o", payload)
    assert event.model == "gpt-4o-2024-05-13"
    assert event.cost == (2_000 * Decimal(5) + 500 * Decimal(15)) / M == Decimal("0.0175")


@pytest.mark.parametrize(
    "settings",
    [
        {},  # the response's model
        {"base_model": "azure/gpt-4o-2024-05-13"},  # litellm's base_model
        {"model_info": {"base_model": "azure/gpt-4o-2024-05-13"}},  # litellm's model_info
    ],
)
def test_azure_on_the_litellm_path_respects_base_model(tracker: CostTracker, settings: dict[str, Any]) -> None:
    """litellm's Azure calls are priced by ``base_model`` / ``model_info``, else the model the response names.

    Same prices as above: 2,000 x $5/M + 500 x $15/M = $0.0175.
    """
    reported = "my-gpt4o" if settings else "gpt-4o-2024-05-13"
    usage = litellm.Usage(prompt_tokens=2_000, completion_tokens=500, total_tokens=2_500)
    litellm.completion(
        model="azure/my-gpt4o",
        messages=MESSAGES,
        mock_response=litellm.ModelResponse(model=reported, usage=usage),
        api_key="fake",
        api_base="http://127.0.0.1:9",
        api_version="2024-10-21",
        **settings,
    )
    event = last_event(tracker)
    assert event.model == "gpt-4o-2024-05-13"
    assert event.cost == Decimal("0.0175")


def test_xai_reasoning_tokens_are_billed_as_output(tracker: CostTracker) -> None:
    """xAI's ``completion_tokens`` (200) leaves out the 800 reasoning tokens that ``total_tokens`` counts.

    xAI's grok-4.3 (docs.x.ai models page, as in litellm's map): input $1.25, cached input $0.20,
    output $2.50 per million tokens; reasoning is billed as output.
    600 x 1.25 + 400 x 0.20 + (200 + 800) x 2.50 = 750 + 80 + 2,500 = 3,330 per million.
    """
    payload = load("xai_grok_reasoning.json")
    assert extract_usage("xai", payload) == Usage(input=600, cache_read=400, output=200, reasoning=800)
    event = track_response(tracker, "xai", "grok-4.3", payload)
    assert event.cost == (600 * Decimal("1.25") + 400 * Decimal("0.20") + 1_000 * Decimal("2.50")) / M
    assert event.cost == Decimal("0.00333")
    # Already normalized (total = prompt + completion, as litellm hands it on): not added twice.
    folded = {**payload["usage"], "completion_tokens": 1_000}
    assert extract_usage("xai", {"usage": folded}) == event.usage


def test_gemini_cached_audio_is_read_once(tracker: CostTracker) -> None:
    """Gemini: 2,000 prompt tokens (1,200 text, 800 audio), 1,200 of them cached (800 text, 400 audio).

    Billed: 400 text and 400 audio input tokens, 800 text and 400 audio cache reads, 300 output.
    """
    payload = load("gemini_2_5_flash_cached_audio.json")
    assert extract_usage("gemini", payload) == Usage(
        input=400, cache_read=800, cache_read_audio=400, output=300, audio_in=400
    )


@pytest.mark.skipif(
    "cache_read_input_audio_token_cost" not in litellm.model_cost["gemini/gemini-2.5-flash"],
    reason="this litellm's map has no cached-audio price for gemini-2.5-flash (litellm 1.98): it bills the text "
    "cache price, as litellm does; the genai-prices test below checks the price page",
)
def test_gemini_cached_audio_price(tracker: CostTracker) -> None:
    """gemini-2.5-flash (ai.google.dev/gemini-api/docs/pricing, paid tier): input text $0.30, audio $1.00;
    context caching text $0.03, audio $0.10; output $2.50 per million tokens.
    400 x 0.30 + 400 x 1.00 + 800 x 0.03 + 400 x 0.10 + 300 x 2.50 = 120 + 400 + 24 + 40 + 750 = 1,334 per million.
    """
    event = track_response(tracker, "gemini", "gemini-2.5-flash", load("gemini_2_5_flash_cached_audio.json"))
    assert event.cost == Decimal("0.001334")
    assert event.breakdown_units["cache_read_audio"] == 400 * 100_000  # 400 x $0.10 per million, in pico-dollars
    # Saved: the text reads against text input, the audio reads against audio input:
    # 800 x (0.30 - 0.03) + 400 x (1.00 - 0.10) = 216 + 360 = 576 per million.
    assert event.saved_units == 576 * 10**6


def test_gemini_cached_audio_price_from_genai_prices() -> None:
    """The same call priced by genai-prices (its ``cache_audio_read_mtok``, $0.10 for gemini-2.5-flash): the same
    $0.001334 as litellm's map and the price page."""
    genai = CostTracker(sources=[GenaiPricesSource()], print_summary=False, linkup_api_key=False)
    try:
        event = track_response(genai, "gemini", "gemini-2.5-flash", load("gemini_2_5_flash_cached_audio.json"))
        assert event.price_source == "genai-prices"
        assert event.price is not None and event.price.cache_read_audio == Decimal("0.1") / M
        assert event.cost == Decimal("0.001334")
    finally:
        genai.close()


class RealtimeMiniPrices:
    """gpt-realtime-mini (openai.com/api/pricing): text $0.60 input, $0.06 cached, $2.40 output; audio $10 input,
    $0.30 cached, $20 output per million tokens."""

    name = "price-page"

    def lookup(self, model: str, provider: str | None) -> Price | None:
        if model != "gpt-realtime-mini":
            return None
        per_token = {"input": "0.60", "cache_read": "0.06", "output": "2.40", "audio_in": "10",
                     "cache_read_audio": "0.30", "audio_out": "20"}  # fmt: skip
        return Price(**{bucket: Decimal(value) / M for bucket, value in per_token.items()}, source=self.name)


def test_openai_realtime_cached_audio_is_read_and_priced() -> None:
    """A Realtime API ``response.done``: 3,000 input tokens (1,000 text + 2,000 audio), 2,100 of them cached
    (600 text + 1,500 audio; ``input_token_details.cached_tokens_details``), 500 output (100 text + 400 audio).

    400 x 0.60 + 600 x 0.06 + 500 x 10 + 1,500 x 0.30 + 100 x 2.40 + 400 x 20
    = 240 + 36 + 5,000 + 450 + 240 + 8,000 = 13,966 per million.
    """
    response = load("openai_realtime_response_done_cached_audio.json")["response"]
    expected = Usage(input=400, cache_read=600, cache_read_audio=1_500, audio_in=500, output=100, audio_out=400)
    assert extract_usage("openai", response) == expected
    tracker = CostTracker(sources=[RealtimeMiniPrices()], print_summary=False, linkup_api_key=False)
    try:
        event = track_response(tracker, "openai", "gpt-realtime-mini", response)
        assert event.price_source == "price-page"
        assert event.usage == expected
        assert event.cost == Decimal("0.013966")
    finally:
        tracker.close()


def test_perplexity_without_an_extractor_is_read_as_openai(tracker: CostTracker) -> None:
    """Perplexity has no extractor: its OpenAI-shaped usage is read by default.

    Perplexity sonar (docs.perplexity.ai pricing): $1 input, $1 output per million tokens.
    12 x 1 + 300 x 1 = 312 per million: the tokens; its request fee ($5 per 1,000 requests at low search context)
    is not read from the payload and is left out here.
    """
    payload = {"model": "sonar", "usage": {"prompt_tokens": 12, "completion_tokens": 300, "total_tokens": 312}}
    event = track_response(tracker, "perplexity", "sonar", payload)
    assert event.usage == Usage(input=12, output=300)
    assert event.cost == (12 * Decimal(1) + 300 * Decimal(1)) / M == Decimal("0.000312")


# -- what else than tokens a call is billed by --------------------------------------------------------------------
ANTHROPIC_1H = Usage(
    input=100, cache_read=8_000, cache_write=1_000, cache_write_1h=2_000, output=500, web_search_requests=3
)


def test_anthropic_one_hour_cache_writes_and_web_searches_are_read() -> None:
    """``cache_creation`` splits the 3,000 cache writes into 1,000 (5 minutes) and 2,000 (1 hour);
    ``server_tool_use`` counts 3 web searches; ``service_tier: "standard"`` is the standard tier (None)."""
    assert extract_usage("anthropic", load("anthropic_message_cache_1h_web_search.json")) == ANTHROPIC_1H


def test_anthropic_one_hour_writes_are_billed_at_their_own_price(tracker: CostTracker) -> None:
    """claude-sonnet-4-20250514 (anthropic.com/pricing): 1-hour cache writes $6 per million, 5-minute $3.75.

    genai-prices carries both: 2,000 x 6 = 12,000 and 1,000 x 3.75 = 3,750 per million. It has no web search fee
    for this model, so the searches are taken out here (with them the call is unpriced, never billed without them).
    """
    # genai-prices is asked first: litellm 1.98's map still has this model (1.110's dropped it).
    genai = CostTracker(sources=[GenaiPricesSource()], print_summary=False, linkup_api_key=False)
    body = load("anthropic_message_cache_1h_web_search.json")
    body["usage"].pop("server_tool_use", None)
    event = track_response(genai, "anthropic", "claude-sonnet-4-20250514", body)
    assert event.price_source == "genai-prices"
    assert event.breakdown_units["cache_write_1h"] == 2_000 * 6 * 10**6
    assert event.breakdown_units["cache_write"] == 1_000 * 3_750_000
    searched = track_response(
        genai, "anthropic", "claude-sonnet-4-20250514", load("anthropic_message_cache_1h_web_search.json")
    )
    assert searched.cost is None and "no web search price" in (searched.reason or "")
    genai.close()


def test_anthropic_cache_1h_web_search_price(tracker: CostTracker) -> None:
    """claude-sonnet-4-5 (anthropic.com/pricing): input $3, cache read $0.30, 5-minute write $3.75, 1-hour write
    $6, output $15 per million; web search $10 per 1,000 searches.
    100 x 3 + 8,000 x 0.30 + 1,000 x 3.75 + 2,000 x 6 + 500 x 15 = 300 + 2,400 + 3,750 + 12,000 + 7,500
    = 25,950 per million = $0.02595, plus 3 x $0.01 = $0.05595.
    """
    event = track_response(
        tracker, "anthropic", "claude-sonnet-4-5", load("anthropic_message_cache_1h_web_search.json")
    )
    assert event.cost == Decimal("0.05595")


def test_anthropic_inference_geo_and_priority_tier_are_read() -> None:
    usage = {**load("anthropic_message_cache_1h_web_search.json")["usage"], "inference_geo": "us"}
    usage["service_tier"] = "priority"
    read = extract_usage("anthropic", {"usage": usage})
    assert (read.inference_geo, read.service_tier) == ("us", "priority")


@pytest.mark.parametrize(
    ("tier", "read"), [("flex", "flex"), ("priority", "priority"), ("default", None), (None, None)]
)
def test_openai_service_tier_is_read_from_the_response(tier: str | None, read: str | None) -> None:
    """OpenAI reports the tier that served the call at the response's top level (``"default"`` is standard)."""
    payload = {**load("openai_chat_cached.json"), "service_tier": tier}
    assert extract_usage("openai", payload).service_tier == read


def test_bedrock_cache_details_split_one_hour_writes() -> None:
    """Converse ``cacheDetails`` gives the cache writes by TTL."""
    payload = load("bedrock_converse_claude_cached.json")
    payload["usage"]["cacheDetails"] = [{"ttl": "5m", "inputTokens": 500}, {"ttl": "1h", "inputTokens": 1_500}]
    read = extract_usage("bedrock", payload)
    assert (read.cache_write, read.cache_write_1h) == (500, 1_500)


def test_one_hour_writes_above_the_writes_are_a_usage_error() -> None:
    usage = {"input_tokens": 1, "output_tokens": 1, "cache_creation_input_tokens": 10}
    usage["cache_creation"] = {"ephemeral_1h_input_tokens": 50}  # type: ignore[assignment]
    with pytest.raises(UsageError, match="1-hour cache writes"):
        extract_usage("anthropic", {"usage": usage})


def test_litellm_path_reads_the_same_billing_facts(tracker: CostTracker, fake: FakeProvider) -> None:
    """Through litellm, the Anthropic payload gives the same buckets, web searches and tier as its raw JSON."""
    fake.set_raw_usage("claude-sonnet-4-5", load("anthropic_message_cache_1h_web_search.json")["usage"])
    litellm.completion(
        model="anthropic/claude-sonnet-4-5", messages=MESSAGES, api_base=fake.anthropic_base, api_key="fake"
    )
    assert last_event(tracker).usage == ANTHROPIC_1H


def test_litellm_path_reads_the_requested_service_tier(tracker: CostTracker, fake: FakeProvider) -> None:
    """An OpenAI call asking for ``service_tier="flex"`` is recorded with that tier (the fake does not echo it)."""
    fake.set_openai_usage("gpt-5", prompt_tokens=1_000, completion_tokens=100)
    litellm.completion(
        model="openai/gpt-5",
        messages=MESSAGES,
        api_base=fake.openai_base,
        api_key="sk-fake",
        max_retries=0,
        service_tier="flex",
    )
    assert last_event(tracker).usage.service_tier == "flex"

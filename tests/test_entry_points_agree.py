"""One payload, one cost: the litellm callback, ``track_response``, the SDK wrapper and ``track()`` agree (issue 16).

Each case is a usage payload as the provider sends it. It goes through litellm (the loopback fake provider, or
litellm's own transformation of a Gemini payload handed to ``mock_response``), through ``track_response`` as the
raw provider JSON, through ``wrap_openai`` for OpenAI-shaped services, and through ``track()`` with the counts in
OpenAI's convention; every path must give the same buckets and the same cost.
"""

from __future__ import annotations

import os

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import litellm
import openai
import pytest
from litellm.llms.vertex_ai.gemini.vertex_and_google_ai_studio_gemini import VertexGeminiConfig
from litellm.types.utils import PromptTokensDetailsWrapper

from tokencost import CostTracker, Usage
from tokencost.events import Event
from tokencost.litellm_calls import STREAM_ESTIMATED
from tokencost.testing import FakeProvider
from tokencost.wrappers import track_response, wrap_openai

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture
def tracker() -> Iterator[CostTracker]:
    t = CostTracker(print_summary=False)
    litellm.callbacks = [t]
    yield t
    t.close()


def last_event(tracker: CostTracker) -> Event:
    assert tracker.history  # a view: waits for litellm's success event of the call just made
    events = tracker.store.events(tracker.name)
    assert events, "nothing was recorded"
    return events[-1]


def through_litellm(tracker: CostTracker, fake: FakeProvider, provider: str, model: str, usage: Any) -> Event:
    fake.set_raw_usage(model, usage)
    litellm.completion(
        model=f"{provider}/{model}", messages=MESSAGES, api_base=fake.openai_base, api_key="sk-fake", max_retries=0
    )
    return last_event(tracker)


def through_wrapper(tracker: CostTracker, fake: FakeProvider, provider: str, model: str, usage: Any) -> Event:
    fake.set_raw_usage(model, usage)
    client = wrap_openai(
        tracker, openai.OpenAI(base_url=fake.openai_base, api_key="sk-fake", max_retries=0), provider=provider
    )
    client.chat.completions.create(model=model, messages=MESSAGES)  # type: ignore[arg-type]
    return last_event(tracker)


# provider, model, the provider's usage JSON, the buckets it bills, track()'s keywords for the same call
OPENAI_SHAPED = [
    pytest.param(
        "deepseek",
        "deepseek-chat",
        # DeepSeek's own cache fields, without prompt_tokens_details (its older API)
        {"prompt_tokens": 10_000, "completion_tokens": 1_000, "total_tokens": 11_000,
         "prompt_cache_hit_tokens": 6_000, "prompt_cache_miss_tokens": 4_000},
        Usage(input=4_000, cache_read=6_000, output=1_000),
        {"prompt_tokens": 10_000, "completion_tokens": 1_000, "cache_read_tokens": 6_000},
        id="deepseek-cache-hits",
    ),
    pytest.param(
        "xai",
        "grok-4.3",
        # xAI leaves the reasoning tokens out of completion_tokens (total_tokens counts them)
        {"prompt_tokens": 1_000, "completion_tokens": 200, "total_tokens": 2_000,
         "prompt_tokens_details": {"cached_tokens": 400},
         "completion_tokens_details": {"reasoning_tokens": 800}},
        Usage(input=600, cache_read=400, output=200, reasoning=800),
        {"prompt_tokens": 1_000, "completion_tokens": 1_000, "cache_read_tokens": 400, "reasoning_tokens": 800},
        id="xai-reasoning",
    ),
    pytest.param(
        "openai",
        "gpt-4o",
        # image tokens in the prompt details
        {"prompt_tokens": 5_000, "completion_tokens": 100, "total_tokens": 5_100,
         "prompt_tokens_details": {"cached_tokens": 0, "image_tokens": 3_000}},
        Usage(input=2_000, output=100, image=3_000),
        {"prompt_tokens": 5_000, "completion_tokens": 100, "image_input_tokens": 3_000},
        id="openai-image-tokens",
    ),
    pytest.param(
        "openai",
        "gpt-realtime-mini",
        # cached audio in the cache reads' details (litellm's own shape for it, as its Gemini usage carries it)
        {"prompt_tokens": 3_000, "completion_tokens": 500, "total_tokens": 3_500,
         "prompt_tokens_details": {"cached_tokens": 2_100, "audio_tokens": 2_000,
                                   "cached_tokens_details": {"text_tokens": 600, "audio_tokens": 1_500}},
         "completion_tokens_details": {"audio_tokens": 400}},
        Usage(input=400, cache_read=600, cache_read_audio=1_500, audio_in=500, output=100, audio_out=400),
        None,  # track() has no keyword for cached audio
        id="openai-cached-audio",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("provider", "model", "payload", "buckets", "counts"), OPENAI_SHAPED)
def test_openai_shaped_payload_costs_the_same_on_every_entry_point(
    tracker: CostTracker,
    fake: FakeProvider,
    provider: str,
    model: str,
    payload: dict[str, Any],
    buckets: Usage,
    counts: dict[str, int] | None,
) -> None:
    via_litellm = through_litellm(tracker, fake, provider, model, payload)
    via_response = track_response(tracker, provider, model, {"model": model, "usage": payload})
    via_wrapper = through_wrapper(tracker, fake, provider, model, payload)
    events = [via_litellm, via_response, via_wrapper]
    if counts is not None:
        events.append(tracker.track(model, provider=provider, **counts))
    for event in events:
        assert event.cost_units is not None, event.reason
        assert event.usage == buckets
    assert len({event.cost for event in events}) == 1, [event.cost for event in events]


GEMINI_CACHED_AUDIO = {
    "usageMetadata": {
        "promptTokenCount": 2_000,
        "candidatesTokenCount": 300,
        "totalTokenCount": 2_300,
        "cachedContentTokenCount": 1_200,
        "promptTokensDetails": [
            {"modality": "TEXT", "tokenCount": 1_200},
            {"modality": "AUDIO", "tokenCount": 800},
        ],
        "cacheTokensDetails": [{"modality": "TEXT", "tokenCount": 800}, {"modality": "AUDIO", "tokenCount": 400}],
    }
}
# litellm 1.110's Gemini usage keeps the cached tokens' modalities (prompt_tokens_details.cached_tokens_details);
# 1.98's subtracts the cached audio from the audio tokens and keeps only the cached total.
LITELLM_KEEPS_CACHED_AUDIO = "cached_tokens_details" in PromptTokensDetailsWrapper.model_fields


def through_litellm_gemini(tracker: CostTracker, rest: dict[str, Any]) -> Event:
    """A gemini-2.5-flash call through litellm, answered with litellm's own reading of the REST payload ``rest``
    (a mocked call: the callback sees what a real call gives)."""
    litellm_usage = VertexGeminiConfig._calculate_usage(rest)  # type: ignore[arg-type]
    mocked = litellm.ModelResponse(model="gemini-2.5-flash", usage=litellm_usage)
    litellm.completion(model="gemini/gemini-2.5-flash", messages=MESSAGES, mock_response=mocked)
    return last_event(tracker)


@pytest.mark.skipif(not LITELLM_KEEPS_CACHED_AUDIO, reason="this litellm's Gemini usage drops the cached audio")
def test_gemini_cached_audio_costs_the_same_through_litellm_and_track_response(tracker: CostTracker) -> None:
    """Cached audio is a cache read of its own, billed at its own price, through litellm and ``track_response``
    (Gemini's REST JSON, and the same JSON from Vertex AI).

    gemini-2.5-flash: 2,000 prompt tokens (1,200 text + 800 audio), 1,200 of them from the cache (800 text +
    400 audio), 300 output. Billed: 400 text input, 400 audio input, 800 text and 400 audio cache reads, 300 output.
    """
    via_litellm = through_litellm_gemini(tracker, GEMINI_CACHED_AUDIO)
    via_response = track_response(tracker, "gemini", "gemini-2.5-flash", GEMINI_CACHED_AUDIO)
    via_vertex = track_response(tracker, "vertex_ai", "gemini-2.5-flash", GEMINI_CACHED_AUDIO)
    expected = Usage(input=400, cache_read=800, cache_read_audio=400, output=300, audio_in=400)
    for event in (via_litellm, via_response, via_vertex):
        assert event.usage == expected
        # ai.google.dev/gemini-api/docs/pricing (and litellm's map): text $0.30/M, audio $1.00/M, cached text
        # $0.03/M, cached audio $0.10/M, output $2.50/M:
        # 400 x 0.30 + 400 x 1.00 + 800 x 0.03 + 400 x 0.10 + 300 x 2.50 = 120 + 400 + 24 + 40 + 750 per million
        assert event.cost == Decimal("0.001334"), (event.cost, event.price_source)


@pytest.mark.skipif(LITELLM_KEEPS_CACHED_AUDIO, reason="this litellm's Gemini usage keeps the cached audio")
def test_gemini_cached_audio_through_an_older_litellm_is_a_text_cache_read(tracker: CostTracker) -> None:
    """litellm before 1.110 hands the callback no cached audio (its usage has the uncached audio and the cached
    total): the 1,200 cached tokens are read as cache reads. ``track_response`` reads the payload itself and
    finds the 400 cached audio tokens; that litellm's map has no cached-audio price for gemini-2.5-flash, so
    they bill at the text cache price (as litellm bills them), and both paths cost the same."""
    assert "cache_read_input_audio_token_cost" not in litellm.model_cost["gemini/gemini-2.5-flash"]
    via_litellm = through_litellm_gemini(tracker, GEMINI_CACHED_AUDIO)
    via_response = track_response(tracker, "gemini", "gemini-2.5-flash", GEMINI_CACHED_AUDIO)
    assert via_litellm.usage == Usage(input=400, cache_read=1_200, output=300, audio_in=400)
    assert via_response.usage == Usage(input=400, cache_read=800, cache_read_audio=400, output=300, audio_in=400)
    # 400 x 0.30 + 400 x 1.00 + 1,200 x 0.03 + 300 x 2.50 = 120 + 400 + 36 + 750 per million
    assert via_litellm.cost == via_response.cost == Decimal("0.001306")


def test_litellm_normalized_anthropic_usage_reads_like_the_raw_payload(
    tracker: CostTracker, fake: FakeProvider
) -> None:
    """Anthropic through litellm (prompt includes the cache) and its raw JSON (it excludes it) give one cost."""
    raw = {
        "input_tokens": 100,
        "output_tokens": 500,
        "cache_read_input_tokens": 8_000,
        "cache_creation_input_tokens": 2_000,
    }
    fake.set_raw_usage("claude-sonnet-4-5", raw)
    litellm.completion(
        model="anthropic/claude-sonnet-4-5", messages=MESSAGES, api_base=fake.anthropic_base, api_key="fake"
    )
    via_litellm = last_event(tracker)
    via_response = track_response(tracker, "anthropic", "claude-sonnet-4-5", {"usage": raw})
    via_track = tracker.track(
        "claude-sonnet-4-5", 10_100, 500, provider="anthropic", cache_read_tokens=8_000, cache_write_tokens=2_000
    )
    expected = Usage(input=100, cache_read=8_000, cache_write=2_000, output=500)
    assert via_litellm.usage == via_response.usage == via_track.usage == expected
    assert via_litellm.cost == via_response.cost == via_track.cost == Decimal("0.0177")


def test_litellm_stream_that_did_not_ask_for_usage_is_recorded_estimated(
    tracker: CostTracker, fake: FakeProvider
) -> None:
    """An OpenAI stream without ``stream_options.include_usage`` carries no usage: litellm counted the tokens,
    and the event says it is an estimate. Asking for the usage gives the exact cost, the non-stream one."""
    fake.set_openai_usage("gpt-4o", prompt_tokens=10_000, completion_tokens=500, cached_tokens=8_000)
    call = {"model": "openai/gpt-4o", "messages": MESSAGES, "api_base": fake.openai_base, "api_key": "sk-fake"}
    list(litellm.completion(**call, stream=True))
    guessed = last_event(tracker)
    assert guessed.reason == STREAM_ESTIMATED
    assert guessed.usage.prompt_tokens != 10_000  # litellm's count of "hi", not the provider's
    list(litellm.completion(**call, stream=True, stream_options={"include_usage": True}))
    asked = last_event(tracker)
    assert asked.reason is None
    litellm.completion(**call)
    plain = last_event(tracker)
    # gpt-4o: 2,000 x $2.50/M + 8,000 x $1.25/M + 500 x $10/M = 0.005 + 0.01 + 0.005
    assert asked.cost == plain.cost == Decimal("0.02")


def test_anthropic_stream_always_carries_its_usage(tracker: CostTracker, fake: FakeProvider) -> None:
    """Anthropic streams report usage without being asked: not an estimate."""
    fake.set_anthropic_usage("claude-sonnet-4-5", input_tokens=100, output_tokens=500)
    stream = litellm.completion(
        model="anthropic/claude-sonnet-4-5",
        messages=MESSAGES,
        api_base=fake.anthropic_base,
        api_key="fake",
        stream=True,
    )
    list(stream)
    event = last_event(tracker)
    assert event.reason is None
    assert event.usage == Usage(input=100, output=500)


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_billing_facts_agree_on_every_entry_point(
    tracker: CostTracker, fake: FakeProvider, stream: bool
) -> None:
    """1-hour cache writes, web searches and the geo of one Anthropic payload read the same through litellm,
    ``track_response`` and ``wrap_anthropic`` (plain and streamed)."""
    import anthropic

    raw = {
        "input_tokens": 100,
        "output_tokens": 500,
        "cache_read_input_tokens": 8_000,
        "cache_creation_input_tokens": 3_000,
        "cache_creation": {"ephemeral_5m_input_tokens": 1_000, "ephemeral_1h_input_tokens": 2_000},
        "server_tool_use": {"web_search_requests": 3},
        "inference_geo": "us",
    }
    expected = Usage(
        input=100,
        cache_read=8_000,
        cache_write=1_000,
        cache_write_1h=2_000,
        output=500,
        web_search_requests=3,
        inference_geo="us",
    )
    fake.set_raw_usage("claude-sonnet-4-5", raw)
    litellm.completion(
        model="anthropic/claude-sonnet-4-5", messages=MESSAGES, api_base=fake.anthropic_base, api_key="fake"
    )
    via_litellm = last_event(tracker)
    via_response = track_response(tracker, "anthropic", "claude-sonnet-4-5", {"usage": raw})
    client = tracker.wrap_anthropic(anthropic.Anthropic(base_url=fake.anthropic_base, api_key="fake", max_retries=0))
    reply = client.messages.create(model="claude-sonnet-4-5", max_tokens=64, messages=MESSAGES, stream=stream)  # type: ignore[call-overload]
    if stream:
        list(reply)
    via_wrapper = last_event(tracker)
    assert via_litellm.usage == via_response.usage == via_wrapper.usage == expected
    assert via_litellm.cost == via_response.cost == via_wrapper.cost


# model, litellm's usage (OpenAI's convention, as litellm hands it to callbacks), the response's other fields,
# track()'s keywords for the same call, the buckets billed, the cost worked out from the provider's price page
MOCKED = [
    pytest.param(
        "gpt-audio",
        {"prompt_tokens": 1_000, "completion_tokens": 500, "total_tokens": 1_500,
         "prompt_tokens_details": {"audio_tokens": 800}, "completion_tokens_details": {"audio_tokens": 400}},
        {},
        {"audio_input_tokens": 800, "audio_output_tokens": 400},
        Usage(input=200, output=100, audio_in=800, audio_out=400),
        # openai.com/api/pricing, gpt-audio: text $2.50 / $10, audio $32 / $64 per million
        (200 * Decimal("2.5") + 800 * 32 + 100 * 10 + 400 * 64) / 1_000_000,
        id="openai-audio",
    ),
    pytest.param(
        "gpt-5",
        {"prompt_tokens": 10_000, "completion_tokens": 2_000, "total_tokens": 12_000,
         "prompt_tokens_details": {"cached_tokens": 4_000}},
        {"service_tier": "flex"},
        {"cache_read_tokens": 4_000, "service_tier": "flex"},
        Usage(input=6_000, cache_read=4_000, output=2_000, service_tier="flex"),
        # openai.com/api/pricing, gpt-5 flex: $0.625 input, $0.0625 cached, $5 output per million
        (6_000 * Decimal("0.625") + 4_000 * Decimal("0.0625") + 2_000 * 5) / 1_000_000,
        id="openai-flex-tier",
    ),
    pytest.param(
        "claude-sonnet-4-5",
        {"prompt_tokens": 10_000, "completion_tokens": 500, "total_tokens": 10_500,
         "cache_creation_input_tokens": 3_000,
         "prompt_tokens_details": {"cached_tokens": 0, "cache_creation_token_details":
                                   {"ephemeral_5m_input_tokens": 1_000, "ephemeral_1h_input_tokens": 2_000}},
         "server_tool_use": {"web_search_requests": 3}},
        {},
        {"cache_write_tokens": 3_000, "cache_write_1h_tokens": 2_000, "web_search_requests": 3},
        Usage(input=7_000, cache_write=1_000, cache_write_1h=2_000, output=500, web_search_requests=3),
        # anthropic.com/pricing: $3 input, $3.75 5-minute writes, $6 1-hour writes, $15 output per million;
        # web search $10 per 1,000 searches
        (7_000 * 3 + 1_000 * Decimal("3.75") + 2_000 * 6 + 500 * 15) / 1_000_000 + 3 * Decimal("0.01"),
        id="anthropic-1h-writes-and-searches",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("model", "usage", "fields", "keywords", "buckets", "expected"), MOCKED)
def test_track_keywords_cost_what_litellm_and_track_response_cost(
    tracker: CostTracker,
    model: str,
    usage: dict[str, Any],
    fields: dict[str, Any],
    keywords: dict[str, Any],
    buckets: Usage,
    expected: Decimal,
) -> None:
    """Audio, a service tier, 1-hour cache writes and web searches: one cost through the litellm callback (a
    mocked litellm call returning that usage), ``track_response`` and ``track()`` with the new keywords."""
    provider = "anthropic" if model.startswith("claude") else "openai"
    mocked = litellm.ModelResponse(model=model, usage=litellm.Usage(**usage), **fields)
    litellm.completion(model=f"{provider}/{model}", messages=MESSAGES, mock_response=mocked)
    via_litellm = last_event(tracker)
    via_response = track_response(tracker, "openai", model, {"model": model, "usage": usage, **fields})
    via_track = tracker.track(model, usage["prompt_tokens"], usage["completion_tokens"], provider=provider, **keywords)
    for event in (via_litellm, via_response, via_track):
        assert event.usage == buckets, event
        assert event.cost == expected, (event.cost, event.price_source, event.reason)

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


def test_gemini_cached_audio_costs_the_same_through_litellm_and_track_response(tracker: CostTracker) -> None:
    """Cached audio is read from the cache once, not also subtracted as audio input (litellm's Gemini usage).

    gemini-2.5-flash: 2,000 prompt tokens (1,200 text + 800 audio), 1,200 of them from the cache (800 text +
    400 audio), 300 output. Billed: 400 text input, 400 audio input, 1,200 cache reads, 300 output.
    """
    rest = {
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
    # litellm's own reading of that payload, handed back by a mocked call: the callback sees what a real call gives.
    litellm_usage = VertexGeminiConfig._calculate_usage(rest)  # type: ignore[arg-type]
    mocked = litellm.ModelResponse(model="gemini-2.5-flash", usage=litellm_usage)
    litellm.completion(model="gemini/gemini-2.5-flash", messages=MESSAGES, mock_response=mocked)
    via_litellm = last_event(tracker)
    via_response = track_response(tracker, "gemini", "gemini-2.5-flash", rest)
    expected = Usage(input=400, cache_read=1_200, output=300, audio_in=400)
    assert via_litellm.usage == expected
    assert via_response.usage == expected
    assert via_litellm.cost == via_response.cost
    # litellm's map: text $0.30/M, audio $1.00/M, cache read $0.03/M, output $2.50/M
    # 400 x 0.30 + 400 x 1.00 + 1,200 x 0.03 + 300 x 2.50 = 120 + 400 + 36 + 750 = $1,306 per million calls
    assert via_response.cost == Decimal("0.001306")


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

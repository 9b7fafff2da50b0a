"""Usage extractors for raw provider payloads, and ``track_response`` pricing them (issue 8)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import anthropic.types
import openai.types.chat
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import tokencost
from tokencost import CostTracker, Usage
from tokencost.extractors import (
    MAX_TOKENS,
    extract_usage,
    register_usage_extractor,
    registered_providers,
    usage_extractor,
)
from tokencost.usage import UsageError
from tokencost.wrappers import ESTIMATED, track_response

FIXTURES = Path(__file__).parent / "fixtures"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def as_objects(value: Any) -> Any:
    """Turn JSON into nested attribute objects, the way SDK responses are read."""
    if type(value) is dict:
        return SimpleNamespace(**{k: as_objects(v) for k, v in value.items()})
    if type(value) is list:
        return [as_objects(v) for v in value]
    return value


@pytest.fixture
def tracker() -> Iterator[CostTracker]:
    t = CostTracker(print_summary=False)
    yield t
    t.close()


# -- built-in extractors on recorded payloads -------------------------------------------------------------------
def test_openai_chat_fixture_splits_cache_and_costs_two_cents(tracker: CostTracker) -> None:
    """gpt-4o: 10,000 prompt tokens of which 8,000 cached, plus 500 output, cost exactly $0.02."""
    payload = load("openai_chat_cached.json")
    assert extract_usage("openai", payload) == Usage(input=2_000, cache_read=8_000, output=500)
    event = track_response(tracker, "openai", "gpt-4o", payload)
    assert event.cost == Decimal("0.02")
    assert event.price_source == "litellm"
    assert tracker.total_cost == Decimal("0.02")


def test_openai_chat_sdk_object_reads_like_the_dict() -> None:
    """The OpenAI SDK's ChatCompletion object gives the same buckets as its JSON."""
    payload = load("openai_chat_cached.json")
    sdk = openai.types.chat.ChatCompletion.model_validate(payload)
    assert extract_usage("openai", sdk) == extract_usage("openai", payload)
    assert extract_usage("openai", sdk.usage) == Usage(input=2_000, cache_read=8_000, output=500)


def test_openai_responses_fixture_prices_reasoning_and_cache(tracker: CostTracker) -> None:
    """o3 Responses API: 2,000 input (1,000 cached) + 4,000 output (3,500 reasoning) = $0.0345.

    1,000 x $2/M + 1,000 x $0.50/M + 500 x $8/M + 3,500 x $8/M.
    """
    payload = load("openai_responses_o3.json")
    assert extract_usage("openai", payload) == Usage(input=1_000, cache_read=1_000, output=500, reasoning=3_500)
    event = track_response(tracker, "openai", "o3", payload)
    assert event.cost == Decimal("0.0345")


def test_anthropic_fixture_does_not_bill_the_cache_twice(tracker: CostTracker) -> None:
    """claude-sonnet-4-5: 100 input + 2,000 cache write + 8,000 cache read + 500 output = $0.0177.

    100 x $3/M + 2,000 x $3.75/M + 8,000 x $0.30/M + 500 x $15/M = 0.0003 + 0.0075 + 0.0024 + 0.0075.
    """
    payload = load("anthropic_message_cached.json")
    sdk = anthropic.types.Message.model_validate(payload)
    expected = Usage(input=100, cache_read=8_000, cache_write=2_000, output=500)
    assert extract_usage("anthropic", payload) == expected
    assert extract_usage("anthropic", sdk) == expected
    event = track_response(tracker, "anthropic", "claude-sonnet-4-5", sdk)
    assert event.cost == Decimal("0.0177")
    assert event.to_dict()["cost_breakdown"] == {
        "input": Decimal("0.0003"),
        "cache_read": Decimal("0.0024"),
        "cache_write": Decimal("0.0075"),
        "output": Decimal("0.0075"),
    }
    assert event.to_dict()["prompt_tokens"] == 10_100


def test_anthropic_cache_creation_split_is_read_when_the_total_is_absent() -> None:
    """A usage that gives only the 5-minute / 1-hour split of cache writes still counts them, each in its bucket."""
    usage = {"input_tokens": 10, "output_tokens": 5, "cache_creation": {"ephemeral_5m_input_tokens": 30}}
    usage["cache_creation"]["ephemeral_1h_input_tokens"] = 70  # type: ignore[index]
    assert extract_usage("anthropic", {"usage": usage}) == Usage(input=10, cache_write=30, cache_write_1h=70, output=5)


def test_anthropic_extractor_reads_litellm_normalized_usage() -> None:
    """A litellm-normalized Anthropic usage (prompt includes the cache) is split without double billing."""
    usage = {"prompt_tokens": 10_100, "completion_tokens": 500, "cache_read_input_tokens": 8_000}
    usage["cache_creation_input_tokens"] = 2_000
    assert extract_usage("anthropic", {"usage": usage}) == Usage(
        input=100, cache_read=8_000, cache_write=2_000, output=500
    )


def test_gemini_rest_fixture_bills_thoughts_as_output(tracker: CostTracker) -> None:
    """gemini-2.5-pro REST JSON: 12,000 prompt (8,000 cached) + 900 candidates + 1,100 thoughts = $0.026.

    4,000 x $1.25/M + 8,000 x $0.125/M + (900 + 1,100) x $10/M = 0.005 + 0.001 + 0.02.
    """
    payload = load("gemini_2_5_pro_cached_thinking.json")
    assert extract_usage("gemini", payload) == Usage(input=4_000, cache_read=8_000, output=900, reasoning=1_100)
    event = track_response(tracker, "gemini", "gemini-2.5-pro", payload)
    assert event.cost == Decimal("0.026")


def test_gemini_sdk_fixture_prices_audio_input(tracker: CostTracker) -> None:
    """gemini-2.5-flash, SDK field names: 1,500 text + 500 audio prompt, 300 output, 700 thoughts = $0.00345.

    1,500 x $0.30/M + 500 x $1.00/M (audio) + (300 + 700) x $2.50/M = 0.00045 + 0.0005 + 0.0025.
    """
    payload = load("gemini_2_5_flash_audio_sdk.json")
    expected = Usage(input=1_500, audio_in=500, output=300, reasoning=700)
    assert extract_usage("gemini", payload) == expected
    assert extract_usage("google", as_objects(payload)) == expected
    event = track_response(tracker, "gemini", "gemini-2.5-flash", as_objects(payload))
    assert event.cost == Decimal("0.00345")


def test_gemini_thoughts_inside_candidates_are_not_counted_twice() -> None:
    """When prompt + candidates equals the total, the candidates already hold the thoughts."""
    meta = {"promptTokenCount": 100, "candidatesTokenCount": 50, "thoughtsTokenCount": 20, "totalTokenCount": 150}
    assert extract_usage("gemini", {"usageMetadata": meta}) == Usage(input=100, output=30, reasoning=20)


def test_gemini_tool_use_tokens_are_input_unless_search_grounded() -> None:
    """Tool-use prompt tokens are billed as input; with Google Search grounding they are billed per query."""
    meta = {"promptTokenCount": 100, "candidatesTokenCount": 10, "toolUsePromptTokenCount": 400}
    assert extract_usage("gemini", {"usageMetadata": meta}) == Usage(input=500, output=10)
    grounded = {
        "usageMetadata": meta,
        "candidates": [{"groundingMetadata": {"webSearchQueries": ["weather paris"]}}],
    }
    assert extract_usage("gemini", grounded) == Usage(input=100, output=10)


def test_cohere_v1_fixture_bills_billed_units_not_tokens(tracker: CostTracker) -> None:
    """Cohere v1 chat: billed 1,200 input + 350 output on command-r-plus-08-2024 = $0.0065 (not its 1,271 tokens)."""
    payload = load("cohere_v1_chat.json")
    assert extract_usage("cohere", payload) == Usage(input=1_200, output=350)
    event = track_response(tracker, "cohere", "command-r-plus-08-2024", as_objects(payload))
    assert event.cost == Decimal("0.0065")


def test_cohere_v2_fixture_with_a_registered_price(tracker: CostTracker) -> None:
    """Cohere v2 chat on a model litellm does not price: register_price makes it 5,000 + 1,000 tokens = $0.0225."""
    model = "command-a-reasoning-08-2025"
    unpriced = track_response(tracker, "cohere", model, load("cohere_v2_chat.json"))
    assert unpriced.cost is None
    assert unpriced.reason == f"no price known for model {model!r}"
    tokencost.register_price(model, input_per_mtok="2.50", output_per_mtok=10)
    event = track_response(tracker, "cohere", model, load("cohere_v2_chat.json"))
    assert event.usage == Usage(input=5_000, output=1_000)
    assert event.cost == Decimal("0.0225")
    assert event.price_source == "override"


def test_cohere_stream_end_events_are_read() -> None:
    """A v1 stream-end event and a v2 message-end event carry the billed units too."""
    v1 = {"event_type": "stream-end", "response": {"meta": {"billed_units": {"input_tokens": 7, "output_tokens": 3}}}}
    v2 = {"type": "message-end", "delta": {"usage": {"billed_units": {"input_tokens": 7, "output_tokens": 3}}}}
    assert extract_usage("cohere", v1) == extract_usage("cohere", v2) == Usage(input=7, output=3)


def test_cohere_rerank_search_units_are_not_tokens() -> None:
    """A rerank response bills search units: reading it as tokens would be wrong, so it is refused with a reason."""
    with pytest.raises(UsageError, match="search units"):
        extract_usage("cohere", {"meta": {"billed_units": {"search_units": 1}}})


@pytest.mark.parametrize("provider", ["groq", "mistral", "together", "openrouter", "deepseek", "fireworks", "AZURE"])
def test_openai_compatible_providers_use_the_openai_extractor(provider: str) -> None:
    """OpenAI-compatible providers (any case) read the OpenAI chat shape."""
    payload = load("openai_chat_cached.json")
    assert extract_usage(provider, payload) == Usage(input=2_000, cache_read=8_000, output=500)


def test_deepseek_cache_hit_fields_and_groq_stream_usage() -> None:
    """DeepSeek's prompt_cache_hit_tokens and Groq's x_groq.usage are understood."""
    deepseek = {"usage": {"prompt_tokens": 1_000, "completion_tokens": 10, "prompt_cache_hit_tokens": 600}}
    assert extract_usage("deepseek", deepseek) == Usage(input=400, cache_read=600, output=10)
    groq_chunk = {"choices": [], "x_groq": {"usage": {"prompt_tokens": 12, "completion_tokens": 3}}}
    assert extract_usage("groq", groq_chunk) == Usage(input=12, output=3)


def test_openai_embedding_has_no_completion() -> None:
    """An embedding response (prompt tokens only) reads as input tokens."""
    assert extract_usage("openai", {"usage": {"prompt_tokens": 8, "total_tokens": 8}}) == Usage(input=8)


def test_json_text_is_parsed() -> None:
    """A raw HTTP body (JSON text or bytes) is read like the parsed dict."""
    text = (FIXTURES / "anthropic_message_cached.json").read_text()
    assert extract_usage("anthropic", text) == extract_usage("anthropic", text.encode())
    with pytest.raises(UsageError, match="not JSON"):
        extract_usage("anthropic", "<html>502 Bad Gateway</html>")


# -- missing and malformed usage --------------------------------------------------------------------------------
@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini", "cohere", "groq"])
@pytest.mark.parametrize("response", [None, {}, {"usage": None}, {"id": "x", "choices": []}, {"usage": {}}])
def test_absent_usage_has_the_documented_reason(provider: str, response: Any) -> None:
    """Every built-in extractor says "no usage in response" when there is none."""
    with pytest.raises(UsageError, match=r"^no usage in response$"):
        extract_usage(provider, response)


@pytest.mark.parametrize(
    ("usage", "reason"),
    [
        ({"prompt_tokens": -5, "completion_tokens": 1}, "prompt_tokens is negative: -5"),
        ({"prompt_tokens": "12", "completion_tokens": 1}, "prompt_tokens is not a number: str"),
        ({"prompt_tokens": 1.5, "completion_tokens": 1}, "not a whole number"),
        ({"prompt_tokens": math.nan, "completion_tokens": 1}, "not a whole number"),
        ({"prompt_tokens": True, "completion_tokens": 1}, "prompt_tokens is a bool"),
        ({"prompt_tokens": 10, "prompt_tokens_details": {"cached_tokens": 11}}, "less than its cached"),
        ({"prompt_tokens": 10**13, "completion_tokens": 1}, "implausibly large"),
        ({"completion_tokens": 4}, "usage has no prompt_tokens"),
    ],
)
def test_malformed_usage_is_refused_with_a_reason(usage: dict[str, Any], reason: str) -> None:
    """A count that is negative, text, fractional, NaN, a bool, inconsistent or absurd gives a UsageError saying so."""
    with pytest.raises(UsageError, match=reason):
        extract_usage("openai", {"usage": usage})


def test_unknown_provider_reads_openai_shaped_usage() -> None:
    """A provider with no extractor (Perplexity, Ollama, any OpenAI-compatible server) is read as OpenAI's shape."""
    perplexity = {
        "usage": {"prompt_tokens": 12, "completion_tokens": 300, "total_tokens": 312, "search_context_size": "low"}
    }
    assert extract_usage("perplexity", perplexity) == Usage(input=12, output=300)
    ollama = {"model": "llama3.2", "usage": {"prompt_tokens": 26, "completion_tokens": 9, "total_tokens": 35}}
    assert extract_usage("ollama", ollama) == Usage(input=26, output=9)


def test_unknown_provider_without_openai_usage_is_a_usage_error_naming_it() -> None:
    """Usage in another shape from a provider with no extractor is a UsageError naming the provider."""
    with pytest.raises(UsageError, match="no usage extractor registered for provider 'acme-unknown'"):
        extract_usage("acme-unknown", {"usage": {"tokens_in": 1}})
    with pytest.raises(UsageError, match=r"^no usage in response$"):
        extract_usage("acme-unknown", {"choices": []})


def test_malformed_payload_is_recorded_unpriced(tracker: CostTracker) -> None:
    """track_response never raises on a bad payload: the call is recorded unpriced with the reason."""
    event = track_response(tracker, "openai", "gpt-4o", {"usage": {"prompt_tokens": -5}})
    assert event.cost is None
    assert event.reason == "prompt_tokens is negative: -5"
    event = track_response(tracker, "anthropic", "claude-sonnet-4-5", {"content": []})
    assert event.reason == "no usage in response"
    assert tracker.request_count == 2
    assert tracker.unpriced_count == 2
    assert tracker.total_cost == Decimal("0.00")


def test_estimate_missing_counts_tokens_with_litellm(tracker: CostTracker) -> None:
    """estimate_missing=True prices a usage-less response from litellm's token counts, flagged in the reason."""
    import litellm

    messages = [{"role": "user", "content": "Summarize the attached report in one line."}]
    response = {"choices": [{"message": {"role": "assistant", "content": "Revenue rose 4% on lower costs."}}]}
    event = track_response(tracker, "openai", "gpt-4o", response, estimate_missing=True, messages=messages)
    prompt = litellm.token_counter(model="gpt-4o", messages=messages)
    output = litellm.token_counter(model="gpt-4o", text="Revenue rose 4% on lower costs.", count_response_tokens=True)
    assert event.usage == Usage(input=prompt, output=output)
    assert event.reason == ESTIMATED
    assert event.cost == Decimal(prompt) * Decimal("0.0000025") + Decimal(output) * Decimal("0.00001")


def test_estimate_missing_leaves_malformed_usage_unpriced(tracker: CostTracker) -> None:
    """Only an absent usage is estimated; a malformed one is a provider bug and stays unpriced with its reason."""
    event = track_response(tracker, "openai", "gpt-4o", {"usage": {"prompt_tokens": "x"}}, estimate_missing=True)
    assert event.cost is None
    assert event.reason == "prompt_tokens is not a number: str"


def test_track_response_merges_scope_metadata(tracker: CostTracker) -> None:
    """The caller's scope() metadata and the given metadata are attached (the given keys win)."""
    with tokencost.scope(user="alice", team="search"):
        event = track_response(
            tracker, "openai", "gpt-4o", load("openai_chat_cached.json"), metadata={"team": "ads", "job": 7}
        )
    assert event.metadata == {"user": "alice", "team": "ads", "job": 7}
    assert tracker.cost_by("user") == {"alice": Decimal("0.02")}


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"provider": None}, TypeError, "provider"),
        ({"provider": ""}, TypeError, "provider"),
        ({"model": None}, TypeError, "model"),
        ({"model": 5}, TypeError, "model"),
        ({"metadata": ["x"]}, TypeError, "metadata"),
    ],
)
def test_track_response_bad_arguments_raise(
    tracker: CostTracker, kwargs: dict[str, Any], error: type, name: str
) -> None:
    """Arguments (not payloads) are the caller's own: a bad one raises, naming it."""
    args: dict[str, Any] = {"provider": "openai", "model": "gpt-4o", "response": {}, **kwargs}
    metadata = args.pop("metadata", None)
    with pytest.raises(error, match=name):
        track_response(tracker, args["provider"], args["model"], args["response"], metadata=metadata)
    assert tracker.request_count == 0


# -- registry ---------------------------------------------------------------------------------------------------
def test_register_usage_extractor_adds_and_replaces(tracker: CostTracker) -> None:
    """A registered extractor is used for its provider (case-insensitive); registering again replaces it."""

    def first(response: Any) -> Usage:
        return Usage(input=response["billing"]["in"], output=response["billing"]["out"])

    def second(response: Any) -> Usage:
        return Usage(input=1, output=1)

    register_usage_extractor("Acme-Test", first)
    assert "acme-test" in registered_providers()
    assert usage_extractor("ACME-TEST") is first
    tokencost.register_price("acme-large-test", input_per_mtok=4, output_per_mtok=12)
    event = track_response(tracker, "acme-test", "acme-large-test", {"billing": {"in": 1_000, "out": 500}})
    assert event.cost == Decimal("0.01")  # 1,000 x $4/M + 500 x $12/M
    register_usage_extractor("acme-test", second)
    assert extract_usage("acme-test", {}) == Usage(input=1, output=1)


def test_a_failing_user_extractor_becomes_a_usage_error() -> None:
    """A user extractor that raises, or returns something else than a Usage, gives a UsageError with a reason."""

    def broken(response: Any) -> Usage:
        raise KeyError("billing")

    def wrong(response: Any) -> Any:
        return {"input": 3}

    def negative(response: Any) -> Usage:
        return Usage(input=-3)

    register_usage_extractor("acme-broken", broken)
    register_usage_extractor("acme-wrong", wrong)
    register_usage_extractor("acme-negative", negative)
    with pytest.raises(UsageError, match="could not read usage: KeyError"):
        extract_usage("acme-broken", {})
    with pytest.raises(UsageError, match="returned dict, not Usage"):
        extract_usage("acme-wrong", {})
    with pytest.raises(UsageError, match="input is not a non-negative int"):
        extract_usage("acme-negative", {})


def test_register_usage_extractor_rejects_bad_arguments() -> None:
    """A provider that is not a non-empty str, or a non-callable extractor, is a TypeError."""
    with pytest.raises(TypeError, match="provider"):
        register_usage_extractor("", lambda r: Usage())
    with pytest.raises(TypeError, match="provider"):
        register_usage_extractor(None, lambda r: Usage())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="fn must be callable"):
        register_usage_extractor("acme-x", "not a function")  # type: ignore[arg-type]


# -- property-based: no payload makes an extractor raise anything but UsageError ---------------------------------
class Exploding:
    """An SDK-like object whose every attribute access fails."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"boom: {name}")


class ExplodingHard:
    """An object that fails even on isinstance() checks (its __class__ raises)."""

    def __getattribute__(self, name: str) -> Any:
        raise ValueError(name)


class ExplodingMapping(Mapping[str, Any]):
    """A mapping whose lookups fail."""

    def __getitem__(self, key: str) -> Any:
        raise OSError("disk gone")

    def __iter__(self) -> Iterator[str]:
        raise OSError("disk gone")

    def __len__(self) -> int:
        return 1


KEYS = st.sampled_from(
    [
        "usage",
        "usage_metadata",
        "usageMetadata",
        "meta",
        "billed_units",
        "message",
        "response",
        "delta",
        "x_groq",
        "candidates",
        "groundingMetadata",
        "webSearchQueries",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "input_tokens",
        "output_tokens",
        "prompt_tokens_details",
        "completion_tokens_details",
        "input_tokens_details",
        "output_tokens_details",
        "cached_tokens",
        "reasoning_tokens",
        "audio_tokens",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
        "cache_creation",
        "cached_tokens_details",
        "input_token_details",
        "output_token_details",
        "ephemeral_5m_input_tokens",
        "ephemeral_1h_input_tokens",
        "prompt_cache_hit_tokens",
        "promptTokenCount",
        "candidatesTokenCount",
        "cachedContentTokenCount",
        "thoughtsTokenCount",
        "toolUsePromptTokenCount",
        "totalTokenCount",
        "promptTokensDetails",
        "cacheTokensDetails",
        "candidatesTokensDetails",
        "modality",
        "tokenCount",
        "prompt_token_count",
        "candidates_token_count",
        "thoughts_token_count",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.sampled_from([0, 1, 10**12, 10**12 + 1, 2**63, -1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(["AUDIO", "TEXT", "audio"]),
    st.binary(max_size=8),
    st.builds(Exploding),
    st.builds(ExplodingHard),
    st.builds(ExplodingMapping),
)


def _objects(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    mapping = st.dictionaries(st.one_of(KEYS, st.text(max_size=6)), children, max_size=6)
    return st.one_of(
        mapping,
        mapping.map(lambda d: SimpleNamespace(**{k: v for k, v in d.items() if k.isidentifier()})),
        st.lists(children, max_size=4),
        st.tuples(children),
    )


PAYLOADS = st.recursive(SCALARS, _objects, max_leaves=30)
PROVIDERS = st.sampled_from(["openai", "anthropic", "gemini", "cohere", "groq", "deepseek", "no-such-provider"])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(provider=PROVIDERS, payload=PAYLOADS)
def test_no_payload_makes_extract_usage_raise_anything_else(provider: str, payload: Any) -> None:
    """Any JSON-like payload (nested, NaN, negative, huge, text, exploding objects) gives a sane Usage or UsageError."""
    try:
        usage = extract_usage(provider, payload)
    except UsageError as exc:
        reason = str(exc)
        assert reason, "a UsageError always says why"
        return
    assert isinstance(usage, Usage)
    for value in usage.as_dict().values():
        assert type(value) is int
        assert 0 <= value <= MAX_TOKENS


@settings(max_examples=300, deadline=None)
@given(
    provider=st.sampled_from(["openai", "anthropic", "gemini", "cohere"]),
    wrapper_key=st.sampled_from(["usage", "usage_metadata", "usageMetadata", "meta", "message"]),
    fields=st.dictionaries(KEYS, SCALARS | st.dictionaries(KEYS, SCALARS, max_size=4), max_size=8),
)
def test_usage_shaped_payloads_never_raise_anything_else(provider: str, wrapper_key: str, fields: Any) -> None:
    """Payloads shaped like real usage blocks, with hostile values in the known fields, give Usage or UsageError."""
    payload = {wrapper_key: fields}
    if wrapper_key == "meta":
        payload = {"meta": {"billed_units": fields}}
    for shape in (payload, as_objects(payload) if all(k.isidentifier() for k in fields) else payload):
        try:
            usage = extract_usage(provider, shape)
        except UsageError:
            continue
        assert all(0 <= v <= MAX_TOKENS for v in usage.as_dict().values())


@settings(max_examples=150, deadline=None)
@given(
    prompt=st.integers(min_value=0, max_value=10**9),
    cached=st.integers(min_value=0, max_value=10**9),
    completion=st.integers(min_value=0, max_value=10**9),
    reasoning=st.integers(min_value=0, max_value=10**9),
)
def test_openai_split_conserves_tokens(prompt: int, cached: int, completion: int, reasoning: int) -> None:
    """Whenever the parts fit the whole, the buckets add back up to OpenAI's prompt and completion counts."""
    payload = {
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "prompt_tokens_details": {"cached_tokens": cached},
            "completion_tokens_details": {"reasoning_tokens": reasoning},
        }
    }
    if cached > prompt or reasoning > completion:
        with pytest.raises(UsageError):
            extract_usage("openai", payload)
        return
    usage = extract_usage("openai", payload)
    assert usage.prompt_tokens == prompt
    assert usage.completion_tokens == completion
    assert usage.cache_read == cached
    assert usage.reasoning == reasoning


@settings(max_examples=150, deadline=None)
@given(
    text=st.integers(min_value=0, max_value=10**6),
    audio=st.integers(min_value=0, max_value=10**6),
    cached_text=st.integers(min_value=0, max_value=10**6),
    cached_audio=st.integers(min_value=0, max_value=10**6),
    api=st.sampled_from(["chat", "realtime"]),
)
def test_cached_audio_split_conserves_tokens(
    text: int, audio: int, cached_text: int, cached_audio: int, api: str
) -> None:
    """Cached audio (``cached_tokens_details.audio_tokens``, a part of ``cached_tokens`` and of ``audio_tokens``) is
    its own bucket: the buckets add back up to the prompt, the cache reads to ``cached_tokens``; more cached audio
    than cached tokens is a UsageError."""
    cached = cached_text + cached_audio
    details = {"cached_tokens": cached, "audio_tokens": audio, "cached_tokens_details": {"audio_tokens": cached_audio}}
    if api == "chat":
        usage = {"prompt_tokens": text + audio, "completion_tokens": 5, "prompt_tokens_details": details}
    else:
        usage = {"input_tokens": text + audio, "output_tokens": 5, "input_token_details": details}
    assume(cached_audio <= audio)  # (more cached audio than audio: the uncached audio reads as 0, as in litellm)
    if cached_text > text:  # the parts do not fit the whole
        with pytest.raises(UsageError):
            extract_usage("openai", {"usage": usage})
        return
    read = extract_usage("openai", {"usage": usage})
    assert read.prompt_tokens == text + audio
    assert (read.cache_read, read.cache_read_audio, read.audio_in) == (cached_text, cached_audio, audio - cached_audio)
    details["cached_tokens"] = cached_audio - 1  # fewer cached tokens than their audio part
    if cached_audio:
        with pytest.raises(UsageError, match="cached audio tokens"):
            extract_usage("openai", {"usage": usage})


def test_gemini_cached_audio_beyond_the_cached_tokens_is_a_usage_error() -> None:
    meta = {
        "promptTokenCount": 1_000,
        "candidatesTokenCount": 10,
        "cachedContentTokenCount": 100,
        "promptTokensDetails": [{"modality": "AUDIO", "tokenCount": 1_000}],
        "cacheTokensDetails": [{"modality": "AUDIO", "tokenCount": 400}],
    }
    with pytest.raises(UsageError, match="cached audio tokens"):
        extract_usage("gemini", {"usageMetadata": meta})


@pytest.fixture(scope="module")
def shared_tracker() -> Iterator[CostTracker]:
    t = CostTracker(print_summary=False)
    yield t
    t.close()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(provider=PROVIDERS, payload=PAYLOADS, estimate=st.booleans())
def test_track_response_records_any_payload(
    shared_tracker: CostTracker, provider: str, payload: Any, estimate: bool
) -> None:
    """track_response never raises on a payload: each call adds exactly one event, priced or with a reason."""
    before = shared_tracker.request_count
    event = track_response(shared_tracker, provider, "gpt-4o", payload, estimate_missing=estimate, messages=None)
    assert shared_tracker.request_count == before + 1
    assert event.cost is not None or event.reason

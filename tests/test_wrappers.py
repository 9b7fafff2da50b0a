"""OpenAI and Anthropic SDK clients wrapped by a tracker, against the loopback fake provider (issue 8)."""

from __future__ import annotations

import asyncio
import gc
import json
import os
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import anthropic
import litellm
import openai
import pytest

import tokencost
from tokencost import Budget, BudgetExceededError, CostTracker, Usage
from tokencost.extractors import register_usage_extractor
from tokencost.testing import FakeProvider
from tokencost.wrappers import ESTIMATED, wrap_anthropic, wrap_openai

try:  # the HTTP client the installed openai SDK is built on (httpx2 since openai 3)
    import httpx2
except ImportError:  # pragma: no cover - older openai SDKs
    import httpx as httpx2  # type: ignore[no-redef]

pytestmark = pytest.mark.filterwarnings(
    # The Anthropic SDK warns that claude-sonnet-4-5 (the model of the design's reference numbers) is deprecated.
    "ignore:The model 'claude-sonnet-4-5' is deprecated:DeprecationWarning"
)

FIXTURES = Path(__file__).parent / "fixtures"
HI = [{"role": "user", "content": "hi"}]
SONNET = "claude-sonnet-4-5"
ANTHROPIC_CACHED = Decimal("0.0177")


@pytest.fixture(scope="module")
def server() -> Iterator[FakeProvider]:
    with FakeProvider() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeProvider) -> FakeProvider:
    server.reset()
    server.set_openai_usage("gpt-4o", prompt_tokens=10_000, completion_tokens=500, cached_tokens=8_000)
    server.set_anthropic_usage(
        SONNET, input_tokens=100, output_tokens=500, cache_creation_input_tokens=2_000, cache_read_input_tokens=8_000
    )
    return server


@pytest.fixture
def tracker() -> Iterator[CostTracker]:
    t = CostTracker(print_summary=False)
    yield t
    t.close()


def openai_client(fake: FakeProvider, *, is_async: bool = False) -> Any:
    cls = openai.AsyncOpenAI if is_async else openai.OpenAI
    return cls(api_key="sk-fake", base_url=fake.openai_base, max_retries=0)


def anthropic_client(fake: FakeProvider, *, is_async: bool = False) -> Any:
    cls = anthropic.AsyncAnthropic if is_async else anthropic.Anthropic
    return cls(api_key="fake", base_url=fake.url, max_retries=0)


def last(tracker: CostTracker) -> dict[str, Any]:
    return tracker.history[-1]


# -- OpenAI -----------------------------------------------------------------------------------------------------
def test_openai_call_is_priced_exactly_and_the_client_looks_the_same(fake: FakeProvider, tracker: CostTracker) -> None:
    """A wrapped OpenAI client answers as before, passes isinstance, and records gpt-4o's cached call at $0.02."""
    raw = openai_client(fake)
    client = wrap_openai(tracker, raw)
    assert isinstance(client, openai.OpenAI)
    assert client.base_url == raw.base_url
    assert client.models is raw.models  # resources that cost nothing pass through untouched
    response = client.chat.completions.create(model="gpt-4o", messages=HI)
    assert response.choices[0].message.content == "Hello from the fake provider."
    assert tracker.total_cost == Decimal("0.02")
    entry = last(tracker)
    assert (entry["model"], entry["provider"], entry["status"]) == ("gpt-4o", "openai", "ok")
    assert (entry["prompt_tokens"], entry["completion_tokens"], entry["cache_read_tokens"]) == (10_000, 500, 8_000)


def test_openai_stream_asks_for_usage_and_hides_the_usage_chunk(fake: FakeProvider, tracker: CostTracker) -> None:
    """A stream gets include_usage added; the caller never sees the choice-less usage chunk; it costs $0.02."""
    client = wrap_openai(tracker, openai_client(fake))
    stream = client.chat.completions.create(model="gpt-4o", messages=HI, stream=True)
    assert isinstance(stream, openai.Stream)
    chunks = list(stream)
    assert fake.requests[-1].body["stream_options"] == {"include_usage": True}
    assert chunks
    assert all(chunk.choices for chunk in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Hello from the fake provider."
    assert tracker.total_cost == Decimal("0.02")
    assert last(tracker)["status"] == "ok"


def test_openai_stream_shows_the_usage_chunk_to_a_caller_who_asked(fake: FakeProvider, tracker: CostTracker) -> None:
    """A caller who set include_usage gets the usage chunk as usual, and the call is still recorded once."""
    client = wrap_openai(tracker, openai_client(fake))
    with client.chat.completions.create(
        model="gpt-4o", messages=HI, stream=True, stream_options={"include_usage": True}
    ) as stream:
        chunks = list(stream)
    assert chunks[-1].choices == []
    assert chunks[-1].usage.prompt_tokens == 10_000
    assert tracker.total_cost == Decimal("0.02")
    assert tracker.request_count == 1


def test_openai_stream_keeps_the_callers_other_stream_options(fake: FakeProvider, tracker: CostTracker) -> None:
    """stream_options without include_usage keeps its keys and gains include_usage."""
    client = wrap_openai(tracker, openai_client(fake))
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o", messages=HI, stream=True, stream_options={"include_obfuscation": False}
        )
    )
    assert fake.requests[-1].body["stream_options"] == {"include_obfuscation": False, "include_usage": True}
    assert all(chunk.choices for chunk in chunks)
    assert tracker.total_cost == Decimal("0.02")


def test_openai_stream_without_usage_by_choice(fake: FakeProvider, tracker: CostTracker) -> None:
    """include_usage=False is respected: the call is recorded unpriced, or estimated when asked to."""
    client = wrap_openai(tracker, openai_client(fake))
    off = {"include_usage": False}
    list(client.chat.completions.create(model="gpt-4o", messages=HI, stream=True, stream_options=off))
    assert fake.requests[-1].body["stream_options"] == off
    assert (last(tracker)["cost"], last(tracker)["reason"]) == (None, "no usage in response")
    estimating = wrap_openai(tracker, openai_client(fake), estimate_missing=True)
    list(estimating.chat.completions.create(model="gpt-4o", messages=HI, stream=True, stream_options=off))
    entry = last(tracker)
    assert entry["reason"] == ESTIMATED
    assert entry["prompt_tokens"] == litellm.token_counter(model="gpt-4o", messages=HI)
    assert entry["cost"] > 0


def test_openai_stream_broken_off_is_recorded_incomplete(fake: FakeProvider, tracker: CostTracker) -> None:
    """A stream closed after its first chunk is recorded as incomplete, its tokens estimated from what was seen."""
    client = wrap_openai(tracker, openai_client(fake))
    stream = client.chat.completions.create(model="gpt-4o", messages=HI, stream=True)
    next(stream)
    assert tracker.request_count == 0
    stream.close()
    entry = last(tracker)
    assert entry["status"] == "incomplete"
    assert entry["reason"] == "stream broken off before its end: prompt and output tokens estimated"
    assert entry["prompt_tokens"] == litellm.token_counter(model="gpt-4o", messages=HI)
    assert entry["cost"] > 0


def test_openai_stream_dropped_in_a_for_loop_is_recorded(fake: FakeProvider, tracker: CostTracker) -> None:
    """A caller that breaks out of the loop and drops the stream still gets the call recorded (incomplete)."""
    client = wrap_openai(tracker, openai_client(fake))
    stream = client.chat.completions.create(model="gpt-4o", messages=HI, stream=True)
    for _chunk in stream:
        break
    del stream, _chunk
    gc.collect()
    assert tracker.request_count == 1
    assert last(tracker)["status"] == "incomplete"


def test_openai_stream_stopped_at_the_last_choice_reads_the_usage(fake: FakeProvider, tracker: CostTracker) -> None:
    """A caller that stops at finish_reason and closes still gets the exact price: the usage chunk is read for it."""
    client = wrap_openai(tracker, openai_client(fake))
    with client.chat.completions.create(model="gpt-4o", messages=HI, stream=True) as stream:
        for chunk in stream:
            if chunk.choices[0].finish_reason:
                break
    assert (last(tracker)["status"], last(tracker)["cost"]) == ("ok", Decimal("0.02"))


def test_openai_async_call_and_stream(fake: FakeProvider, tracker: CostTracker) -> None:
    """AsyncOpenAI: a call and a stream are each recorded at $0.02, the stream's usage chunk hidden."""

    async def main() -> list[Any]:
        client = wrap_openai(tracker, openai_client(fake, is_async=True))
        assert isinstance(client, openai.AsyncOpenAI)
        await client.chat.completions.create(model="gpt-4o", messages=HI)
        assert tracker.total_cost == Decimal("0.02")
        stream = await client.chat.completions.create(model="gpt-4o", messages=HI, stream=True)
        assert isinstance(stream, openai.AsyncStream)
        return [chunk async for chunk in stream]

    chunks = asyncio.run(main())
    assert all(chunk.choices for chunk in chunks)
    assert tracker.total_cost == Decimal("0.04")
    assert [e["status"] for e in tracker.history] == ["ok", "ok"]


def test_openai_async_stream_broken_off(fake: FakeProvider, tracker: CostTracker) -> None:
    """An async stream left after one chunk and closed is recorded as incomplete."""

    async def main() -> None:
        client = wrap_openai(tracker, openai_client(fake, is_async=True))
        stream = await client.chat.completions.create(model="gpt-4o", messages=HI, stream=True)
        async for _chunk in stream:
            break
        await stream.close()

    asyncio.run(main())
    assert last(tracker)["status"] == "incomplete"


def test_openai_embeddings_are_priced(fake: FakeProvider, tracker: CostTracker) -> None:
    """embeddings.create is recorded: 1,000 tokens of text-embedding-3-small at $0.02/M = $0.00002."""
    fake.set_openai_usage("text-embedding-3-small", prompt_tokens=1_000, completion_tokens=0)
    client = wrap_openai(tracker, openai_client(fake))
    client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    assert last(tracker)["cost"] == Decimal("0.00002")


def test_with_options_returns_a_tracked_client(fake: FakeProvider, tracker: CostTracker) -> None:
    """client.with_options(...) gives a copy that is tracked too."""
    client = wrap_openai(tracker, openai_client(fake)).with_options(timeout=5)
    assert isinstance(client, openai.OpenAI)
    client.chat.completions.create(model="gpt-4o", messages=HI)
    assert tracker.total_cost == Decimal("0.02")


def test_openai_user_argument_and_scope_are_recorded(fake: FakeProvider, tracker: CostTracker) -> None:
    """scope() metadata is attached; OpenAI's user= names the user when the scope does not."""
    client = wrap_openai(tracker, openai_client(fake))
    with tokencost.scope(team="search"):
        client.chat.completions.create(model="gpt-4o", messages=HI, user="carol")
    assert last(tracker)["metadata"] == {"team": "search", "user": "carol"}
    assert tracker.cost_by("user") == {"carol": Decimal("0.02")}


# -- the Responses API (the fake provider has no /v1/responses: the SDK's own mock transport serves it) -----------
def _responses_transport() -> httpx2.MockTransport:
    body = json.loads((FIXTURES / "openai_responses_o3.json").read_text())

    def handle(request: httpx2.Request) -> httpx2.Response:
        sent = json.loads(request.content)
        if not sent.get("stream"):
            return httpx2.Response(200, json=body)
        events = [
            (
                "response.created",
                {"type": "response.created", "sequence_number": 0, "response": {**body, "usage": None}},
            ),
            (
                "response.output_text.delta",
                {"type": "response.output_text.delta", "sequence_number": 1, "delta": "Yes", "item_id": "m"},
            ),
            ("response.completed", {"type": "response.completed", "sequence_number": 2, "response": body}),
        ]
        text = "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events)
        return httpx2.Response(200, text=text, headers={"content-type": "text/event-stream"})

    return httpx2.MockTransport(handle)


def test_openai_responses_api_call_and_stream(tracker: CostTracker) -> None:
    """responses.create (plain and streamed) is priced from input/output tokens: o3 fixture = $0.0345 each."""
    raw = openai.OpenAI(
        api_key="sk-fake",
        base_url="http://127.0.0.1:9/v1",
        max_retries=0,
        http_client=httpx2.Client(transport=_responses_transport()),
    )
    client = wrap_openai(tracker, raw)
    client.responses.create(model="o3", input="Does the schedule fit?")
    assert last(tracker)["cost"] == Decimal("0.0345")
    events = list(client.responses.create(model="o3", input="Does the schedule fit?", stream=True))
    assert [e.type for e in events][-1] == "response.completed"
    assert tracker.total_cost == Decimal("0.0690")
    assert [e["reasoning_tokens"] for e in tracker.history] == [3_500, 3_500]


# -- Anthropic --------------------------------------------------------------------------------------------------
def test_anthropic_cached_call_costs_0_0177(fake: FakeProvider, tracker: CostTracker) -> None:
    """claude-sonnet-4-5: 100 input + 2,000 cache write + 8,000 cache read + 500 output = $0.0177, cache billed once."""
    client = wrap_anthropic(tracker, anthropic_client(fake))
    assert isinstance(client, anthropic.Anthropic)
    message = client.messages.create(model=SONNET, max_tokens=512, messages=HI)
    assert message.content[0].text == "Hello from the fake provider."
    entry = last(tracker)
    assert entry["cost"] == ANTHROPIC_CACHED
    assert (entry["prompt_tokens"], entry["cache_read_tokens"], entry["cache_write_tokens"]) == (10_100, 8_000, 2_000)
    assert entry["saved_by_cache"] == Decimal("0.0216")  # 8,000 x ($3 - $0.30)/M
    assert entry["provider"] == "anthropic"


def test_anthropic_stream_reads_message_start_and_delta(fake: FakeProvider, tracker: CostTracker) -> None:
    """messages.create(stream=True): input and cache from message_start, output from message_delta: $0.0177."""
    client = wrap_anthropic(tracker, anthropic_client(fake))
    events = list(client.messages.create(model=SONNET, max_tokens=512, messages=HI, stream=True))
    assert events[0].type == "message_start"
    assert events[-1].type == "message_stop"
    assert (last(tracker)["cost"], last(tracker)["status"]) == (ANTHROPIC_CACHED, "ok")


def test_anthropic_stream_helper_is_tracked(fake: FakeProvider, tracker: CostTracker) -> None:
    """messages.stream(): text_stream and get_final_message() both lead to one exact record."""
    client = wrap_anthropic(tracker, anthropic_client(fake))
    with client.messages.stream(model=SONNET, max_tokens=512, messages=HI) as stream:
        assert "".join(stream.text_stream) == "Hello from the fake provider."
        assert tracker.total_cost == ANTHROPIC_CACHED  # recorded when the stream ended, inside the block
        assert stream.get_final_message().usage.output_tokens == 500
    assert tracker.request_count == 1


def test_anthropic_stream_broken_off_keeps_input_and_cache(fake: FakeProvider, tracker: CostTracker) -> None:
    """A stream left after its first text keeps message_start's exact input and cache counts, status incomplete."""
    client = wrap_anthropic(tracker, anthropic_client(fake))
    with client.messages.stream(model=SONNET, max_tokens=512, messages=HI) as stream:
        for _text in stream.text_stream:
            break
    entry = last(tracker)
    assert entry["status"] == "incomplete"
    assert entry["reason"] == "stream broken off before its end: output tokens estimated"
    assert (entry["prompt_tokens"], entry["cache_read_tokens"], entry["cache_write_tokens"]) == (10_100, 8_000, 2_000)
    assert 1 <= entry["completion_tokens"] < 500
    assert tracker.request_count == 1


def test_anthropic_async_call_stream_and_helper(fake: FakeProvider, tracker: CostTracker) -> None:
    """AsyncAnthropic: create, create(stream=True) and messages.stream() are each recorded at $0.0177."""

    async def main() -> None:
        client = wrap_anthropic(tracker, anthropic_client(fake, is_async=True))
        assert isinstance(client, anthropic.AsyncAnthropic)
        await client.messages.create(model=SONNET, max_tokens=512, messages=HI)
        stream = await client.messages.create(model=SONNET, max_tokens=512, messages=HI, stream=True)
        assert [event.type async for event in stream][-1] == "message_stop"
        async with client.messages.stream(model=SONNET, max_tokens=512, messages=HI) as helper:
            message = await helper.get_final_message()
        assert message.usage.cache_read_input_tokens == 8_000

    asyncio.run(main())
    assert [e["cost"] for e in tracker.history] == [ANTHROPIC_CACHED] * 3
    assert tracker.total_cost == Decimal("0.0531")


# -- budgets ----------------------------------------------------------------------------------------------------
def test_budget_refuses_before_any_request(fake: FakeProvider) -> None:
    """Once the budget is spent the next call (plain, streamed, other SDK) raises and sends nothing."""
    tracker = CostTracker(budget="0.03", print_summary=False)
    try:
        client = wrap_openai(tracker, openai_client(fake))
        claude = wrap_anthropic(tracker, anthropic_client(fake))
        client.chat.completions.create(model="gpt-4o", messages=HI)
        client.chat.completions.create(model="gpt-4o", messages=HI)  # crosses $0.03: it completes
        sent = fake.request_count()
        with pytest.raises(BudgetExceededError) as refused:
            client.chat.completions.create(model="gpt-4o", messages=HI)
        assert (refused.value.budget, refused.value.total_cost) == (Decimal("0.03"), Decimal("0.04"))
        with pytest.raises(BudgetExceededError):
            client.chat.completions.create(model="gpt-4o", messages=HI, stream=True)
        with pytest.raises(BudgetExceededError):
            claude.messages.create(model=SONNET, max_tokens=16, messages=HI)
        with pytest.raises(BudgetExceededError):
            claude.messages.stream(model=SONNET, max_tokens=16, messages=HI)
        assert fake.request_count() == sent
        assert tracker.request_count == 2
    finally:
        tracker.close()


def test_budget_refuses_async_calls_before_any_request(fake: FakeProvider) -> None:
    """Async clients are refused the same way, with zero requests sent."""
    tracker = CostTracker(budget="0.01", print_summary=False)

    async def main() -> None:
        client = wrap_openai(tracker, openai_client(fake, is_async=True))
        claude = wrap_anthropic(tracker, anthropic_client(fake, is_async=True))
        await client.chat.completions.create(model="gpt-4o", messages=HI)
        sent = fake.request_count()
        with pytest.raises(BudgetExceededError):
            await client.chat.completions.create(model="gpt-4o", messages=HI)
        with pytest.raises(BudgetExceededError):
            await claude.messages.create(model=SONNET, max_tokens=16, messages=HI)
        with pytest.raises(BudgetExceededError):
            claude.messages.stream(model=SONNET, max_tokens=16, messages=HI)
        assert fake.request_count() == sent

    try:
        asyncio.run(main())
    finally:
        tracker.close()


def test_per_user_budget_follows_the_scope(fake: FakeProvider) -> None:
    """A per-user budget refuses alice once she spent hers, and still lets bob through."""
    tracker = CostTracker(budgets=[Budget(limit_usd="0.01", per="user")], print_summary=False)
    try:
        client = wrap_openai(tracker, openai_client(fake))
        with tokencost.scope(user="alice"):
            client.chat.completions.create(model="gpt-4o", messages=HI)
            with pytest.raises(BudgetExceededError, match="user=alice"):
                client.chat.completions.create(model="gpt-4o", messages=HI)
        with tokencost.scope(user="bob"):
            client.chat.completions.create(model="gpt-4o", messages=HI)
        assert tracker.cost_by("user") == {"alice": Decimal("0.02"), "bob": Decimal("0.02")}
    finally:
        tracker.close()


def test_budget_block_counts_a_stream_read_after_it(fake: FakeProvider, tracker: CostTracker) -> None:
    """budget() counts calls started inside it, even a stream read to its end after the block; then refuses."""
    client = wrap_openai(tracker, openai_client(fake))
    with tokencost.budget(max_cost_usd="0.03", tracker=tracker) as block:
        client.chat.completions.create(model="gpt-4o", messages=HI)
        stream = client.chat.completions.create(model="gpt-4o", messages=HI, stream=True)
    list(stream)
    assert block.spent == Decimal("0.04")
    with block, pytest.raises(BudgetExceededError):
        client.chat.completions.create(model="gpt-4o", messages=HI)


def test_failed_requests_release_their_strict_reservation(fake: FakeProvider) -> None:
    """Under a strict budget a failed request gives its reservation back: failures never use the budget up."""
    tracker = CostTracker(budgets=[Budget(limit_usd="0.05", strict=True)], print_summary=False)
    try:
        client = wrap_openai(tracker, openai_client(fake))
        for _ in range(4):  # each reserves about $0.02 (2,000 max tokens at $10/M); three unreleased would refuse
            fake.fail_next(500, path_prefix="/v1/chat")
            with pytest.raises(openai.InternalServerError):
                client.chat.completions.create(model="gpt-4o", messages=HI, max_tokens=2_000)
        client.chat.completions.create(model="gpt-4o", messages=HI, max_tokens=2_000)
        assert tracker.request_count == 1
        assert tracker.total_cost == Decimal("0.02")
    finally:
        tracker.close()


# -- usage problems never break the call -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("usage", "reason"),
    [
        ({"prompt_tokens": -5, "completion_tokens": 3}, "prompt_tokens is negative: -5"),
        ({"prompt_tokens": "lots", "completion_tokens": 3}, "prompt_tokens is not a number: str"),
        ("garbage", "usage has neither prompt_tokens nor input_tokens"),
        (None, "no usage in response"),
    ],
)
def test_malformed_openai_usage_is_recorded_unpriced(
    fake: FakeProvider, tracker: CostTracker, usage: Any, reason: str
) -> None:
    """A malformed usage reaches the caller's code unharmed and is recorded unpriced with the reason."""
    fake.set_raw_usage("gpt-4o", usage)
    client = wrap_openai(tracker, openai_client(fake))
    response = client.chat.completions.create(model="gpt-4o", messages=HI)
    assert response.choices[0].message.content == "Hello from the fake provider."
    list(
        client.chat.completions.create(model="gpt-4o", messages=HI, stream=True, stream_options={"include_usage": True})
    )
    assert [(e["cost"], e["reason"]) for e in tracker.history] == [(None, reason)] * 2
    assert tracker.unpriced_count == 2


def test_malformed_anthropic_stream_usage_is_recorded_unpriced(fake: FakeProvider, tracker: CostTracker) -> None:
    """An Anthropic stream with a text input count is read to its end by the caller and recorded unpriced."""
    fake.set_raw_usage(SONNET, {"input_tokens": "lots", "output_tokens": 5})
    client = wrap_anthropic(tracker, anthropic_client(fake))
    with client.messages.stream(model=SONNET, max_tokens=16, messages=HI) as stream:
        assert stream.get_final_text() == "Hello from the fake provider."
    assert (last(tracker)["cost"], last(tracker)["reason"]) == (None, "input_tokens is not a number: str")


def test_missing_usage_is_estimated_when_asked(fake: FakeProvider, tracker: CostTracker) -> None:
    """estimate_missing=True: a response without usage is counted with litellm's token counter, flagged estimated."""
    fake.set_raw_usage("gpt-4o", None)
    client = wrap_openai(tracker, openai_client(fake), estimate_missing=True)
    client.chat.completions.create(model="gpt-4o", messages=HI)
    entry = last(tracker)
    prompt = litellm.token_counter(model="gpt-4o", messages=HI)
    output = litellm.token_counter(model="gpt-4o", text="Hello from the fake provider.", count_response_tokens=True)
    assert (entry["prompt_tokens"], entry["completion_tokens"]) == (prompt, output)
    assert entry["reason"] == ESTIMATED
    assert entry["cost"] == prompt * Decimal("0.0000025") + output * Decimal("0.00001")


def test_a_failing_extractor_never_breaks_the_call(fake: FakeProvider, tracker: CostTracker) -> None:
    """A registered extractor that raises: the caller gets the response, the call is recorded unpriced."""

    def explode(response: Any) -> Usage:
        raise RuntimeError("extractor bug")

    register_usage_extractor("acme-exploding", explode)
    client = wrap_openai(tracker, openai_client(fake), provider="acme-exploding")
    assert client.chat.completions.create(model="gpt-4o", messages=HI).choices
    assert (last(tracker)["cost"], last(tracker)["reason"]) == (None, "could not read usage: RuntimeError")


def test_unregistered_compatible_provider_reads_the_sdk_shape(fake: FakeProvider, tracker: CostTracker) -> None:
    """wrap_openai(provider=...) for a provider without an extractor reads OpenAI's shape and records the name."""
    client = wrap_openai(tracker, openai_client(fake), provider="Acme-Compatible")
    client.chat.completions.create(model="gpt-4o", messages=HI)
    assert (last(tracker)["provider"], last(tracker)["cost"]) == ("acme-compatible", Decimal("0.02"))


def test_request_errors_reach_the_caller_and_record_nothing(fake: FakeProvider, tracker: CostTracker) -> None:
    """A provider error is the caller's as usual (same exception class); nothing is recorded for it."""
    fake.fail_next(400, path_prefix="/v1/messages")
    client = wrap_anthropic(tracker, anthropic_client(fake))
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(model=SONNET, max_tokens=16, messages=HI)
    assert tracker.request_count == 0


def test_wrap_rejects_bad_arguments(fake: FakeProvider, tracker: CostTracker) -> None:
    """wrap_openai needs a CostTracker and a provider name."""
    with pytest.raises(TypeError, match="tracker"):
        wrap_openai(object(), openai_client(fake))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="provider"):
        wrap_openai(tracker, openai_client(fake), provider="")


# -- track(): manual tracking (tracker.py), its bad input --------------------------------------------------------
def test_track_prices_openai_convention_counts(tracker: CostTracker) -> None:
    """track(model="gpt-4o", prompt_tokens=10_000, completion_tokens=500, cache_read_tokens=8_000) costs $0.02."""
    entry = tracker.track(model="gpt-4o", prompt_tokens=10_000, completion_tokens=500, cache_read_tokens=8_000)
    assert entry["cost"] == Decimal("0.02")
    anthropic_entry = tracker.track(
        model=SONNET, prompt_tokens=10_100, completion_tokens=500, cache_read_tokens=8_000, cache_write_tokens=2_000
    )
    assert anthropic_entry["cost"] == ANTHROPIC_CACHED


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"prompt_tokens": -5}, ValueError, "prompt_tokens"),
        ({"completion_tokens": -1}, ValueError, "completion_tokens"),
        ({"prompt_tokens": "10"}, TypeError, "prompt_tokens"),
        ({"completion_tokens": 2.0}, TypeError, "completion_tokens"),
        ({"cache_read_tokens": None}, TypeError, "cache_read_tokens"),
        ({"reasoning_tokens": True}, TypeError, "reasoning_tokens"),
        ({"model": None}, TypeError, "model"),
        ({"model": ""}, TypeError, "model"),
        ({"cache_read_tokens": 11}, ValueError, "prompt_tokens"),
        ({"metadata": "user=alice"}, TypeError, "metadata"),
    ],
)
def test_track_bad_input_raises_naming_the_argument(
    tracker: CostTracker, kwargs: dict[str, Any], error: type, name: str
) -> None:
    """A negative, textual, None or inconsistent argument to track() raises, naming it; nothing is recorded."""
    args: dict[str, Any] = {"model": "gpt-4o", "prompt_tokens": 10, "completion_tokens": 5, **kwargs}
    with pytest.raises(error, match=name):
        tracker.track(**args)
    assert tracker.request_count == 0

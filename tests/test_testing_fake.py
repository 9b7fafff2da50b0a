"""Tests for tokencost.testing.FakeProvider, driven through litellm itself and through plain httpx."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import struct
import time
from collections.abc import Iterator
from typing import Any

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import httpx
import litellm
import openai
import pytest

from tokencost.testing import FakeProvider, RecordedRequest

litellm.suppress_debug_info = True

# litellm builds some pydantic schemas lazily on first use, and pydantic warns about their ReadOnly TypedDict
# items (not our code); the project turns warnings into errors.
pytestmark = pytest.mark.filterwarnings("ignore:.*ReadOnly. qualifier:UserWarning")

MESSAGES = [{"role": "user", "content": "hi"}]
OPENAI_MODEL = "openai/gpt-4o"
ANTHROPIC_MODEL = "anthropic/claude-sonnet-4-5"


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    with FakeProvider() as provider:
        yield provider


def _openai(fake: FakeProvider, **kwargs: Any) -> Any:
    return litellm.completion(
        model=kwargs.pop("model", OPENAI_MODEL),
        messages=MESSAGES,
        api_base=fake.openai_base,
        api_key=kwargs.pop("api_key", "sk-fake"),
        max_retries=0,
        **kwargs,
    )


def _anthropic(fake: FakeProvider, **kwargs: Any) -> Any:
    return litellm.completion(
        model=ANTHROPIC_MODEL,
        messages=MESSAGES,
        api_base=fake.anthropic_base,
        api_key="fake",
        max_retries=0,
        **kwargs,
    )


def _sse_events(text: str) -> list[tuple[str | None, str]]:
    events: list[tuple[str | None, str]] = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        name: str | None = None
        data = ""
        for line in block.splitlines():
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                data = line[len("data: ") :]
        events.append((name, data))
    return events


# ---------------------------------------------------------------------- lifecycle and recording


def test_addresses_are_loopback_and_documented_bases() -> None:
    """The fake binds 127.0.0.1 on a free port and derives the three base URLs from it."""
    with FakeProvider() as fake:
        assert fake.url == f"http://127.0.0.1:{fake.port}"
        assert fake.port > 0
        assert fake.openai_base == fake.url + "/v1"
        assert fake.anthropic_base == fake.url
        assert fake.linkup_base == fake.url + "/v1"


def test_url_before_start_raises_and_stop_is_idempotent() -> None:
    """Addresses need a running fake; stop() twice is harmless and start() works again after it."""
    fake = FakeProvider()
    with pytest.raises(RuntimeError):
        _ = fake.url
    assert fake.start() is fake
    with pytest.raises(RuntimeError):
        fake.start()
    fake.stop()
    fake.stop()
    fake.start()
    try:
        assert httpx.post(fake.url + "/nope").status_code == 404
    finally:
        fake.stop()


def test_stopped_fake_refuses_connections() -> None:
    """After stop() the port no longer answers, even on a connection kept alive before."""
    fake = FakeProvider().start()
    with httpx.Client() as client:
        assert client.post(fake.openai_base + "/chat/completions", json={"model": "m"}).status_code == 200
        url = fake.openai_base + "/chat/completions"
        fake.stop()
        with pytest.raises(httpx.TransportError):
            client.post(url, json={"model": "m"})


def test_unknown_path_and_method_answer_404_json(fake: FakeProvider) -> None:
    """Any path or method the fake does not serve gets a 404 with a JSON error body."""
    for response in (
        httpx.post(fake.url + "/v2/whatever"),
        httpx.get(fake.openai_base + "/chat/completions"),
    ):
        assert response.status_code == 404
        assert "error" in response.json()


def test_requests_are_recorded_without_the_credential(fake: FakeProvider) -> None:
    """Each request is recorded in order with path, parsed body and stream flag, never the key itself."""
    _openai(fake, api_key="sk-very-secret-value")
    httpx.post(fake.openai_base + "/embeddings", content=b"not json")
    first, second = fake.requests
    assert first == RecordedRequest(
        "POST",
        "/v1/chat/completions",
        {"model": "gpt-4o", "messages": MESSAGES},
        True,
        False,
    )
    assert second.body is None
    assert second.has_auth is False
    assert "sk-very-secret-value" not in repr(fake.requests)


def test_request_count_and_reset(fake: FakeProvider) -> None:
    """request_count filters by path prefix; reset() clears requests and configured behaviour."""
    fake.set_openai_usage("gpt-4o", prompt_tokens=99, completion_tokens=1)
    _openai(fake)
    _anthropic(fake)
    assert (
        fake.request_count(),
        fake.request_count("/v1/chat"),
        fake.request_count("/v1/messages"),
    ) == (2, 1, 1)
    fake.fail_next(500)
    fake.linkup_api_key = "other"
    fake.reset()
    assert fake.request_count() == 0
    assert fake.linkup_api_key == "linkup-test-key"
    assert _openai(fake).usage.prompt_tokens == 10


# ---------------------------------------------------------------------- OpenAI


def test_openai_completion_reports_configured_usage(fake: FakeProvider) -> None:
    """A plain OpenAI completion returns the fake text and the configured usage, which litellm prices."""
    fake.set_openai_usage("gpt-4o", prompt_tokens=10_000, completion_tokens=500, cached_tokens=8_000)
    response = _openai(fake)
    assert response.choices[0].message.content == "Hello from the fake provider."
    assert response.choices[0].finish_reason == "stop"
    assert response.model == "gpt-4o"
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (
        10_000,
        500,
    )
    assert response.usage.total_tokens == 10_500
    assert response.usage.prompt_tokens_details.cached_tokens == 8_000
    assert response._hidden_params["response_cost"] == pytest.approx(0.02)


def test_openai_reasoning_tokens_and_default_usage(fake: FakeProvider) -> None:
    """Reasoning tokens reach completion_tokens_details; a model with no usage set reports 10 + 5."""
    fake.set_openai_usage("o3", prompt_tokens=2_000, completion_tokens=4_000, reasoning_tokens=3_500)
    usage = _openai(fake, model="openai/o3").usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (2_000, 4_000)
    assert usage.completion_tokens_details.reasoning_tokens == 3_500
    default = _openai(fake, model="openai/some-unknown-model").usage
    assert (default.prompt_tokens, default.completion_tokens) == (10, 5)


def test_openai_stream_with_include_usage(fake: FakeProvider) -> None:
    """An OpenAI stream with include_usage delivers the text and the exact usage on litellm's last chunk."""
    fake.set_openai_usage("gpt-4o", prompt_tokens=1_234, completion_tokens=56, cached_tokens=1_000)
    stream = _openai(fake, stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == "Hello from the fake provider."
    last_usage = chunks[-1].usage
    assert (last_usage.prompt_tokens, last_usage.completion_tokens) == (1_234, 56)
    built = litellm.stream_chunk_builder(chunks)
    assert (built.usage.prompt_tokens, built.usage.completion_tokens) == (1_234, 56)
    assert built.usage.prompt_tokens_details.cached_tokens == 1_000
    assert fake.requests[0].stream is True


def test_openai_stream_wire_format(fake: FakeProvider) -> None:
    """On the wire: role, content deltas, a finish chunk, the usage chunk only when asked for, then [DONE]."""
    url = fake.openai_base + "/chat/completions"
    plain = _sse_events(httpx.post(url, json={"model": "m", "stream": True}).text)
    assert plain[-1] == (None, "[DONE]")
    chunks = [json.loads(data) for _, data in plain[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all("usage" not in chunk for chunk in chunks)

    with_usage = _sse_events(
        httpx.post(
            url,
            json={
                "model": "m",
                "stream": True,
                "stream_options": {"include_usage": True},
            },
        ).text
    )
    usage_chunk = json.loads(with_usage[-2][1])
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["prompt_tokens"] == 10
    assert usage_chunk["usage"]["total_tokens"] == 15


def test_openai_acompletion(fake: FakeProvider) -> None:
    """litellm.acompletion against the fake returns the configured usage."""
    fake.set_openai_usage("gpt-4o", prompt_tokens=321, completion_tokens=12)

    async def call() -> Any:
        return await litellm.acompletion(
            model=OPENAI_MODEL,
            messages=MESSAGES,
            api_base=fake.openai_base,
            api_key="sk-fake",
            max_retries=0,
        )

    response = asyncio.run(call())
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (321, 12)


def test_openai_embedding(fake: FakeProvider) -> None:
    """litellm.embedding gets one vector per input and prompt_tokens from set_openai_usage."""
    fake.set_openai_usage("text-embedding-3-small", prompt_tokens=42, completion_tokens=0)
    response = litellm.embedding(
        model="openai/text-embedding-3-small",
        input=["a", "b", "c"],
        api_base=fake.openai_base,
        api_key="sk-fake",
    )
    assert len(response.data) == 3
    assert response.usage.prompt_tokens == 42
    assert fake.requests[0].path == "/v1/embeddings"


def test_openai_embedding_base64(fake: FakeProvider) -> None:
    """encoding_format=base64 returns little-endian float32 vectors, as OpenAI does."""
    body = httpx.post(
        fake.openai_base + "/embeddings",
        json={"model": "e", "input": "x", "encoding_format": "base64"},
    ).json()
    raw = base64.b64decode(body["data"][0]["embedding"])
    assert len(struct.unpack(f"<{len(raw) // 4}f", raw)) == 8
    assert body["usage"] == {"prompt_tokens": 10, "total_tokens": 10}


# ---------------------------------------------------------------------- Anthropic


def test_anthropic_completion_usage_is_normalized_by_litellm(
    fake: FakeProvider,
) -> None:
    """Anthropic usage comes back normalized: prompt_tokens includes cache reads and writes."""
    fake.set_anthropic_usage(
        "claude-sonnet-4-5",
        input_tokens=100,
        output_tokens=500,
        cache_creation_input_tokens=2_000,
        cache_read_input_tokens=8_000,
    )
    response = _anthropic(fake)
    assert response.choices[0].message.content == "Hello from the fake provider."
    usage = response.usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (10_100, 500)
    assert (usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (
        8_000,
        2_000,
    )
    assert response._hidden_params["response_cost"] == pytest.approx(0.0177)
    request = fake.requests[0]
    assert (request.path, request.body["model"], request.has_auth) == (
        "/v1/messages",
        "claude-sonnet-4-5",
        True,
    )


def test_anthropic_stream_usage(fake: FakeProvider) -> None:
    """An Anthropic stream gives the text; full usage is on the last chunk's hidden params and the build."""
    fake.set_anthropic_usage(
        "claude-sonnet-4-5",
        input_tokens=7,
        output_tokens=33,
        cache_read_input_tokens=1_000,
    )
    chunks = list(_anthropic(fake, stream=True))
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == "Hello from the fake provider."
    hidden = chunks[-1]._hidden_params["usage"]
    assert (hidden.prompt_tokens, hidden.completion_tokens) == (1_007, 33)
    built = litellm.stream_chunk_builder(chunks)
    assert (built.usage.prompt_tokens, built.usage.completion_tokens) == (1_007, 33)
    assert (
        built.usage.cache_read_input_tokens,
        built.usage.cache_creation_input_tokens,
    ) == (1_000, 0)


def test_anthropic_async_stream(fake: FakeProvider) -> None:
    """An async Anthropic stream through litellm.acompletion assembles the same usage."""

    async def call() -> list[Any]:
        stream = await litellm.acompletion(
            model=ANTHROPIC_MODEL,
            messages=MESSAGES,
            api_base=fake.anthropic_base,
            api_key="fake",
            stream=True,
        )
        return [chunk async for chunk in stream]

    built = litellm.stream_chunk_builder(asyncio.run(call()))
    assert (built.usage.prompt_tokens, built.usage.completion_tokens) == (10, 5)


def test_anthropic_stream_event_sequence(fake: FakeProvider) -> None:
    """On the wire the Anthropic stream follows the real event order with usage in start and delta."""
    fake.set_anthropic_usage("c", input_tokens=3, output_tokens=9, cache_creation_input_tokens=4)
    text = httpx.post(fake.url + "/v1/messages", json={"model": "c", "stream": True}).text
    events = _sse_events(text)
    names = [name for name, _ in events]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[3:-3] == ["content_block_delta"] * (len(names) - 6)
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    start = json.loads(events[0][1])["message"]["usage"]
    assert start == {
        "input_tokens": 3,
        "cache_creation_input_tokens": 4,
        "cache_read_input_tokens": 0,
        "output_tokens": 1,
    }
    assert json.loads(events[-2][1])["usage"] == {"output_tokens": 9}


# ---------------------------------------------------------------------- malformed payloads, failures, delays


@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning")
@pytest.mark.parametrize("usage", [None, "garbage", {"prompt_tokens": -5, "completion_tokens": "x"}, [1, 2]])
def test_malformed_usage_does_not_crash_the_server(fake: FakeProvider, usage: Any) -> None:
    """A raw usage value is sent verbatim; whatever litellm makes of it, the fake keeps serving."""
    fake.set_raw_usage("gpt-4o", usage)
    fake.set_raw_usage("claude-sonnet-4-5", usage)
    raw = httpx.post(fake.openai_base + "/chat/completions", json={"model": "gpt-4o"}).json()
    assert raw["usage"] == usage
    for call in (_openai, _anthropic):
        # litellm may reject the payload (all its errors subclass openai.APIError); the fake must survive it
        with contextlib.suppress(openai.APIError):
            call(fake)
        with contextlib.suppress(openai.APIError):
            list(call(fake, stream=True, stream_options={"include_usage": True}))
    fake.set_openai_usage("gpt-4o", prompt_tokens=1, completion_tokens=2)
    assert _openai(fake).usage.completion_tokens == 2


def test_fail_next_openai_status(fake: FakeProvider) -> None:
    """fail_next answers exactly one request with the status; litellm raises the matching error."""
    fake.fail_next(
        429,
        {
            "error": {
                "message": "slow down",
                "type": "rate_limit_exceeded",
                "code": None,
            }
        },
    )
    with pytest.raises(litellm.RateLimitError) as caught:
        _openai(fake)
    assert caught.value.status_code == 429
    assert "slow down" in str(caught.value)
    assert _openai(fake).usage.prompt_tokens == 10


def test_fail_next_respects_path_prefix(fake: FakeProvider) -> None:
    """A failure scoped to /v1/messages is not consumed by OpenAI calls; its default body is Anthropic's."""
    fake.fail_next(500, path_prefix="/v1/messages")
    _openai(fake)
    with pytest.raises(litellm.InternalServerError) as caught:
        _anthropic(fake)
    assert caught.value.status_code == 500
    assert "api_error" in str(caught.value)
    fake.fail_next(418, b"I'm a teapot")
    response = httpx.post(fake.url + "/anything")
    assert (response.status_code, response.content) == (418, b"I'm a teapot")


def test_delay_makes_client_time_out_and_stop_interrupts_it() -> None:
    """set_delay holds the reply long enough for a client timeout; stop() does not wait for the delay."""
    fake = FakeProvider().start()
    fake.set_delay(30)
    try:
        with pytest.raises(litellm.Timeout):
            _openai(fake, timeout=0.3)
    finally:
        started = time.monotonic()
        fake.stop()
    assert time.monotonic() - started < 2


def test_stream_chunk_delay(fake: FakeProvider) -> None:
    """set_stream_chunk_delay spaces out SSE chunks."""
    fake.set_stream_chunk_delay(0.03)
    started = time.monotonic()
    list(_openai(fake, stream=True))
    assert time.monotonic() - started >= 0.03 * 6


# ---------------------------------------------------------------------- Linkup


def _search(fake: FakeProvider, *, key: str | None = "linkup-test-key", **body: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    payload = {
        "q": "gpt-4o price per million tokens",
        "depth": "standard",
        "outputType": "structured",
        "structuredOutputSchema": "{}",
        "includeSources": True,
        **body,
    }
    return httpx.post(fake.linkup_base + "/search", json=payload, headers=headers, timeout=5)


def test_linkup_requires_bearer_key(fake: FakeProvider) -> None:
    """Missing or wrong Bearer key gets 401 with Linkup's UNAUTHORIZED error body."""
    for key in (None, "wrong"):
        response = _search(fake, key=key)
        assert response.status_code == 401
        body = response.json()
        assert body["statusCode"] == 401
        assert body["error"]["code"] == "UNAUTHORIZED"
        assert isinstance(body["error"]["message"], str)
        assert body["error"]["details"] == []
    assert [r.has_auth for r in fake.requests] == [False, True]


def test_linkup_answer_with_sources_and_depth(fake: FakeProvider) -> None:
    """The configured answer comes back as {data, sources}; a depth-specific answer wins for that depth."""
    sources = [
        {
            "name": "Pricing",
            "url": "https://openai.com/api/pricing",
            "snippet": "$2.50 / 1M",
        }
    ]
    fake.set_linkup_answer({"input": 2.5}, sources=sources)
    fake.set_linkup_answer({"input": 9.9}, depth="deep")
    assert _search(fake).json() == {"data": {"input": 2.5}, "sources": sources}
    assert _search(fake, depth="deep").json() == {"data": {"input": 9.9}, "sources": []}
    assert _search(fake, includeSources=False).json() == {"input": 2.5}
    assert fake.request_count("/v1/search") == 3


def test_linkup_without_answer_or_query(fake: FakeProvider) -> None:
    """No configured answer gives 400 SEARCH_QUERY_NO_RESULT; an empty query gives 400 VALIDATION_ERROR."""
    response = _search(fake)
    assert (response.status_code, response.json()["error"]["code"]) == (
        400,
        "SEARCH_QUERY_NO_RESULT",
    )
    fake.set_linkup_answer({})
    response = _search(fake, q="")
    assert (response.status_code, response.json()["error"]["code"]) == (
        400,
        "VALIDATION_ERROR",
    )


def test_linkup_queue_errors_raw_bytes_and_hang(fake: FakeProvider) -> None:
    """Queued replies are served in order: a 429 body, a raw non-JSON 502, a hang, then the answer."""
    fake.set_linkup_answer({"ok": True})
    too_many = FakeProvider.linkup_error(429, "TOO_MANY_REQUESTS", "Rate limit exceeded")
    assert too_many == {
        "statusCode": 429,
        "error": {
            "code": "TOO_MANY_REQUESTS",
            "message": "Rate limit exceeded",
            "details": [],
        },
    }
    fake.queue_linkup(429, too_many)
    fake.queue_linkup(502, b"<html>Bad Gateway</html>")
    fake.queue_linkup(200, hang=5)
    fake.queue_linkup(402)

    first = _search(fake)
    assert (first.status_code, first.json()) == (429, too_many)
    second = _search(fake)
    assert (second.status_code, second.content) == (502, b"<html>Bad Gateway</html>")
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            fake.linkup_base + "/search",
            json={"q": "x"},
            headers={"Authorization": "Bearer linkup-test-key"},
            timeout=0.2,
        )
    fourth = _search(fake)
    assert (fourth.status_code, fourth.json()["statusCode"]) == (402, 402)
    assert _search(fake).json() == {"data": {"ok": True}, "sources": []}


def test_linkup_unauthenticated_request_does_not_consume_queue(
    fake: FakeProvider,
) -> None:
    """A 401 is decided before the queue, so queued replies wait for an authenticated search."""
    fake.queue_linkup(500)
    assert _search(fake, key=None).status_code == 401
    assert _search(fake).status_code == 500

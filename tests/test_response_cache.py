"""Response caching for wrapped OpenAI and Anthropic clients (issue 20), against the loopback fake provider."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import anthropic
import litellm
import openai
import pytest
from litellm.caching.caching import Cache
from pytest_redis import factories

from tokencost import Budget, BudgetExceededError, CostTracker
from tokencost.response_cache import CacheStats
from tokencost.testing import FakeProvider

try:  # the HTTP client the installed openai SDK is built on (httpx2 since openai 3)
    import httpx2
except ImportError:  # pragma: no cover - older openai SDKs
    import httpx as httpx2  # type: ignore[no-redef]

pytestmark = pytest.mark.filterwarnings(
    # The Anthropic SDK warns that claude-sonnet-4-5 (the model of the design's reference numbers) is deprecated.
    "ignore:The model 'claude-sonnet-4-5' is deprecated:DeprecationWarning"
)

IN_CI = os.environ.get("CI", "").lower() == "true"
HI = [{"role": "user", "content": "hi"}]
SONNET = "claude-sonnet-4-5"
PATHS = {"openai": "/v1/chat", "anthropic": "/v1/messages"}

redis_cache_proc = factories.redis_proc(port=None)


@pytest.fixture
def fake(fake_server: FakeProvider) -> FakeProvider:
    fake_server.reset()
    fake_server.set_openai_usage("gpt-4o", prompt_tokens=10_000, completion_tokens=500, cached_tokens=8_000)
    fake_server.set_anthropic_usage(
        SONNET, input_tokens=100, output_tokens=500, cache_creation_input_tokens=2_000, cache_read_input_tokens=8_000
    )
    return fake_server


@pytest.fixture
def tracker() -> Iterator[CostTracker]:
    t = CostTracker(print_summary=False)
    yield t
    t.close()


@pytest.fixture(params=["memory", "disk", "folder", "litellm-cache", "litellm-redis"])
def cache_choice(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Each cache= choice: "memory", "disk" (the default folder), a folder path, litellm Cache objects."""
    choice = request.param
    if choice == "disk":
        monkeypatch.chdir(tmp_path)
        return "disk"
    if choice == "folder":
        return tmp_path / "responses"
    if choice == "litellm-cache":
        return Cache()
    if choice == "litellm-redis":
        if shutil.which("redis-server") is None:
            message = "redis-server is not on PATH (Debian: apt-get install redis-server)"
            if IN_CI:
                pytest.fail(message + "; CI=true requires it")
            pytest.skip(message)
        proc = request.getfixturevalue("redis_cache_proc")
        cache = Cache(type="redis", host=proc.host, port=str(proc.port))
        cache.cache.redis_client.flushdb()
        return cache
    return choice


def client_for(sdk: str, fake: FakeProvider, *, is_async: bool) -> Any:
    if sdk == "openai":
        cls: Any = openai.AsyncOpenAI if is_async else openai.OpenAI
        return cls(api_key="sk-fake", base_url=fake.openai_base, max_retries=0)
    cls = anthropic.AsyncAnthropic if is_async else anthropic.Anthropic
    return cls(api_key="fake", base_url=fake.url, max_retries=0)


def wrap(tracker: CostTracker, sdk: str, fake: FakeProvider, cache: Any, *, is_async: bool = False) -> Any:
    client = client_for(sdk, fake, is_async=is_async)
    if sdk == "openai":
        return tracker.wrap_openai(client, cache=cache)
    return tracker.wrap_anthropic(client, cache=cache)


def create(sdk: str, client: Any, **kwargs: Any) -> Any:
    if sdk == "openai":
        return client.chat.completions.create(**{"model": "gpt-4o", "messages": HI, **kwargs})
    return client.messages.create(**{"model": SONNET, "max_tokens": 512, "messages": HI, **kwargs})


def text_of(sdk: str, result: Any) -> str:
    if sdk == "openai":
        return str(result.choices[0].message.content)
    return "".join(block.text for block in result.content)


def stream_text(sdk: str, items: list[Any]) -> str:
    if sdk == "openai":
        return "".join(c.choices[0].delta.content or "" for c in items if c.choices)
    return "".join(e.delta.text for e in items if e.type == "content_block_delta")


def response_type(sdk: str) -> type:
    return openai.types.chat.ChatCompletion if sdk == "openai" else anthropic.types.Message


def item_types(sdk: str) -> tuple[type, ...]:
    if sdk == "openai":
        return (openai.types.chat.ChatCompletionChunk,)
    return tuple(anthropic.types.RawMessageStreamEvent.__args__)  # type: ignore[attr-defined]


def stream_type(sdk: str, *, is_async: bool) -> type:
    module: Any = openai if sdk == "openai" else anthropic
    return module.AsyncStream if is_async else module.Stream


def assert_hit(tracker: CostTracker, first: dict[str, Any], *, hits: int = 1, misses: int = 1) -> None:
    """The last event is a hit: status cache_hit, cost 0, the saving of the call it replaced (``first``)."""
    hit = tracker.history[-1]
    assert hit["status"] == "cache_hit"
    assert hit["cost"] == Decimal(0)
    assert first["cost"] > 0
    assert hit["saved_by_cache"] == first["cost"]
    assert hit["model"] == first["model"]
    assert (hit["prompt_tokens"], hit["completion_tokens"]) == (first["prompt_tokens"], first["completion_tokens"])
    assert tracker.cache_stats == CacheStats(hits=hits, misses=misses, saved=first["cost"] * hits)


# -- the whole matrix: both SDKs, sync and async, plain and streamed, every cache choice ---------------------------
@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
def test_sync_hit_sends_nothing_and_returns_the_sdk_type(
    sdk: str, fake: FakeProvider, tracker: CostTracker, cache_choice: Any
) -> None:
    client = wrap(tracker, sdk, fake, cache_choice)
    answer = create(sdk, client)
    first = tracker.history[-1]
    assert first["status"] == "ok"

    again = create(sdk, client)

    assert fake.request_count(PATHS[sdk]) == 1
    assert type(again) is response_type(sdk)
    assert text_of(sdk, again) == text_of(sdk, answer)
    assert again.id == answer.id
    assert_hit(tracker, first)  # current at return: no flush


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
def test_async_hit_sends_nothing_and_returns_the_sdk_type(
    sdk: str, fake: FakeProvider, tracker: CostTracker, cache_choice: Any
) -> None:
    async def main() -> None:
        client = wrap(tracker, sdk, fake, cache_choice, is_async=True)
        answer = await create(sdk, client)
        first = tracker.history[-1]
        again = await create(sdk, client)
        assert fake.request_count(PATHS[sdk]) == 1
        assert type(again) is response_type(sdk)
        assert text_of(sdk, again) == text_of(sdk, answer)
        assert_hit(tracker, first)

    asyncio.run(main())


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
def test_sync_stream_is_cached_whole_and_replayed_as_a_stream(
    sdk: str, fake: FakeProvider, tracker: CostTracker, cache_choice: Any
) -> None:
    client = wrap(tracker, sdk, fake, cache_choice)
    items = list(create(sdk, client, stream=True))
    first = tracker.history[-1]
    assert first["status"] == "ok"

    replay = create(sdk, client, stream=True)
    assert_hit(tracker, first)  # recorded when the replay is returned, before it is read
    assert isinstance(replay, stream_type(sdk, is_async=False))
    with replay:
        replayed = list(replay)

    assert fake.request_count(PATHS[sdk]) == 1
    assert [type(i) for i in replayed] == [type(i) for i in items]
    assert all(isinstance(i, item_types(sdk)) for i in replayed)
    assert [i.model_dump() for i in replayed] == [i.model_dump() for i in items]
    assert stream_text(sdk, replayed) == stream_text(sdk, items) != ""
    assert tracker.request_count == 2


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
def test_async_stream_is_cached_whole_and_replayed_as_a_stream(
    sdk: str, fake: FakeProvider, tracker: CostTracker, cache_choice: Any
) -> None:
    async def main() -> None:
        client = wrap(tracker, sdk, fake, cache_choice, is_async=True)
        items = [i async for i in await create(sdk, client, stream=True)]
        first = tracker.history[-1]
        replay = await create(sdk, client, stream=True)
        assert_hit(tracker, first)
        assert isinstance(replay, stream_type(sdk, is_async=True))
        async with replay:
            replayed = [i async for i in replay]
        assert fake.request_count(PATHS[sdk]) == 1
        assert [i.model_dump() for i in replayed] == [i.model_dump() for i in items]
        assert all(isinstance(i, item_types(sdk)) for i in replayed)
        assert stream_text(sdk, replayed) == stream_text(sdk, items) != ""

    asyncio.run(main())


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_embeddings_hit(is_async: bool, fake: FakeProvider, tracker: CostTracker) -> None:
    async def twice(client: Any) -> list[Any]:
        return [await client.embeddings.create(model="text-embedding-3-small", input=["a", "b"]) for _ in range(2)]

    client = wrap(tracker, "openai", fake, "memory", is_async=is_async)
    if is_async:
        first, again = asyncio.run(twice(client))
    else:
        first, again = [client.embeddings.create(model="text-embedding-3-small", input=["a", "b"]) for _ in range(2)]
    assert fake.request_count("/v1/embeddings") == 1
    assert type(again) is openai.types.CreateEmbeddingResponse
    assert [d.embedding for d in again.data] == [d.embedding for d in first.data]
    assert_hit(tracker, tracker.history[0])


def test_responses_api_hit_plain_and_streamed(tracker: CostTracker) -> None:
    """responses.create (the fake has no /v1/responses: the SDK's mock transport serves it and counts requests)."""
    body = json.loads((Path(__file__).parent / "fixtures" / "openai_responses_o3.json").read_text())
    sent: list[bool] = []

    def handle(request: httpx2.Request) -> httpx2.Response:
        stream = bool(json.loads(request.content).get("stream"))
        sent.append(stream)
        if not stream:
            return httpx2.Response(200, json=body)
        events = [
            {"type": "response.created", "sequence_number": 0, "response": {**body, "usage": None}},
            {"type": "response.output_text.delta", "sequence_number": 1, "delta": "Yes", "item_id": "m",
             "output_index": 0, "content_index": 0, "logprobs": []},
            {"type": "response.completed", "sequence_number": 2, "response": body},
        ]  # fmt: skip
        text = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)
        return httpx2.Response(200, text=text, headers={"content-type": "text/event-stream"})

    raw = openai.OpenAI(
        api_key="sk-fake",
        base_url="http://127.0.0.1:9/v1",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(handle)),
    )
    client = tracker.wrap_openai(raw, cache="memory")
    first = client.responses.create(model="o3", input="Does the schedule fit?")
    again = client.responses.create(model="o3", input="Does the schedule fit?")
    assert sent == [False]
    assert type(again) is openai.types.responses.Response
    assert again.output_text == first.output_text
    assert_hit(tracker, tracker.history[0])
    events = list(client.responses.create(model="o3", input="Does the schedule fit?", stream=True))
    replayed = list(client.responses.create(model="o3", input="Does the schedule fit?", stream=True))
    assert sent == [False, True]
    assert [type(e) for e in replayed] == [type(e) for e in events]
    assert replayed[-1].type == "response.completed"
    assert tracker.cache_stats.hits == 2


def test_a_stream_and_a_plain_call_are_different_entries(fake: FakeProvider, tracker: CostTracker) -> None:
    client = wrap(tracker, "openai", fake, "memory")
    create("openai", client)
    chunks = list(create("openai", client, stream=True))
    assert fake.request_count("/v1/chat") == 2
    assert all(isinstance(c, openai.types.chat.ChatCompletionChunk) for c in chunks)


def test_hidden_usage_chunk_stays_hidden_on_replay(fake: FakeProvider, tracker: CostTracker) -> None:
    """The caller did not ask for the usage chunk: the replay shows what the first stream showed, no more."""
    client = wrap(tracker, "openai", fake, "memory")
    shown = list(create("openai", client, stream=True))
    replayed = list(create("openai", client, stream=True))
    assert all(c.usage is None for c in shown)
    assert [c.model_dump() for c in replayed] == [c.model_dump() for c in shown]
    with_usage = list(create("openai", client, stream=True, stream_options={"include_usage": True}))
    assert fake.request_count("/v1/chat") == 2  # stream_options is part of the key
    assert with_usage[-1].usage is not None


def test_a_stream_not_read_to_its_end_is_not_cached(fake: FakeProvider, tracker: CostTracker) -> None:
    client = wrap(tracker, "anthropic", fake, "memory")
    stream = create("anthropic", client, stream=True)
    next(iter(stream))
    stream.close()
    list(create("anthropic", client, stream=True))
    assert fake.request_count("/v1/messages") == 2
    assert [e["status"] for e in tracker.history] == ["incomplete", "ok"]


# -- keys -------------------------------------------------------------------------------------------------------
OPENAI_CHANGES: list[dict[str, Any]] = [
    {"messages": [{"role": "user", "content": "hello"}]},
    {"model": "gpt-4o-mini"},
    {"temperature": 0.5},
    {"top_p": 0.9},
    {"max_tokens": 10},
    {"seed": 7},
    {"stop": ["\n"]},
    {"n": 2},
    {"response_format": {"type": "json_object"}},
    {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]},
    {"tool_choice": "none"},
    {"extra_body": {"reasoning_effort": "high"}},
]


@pytest.mark.parametrize("change", OPENAI_CHANGES, ids=lambda c: next(iter(c)))
def test_openai_key_covers_what_changes_the_answer(
    change: dict[str, Any], fake: FakeProvider, tracker: CostTracker
) -> None:
    fake.set_openai_usage("gpt-4o-mini", prompt_tokens=10, completion_tokens=5)
    client = wrap(tracker, "openai", fake, "memory")
    create("openai", client)
    create("openai", client, **change)
    assert fake.request_count("/v1/chat") == 2
    create("openai", client, **change)
    assert fake.request_count("/v1/chat") == 2  # the changed call is its own entry, hit the second time


ANTHROPIC_CHANGES: list[dict[str, Any]] = [
    {"system": "be brief"},
    {"max_tokens": 100},
    {"extra_body": {"temperature": 0.2}},
    {"stop_sequences": ["END"]},
    {"service_tier": "standard_only"},
    {"tool_choice": {"type": "none"}},
    {"tools": [{"name": "f", "description": "f", "input_schema": {"type": "object"}}]},
    {"thinking": {"type": "enabled", "budget_tokens": 1024}},
]


@pytest.mark.parametrize("change", ANTHROPIC_CHANGES, ids=lambda c: next(iter(c)))
def test_anthropic_key_covers_what_changes_the_answer(
    change: dict[str, Any], fake: FakeProvider, tracker: CostTracker
) -> None:
    client = wrap(tracker, "anthropic", fake, "memory")
    create("anthropic", client)
    create("anthropic", client, **change)
    assert fake.request_count("/v1/messages") == 2


def test_argument_order_and_timeout_do_not_change_the_key(fake: FakeProvider, tracker: CostTracker) -> None:
    client = wrap(tracker, "openai", fake, "memory")
    client.chat.completions.create(model="gpt-4o", messages=HI, temperature=0, response_format={"type": "text"})
    client.chat.completions.create(
        response_format={"type": "text"}, temperature=0, messages=HI, model="gpt-4o", timeout=30
    )
    assert fake.request_count("/v1/chat") == 1


def test_another_server_is_another_answer(fake: FakeProvider, tracker: CostTracker) -> None:
    """A copy of the client pointed at another base URL does not share entries with the first."""
    client = wrap(tracker, "openai", fake, "memory")
    create("openai", client)
    same = client.with_options(timeout=5)
    create("openai", same)
    assert fake.request_count("/v1/chat") == 1
    other_server = client.with_options(base_url=fake.url + "/v1/alias/")
    with pytest.raises(openai.NotFoundError):
        create("openai", other_server)  # sent (the fake knows no such path), not answered from the cache
    assert fake.request_count("/v1/alias") == 1


def test_wrapped_clients_of_one_tracker_share_the_memory_cache(fake: FakeProvider, tracker: CostTracker) -> None:
    create("openai", wrap(tracker, "openai", fake, "memory"))
    create("openai", wrap(tracker, "openai", fake, "memory"))
    assert fake.request_count("/v1/chat") == 1
    other = CostTracker(print_summary=False)
    try:
        create("openai", wrap(other, "openai", fake, "memory"))
    finally:
        other.close()
    assert fake.request_count("/v1/chat") == 2


def test_uncacheable_arguments_are_sent_every_time(fake: FakeProvider, tracker: CostTracker) -> None:
    """Messages given as an iterator cannot be keyed without consuming them: the call is sent, not cached."""
    client = wrap(tracker, "openai", fake, "memory")
    for _ in range(2):
        client.chat.completions.create(model="gpt-4o", messages=iter(HI))
    assert fake.request_count("/v1/chat") == 2
    assert [e["status"] for e in tracker.history] == ["ok", "ok"]
    assert tracker.cache_stats == CacheStats()


def test_other_methods_still_work_and_are_not_cached(fake: FakeProvider, tracker: CostTracker) -> None:
    client = wrap(tracker, "anthropic", fake, "memory")
    for _ in range(2):
        with client.messages.stream(model=SONNET, max_tokens=512, messages=HI) as stream:
            stream.get_final_message()
    assert fake.request_count("/v1/messages") == 2


# -- persistence, failures --------------------------------------------------------------------------------------
def test_disk_cache_serves_another_tracker_later(fake: FakeProvider, tmp_path: Path) -> None:
    """A folder outlives the process that filled it: a new tracker's identical call is a hit."""
    first = CostTracker(print_summary=False)
    try:
        create("anthropic", wrap(first, "anthropic", fake, tmp_path))
        cost = first.total_cost
    finally:
        first.close()
    second = CostTracker(print_summary=False)
    try:
        again = create("anthropic", wrap(second, "anthropic", fake, str(tmp_path)))
        assert type(again) is anthropic.types.Message
        assert fake.request_count("/v1/messages") == 1
        assert second.cache_stats == CacheStats(hits=1, misses=0, saved=cost)
    finally:
        second.close()


class BrokenBackend:
    """A cache backend that fails on every call."""

    def get_cache(self, key: str, **kwargs: Any) -> Any:
        raise ConnectionError("cache down")

    def set_cache(self, key: str, value: Any, **kwargs: Any) -> None:
        raise ConnectionError("cache down")

    async def async_get_cache(self, key: str, **kwargs: Any) -> Any:
        raise ConnectionError("cache down")

    async def async_set_cache(self, key: str, value: Any, **kwargs: Any) -> None:
        raise ConnectionError("cache down")


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_a_failing_cache_never_fails_the_call(
    is_async: bool, fake: FakeProvider, tracker: CostTracker, caplog: pytest.LogCaptureFixture
) -> None:
    cache = Cache()
    cache.cache = BrokenBackend()  # type: ignore[assignment]
    client = wrap(tracker, "openai", fake, cache, is_async=is_async)

    async def twice() -> list[Any]:
        return [await create("openai", client), await create("openai", client)]

    with caplog.at_level(logging.WARNING, logger="tokencost"):
        answers = asyncio.run(twice()) if is_async else [create("openai", client), create("openai", client)]
    assert all(type(a) is openai.types.chat.ChatCompletion for a in answers)
    assert fake.request_count("/v1/chat") == 2
    assert [e["status"] for e in tracker.history] == ["ok", "ok"]
    failures = [r for r in caplog.records if "response cache failed" in r.getMessage()]
    assert len(failures) == 2  # logged once for lookups, once for writes
    assert tracker.cache_stats.misses == 2


def test_an_entry_that_does_not_read_back_is_a_miss(fake: FakeProvider, tracker: CostTracker, tmp_path: Path) -> None:
    client = wrap(tracker, "openai", fake, tmp_path)
    create("openai", client)
    db = sqlite3.connect(tmp_path / "responses.sqlite3")
    (value,) = db.execute("SELECT value FROM responses").fetchone()
    entry = json.loads(value)
    entry["body"]["choices"] = "not a list"
    db.execute("UPDATE responses SET value = ?", (json.dumps(entry),))
    db.commit()
    db.close()
    answer = create("openai", client)
    assert type(answer) is openai.types.chat.ChatCompletion
    assert fake.request_count("/v1/chat") == 2
    assert [e["status"] for e in tracker.history] == ["ok", "ok"]


def test_bad_cache_arguments(fake: FakeProvider, tracker: CostTracker) -> None:
    client = client_for("openai", fake, is_async=False)
    with pytest.raises(TypeError, match="cache must be"):
        tracker.wrap_openai(client, cache=42)
    with pytest.raises(ValueError, match="cache must be"):
        tracker.wrap_openai(client, cache=" ")


# -- budgets ----------------------------------------------------------------------------------------------------
def test_a_hit_is_never_refused_by_a_money_budget(fake: FakeProvider) -> None:
    tracker = CostTracker(budget="0.01", print_summary=False)
    try:
        client = wrap(tracker, "openai", fake, "memory")
        create("openai", client)  # $0.02: crosses the budget
        assert tracker.budget_exceeded
        again = create("openai", client)  # answered from the cache: costs nothing, not refused
        assert type(again) is openai.types.chat.ChatCompletion
        with pytest.raises(BudgetExceededError):
            create("openai", client, temperature=1)  # a miss would be sent: refused, nothing sent
        assert fake.request_count("/v1/chat") == 1
        assert tracker.total_cost == Decimal("0.02")
    finally:
        tracker.close()


def test_a_token_budget_counts_a_hits_tokens(fake: FakeProvider) -> None:
    """A hit's tokens are counted by token budgets (as litellm's cache hits are); the hit itself is answered."""
    tracker = CostTracker(budgets=[Budget(max_tokens=15_000)], print_summary=False)
    try:
        client = wrap(tracker, "openai", fake, "memory")
        create("openai", client)  # 10,500 tokens
        create("openai", client)  # a hit: 10,500 more counted, crossing the limit
        (line,) = tracker.budget_lines()
        assert line.tokens == 21_000
        assert line.exceeded
        with pytest.raises(BudgetExceededError):
            create("openai", client, seed=1)
        assert fake.request_count("/v1/chat") == 1
    finally:
        tracker.close()


# -- stats ------------------------------------------------------------------------------------------------------
def test_cache_stats_count_litellm_cache_hits_too(fake: FakeProvider, tracker: CostTracker) -> None:
    litellm.callbacks = [tracker]
    litellm.cache = Cache()
    kwargs = {"model": "openai/gpt-4o", "messages": HI, "api_base": fake.openai_base, "api_key": "sk-fake"}
    litellm.completion(**kwargs)
    litellm.completion(**kwargs)
    first = tracker.history[0]
    create("openai", wrap(tracker, "openai", fake, "memory"))
    create("openai", wrap(tracker, "openai", fake, "memory"))
    stats = tracker.cache_stats
    assert stats.hits == 2
    assert stats.saved == first["cost"] * 2
    assert stats.misses == 1  # the wrapped client's first lookup
    tracker.reset()
    assert tracker.cache_stats == CacheStats()


# -- where the hits are shown ------------------------------------------------------------------------------------
def test_summary_and_report_show_the_hits(fake: FakeProvider, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from tokencost.cli import main

    url = f"sqlite:///{tmp_path}/ledger.db"
    tracker = CostTracker(store=url, print_summary=False)
    try:
        client = wrap(tracker, "openai", fake, "memory")
        create("openai", client)
        create("openai", client)
        create("openai", client)
        cost = tracker.history[0]["cost"]
        summary = tracker.summary()
        assert (summary.cache_hits, summary.cache_hits_saved_usd) == (2, cost * 2)
        assert summary.to_dict()["cache_hits"] == 2
        assert summary.to_dict()["cache_hits_saved"] == str(cost * 2)
    finally:
        tracker.close()
    result = CliRunner().invoke(main, ["report", "--store", url], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "Response cache: 2 calls answered from cache, saved $" in result.stdout
    data = json.loads(CliRunner().invoke(main, ["report", "--store", url, "--json"]).stdout)
    assert (data["cache_hits"], Decimal(data["cache_hits_saved"])) == (2, cost * 2)


def test_no_hits_no_response_cache_line(fake: FakeProvider, tracker: CostTracker) -> None:
    from rich.console import Console

    create("openai", wrap(tracker, "openai", fake, "memory"))
    console = Console(width=120, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(tracker.summary())
    text = console.export_text()
    assert "gpt-4o" in text
    assert "Response cache" not in text
    console.file.close()


EXIT_SCRIPT = """
import openai
from tokencost import CostTracker
from tokencost.testing import FakeProvider

with FakeProvider() as fake:
    tracker = CostTracker()
    client = tracker.wrap_openai(openai.OpenAI(api_key="sk-fake", base_url=fake.openai_base), cache="memory")
    for _ in range(2):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
print("done")
"""


def test_exit_summary_shows_the_hits() -> None:
    import subprocess
    import sys

    env = {**os.environ, "COLUMNS": "120", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    out = subprocess.run(
        [sys.executable, "-c", EXIT_SCRIPT], capture_output=True, text=True, timeout=120, env=env, check=True
    )
    assert out.stdout.strip() == "done"
    assert "Response cache: 1 call answered from cache, saved $" in out.stderr

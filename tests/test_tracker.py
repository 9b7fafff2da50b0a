"""The tracker over every litellm entry point: counted exactly once, current when the call returns."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
from decimal import Decimal
from typing import Any

import litellm
import pytest

from tokencost import CostTracker
from tokencost.testing import FakeProvider

MESSAGES = [{"role": "user", "content": "hello"}]


def _openai(fake: FakeProvider, **extra: Any) -> dict[str, Any]:
    return {
        "model": "openai/gpt-4o",
        "messages": MESSAGES,
        "api_base": fake.openai_base,
        "api_key": "sk-fake",
        "max_retries": 0,
        **extra,
    }


def _anthropic(fake: FakeProvider, **extra: Any) -> dict[str, Any]:
    return {
        "model": "anthropic/claude-sonnet-4-5",
        "messages": MESSAGES,
        "api_base": fake.anthropic_base,
        "api_key": "fake",
        **extra,
    }


@pytest.fixture
def priced(fake: FakeProvider) -> FakeProvider:
    """The fake reporting the usage of the worked cases in README.md ("How pricing works")."""
    fake.set_openai_usage("gpt-4o", prompt_tokens=10_000, completion_tokens=500, cached_tokens=8_000)
    fake.set_anthropic_usage(
        "claude-sonnet-4-5",
        input_tokens=100,
        output_tokens=500,
        cache_creation_input_tokens=2_000,
        cache_read_input_tokens=8_000,
    )
    fake.set_openai_usage("text-embedding-3-small", prompt_tokens=1_000_000, completion_tokens=0)
    return fake


def test_completion_is_current_at_return(tracker: CostTracker, priced: FakeProvider) -> None:
    """Right after completion() returns, totals, history and breakdowns include the call, exactly once."""
    litellm.completion(**_openai(priced))
    assert tracker.request_count == 1
    assert tracker.total_cost == Decimal("0.02")
    assert tracker.cost_by_model == {"gpt-4o": Decimal("0.02")}
    assert tracker.cost_by_provider == {"openai": Decimal("0.02")}
    entry = tracker.history[0]
    assert entry["prompt_tokens"] == 10_000 and entry["completion_tokens"] == 500
    assert entry["cache_read_tokens"] == 8_000 and entry["timestamp"].endswith("+00:00")
    time.sleep(0.2)  # a late duplicate success event must not count twice
    assert tracker.request_count == 1


def test_stream_with_usage_is_current_when_exhausted(tracker: CostTracker, priced: FakeProvider) -> None:
    """An OpenAI stream with include_usage is priced from the provider's usage once the consumer exhausts it."""
    chunks = list(litellm.completion(**_openai(priced, stream=True, stream_options={"include_usage": True})))
    assert chunks
    assert tracker.request_count == 1
    assert tracker.total_cost == Decimal("0.02")


def test_stream_without_usage_is_still_recorded(tracker: CostTracker, priced: FakeProvider) -> None:
    """Without include_usage litellm estimates tokens; the call is still recorded once, and priced."""
    for _ in litellm.completion(**_openai(priced, stream=True)):
        pass
    assert tracker.request_count == 1
    assert tracker.history[0]["priced"] is True


def test_anthropic_plain_and_stream(tracker: CostTracker, priced: FakeProvider) -> None:
    """Anthropic cache writes and reads are billed once each, plain and streamed: $0.0177 per call."""
    litellm.completion(**_anthropic(priced))
    assert tracker.total_cost == Decimal("0.0177")
    for _ in litellm.completion(**_anthropic(priced, stream=True)):
        pass
    assert tracker.request_count == 2
    assert tracker.total_cost == Decimal("0.0354")


def test_acompletion_and_async_stream(tracker: CostTracker, priced: FakeProvider) -> None:
    """acompletion is recorded before await returns; an async stream once the loop's events are flushed."""

    async def main() -> tuple[int, int]:
        await litellm.acompletion(**_openai(priced))
        at_return = tracker.request_count
        stream = await litellm.acompletion(**_anthropic(priced, stream=True))
        async for _ in stream:
            pass
        await tracker.aflush(5)
        return at_return, tracker.request_count

    at_return, after_stream = asyncio.run(main())
    assert at_return == 1
    assert after_stream == 2
    assert tracker.total_cost == Decimal("0.0377")


def test_thousand_concurrent_acompletions_none_lost(tracker: CostTracker) -> None:
    """1,000 concurrent acompletion calls in asyncio.run leave exactly 1,000 events after it returns."""

    async def main() -> None:
        await asyncio.gather(
            *[litellm.acompletion(model="gpt-4o", messages=MESSAGES, mock_response="ok") for _ in range(1000)]
        )

    asyncio.run(main())
    assert tracker.request_count == 1000
    assert tracker.unpriced_count == 0


def test_embeddings_sync_and_async(tracker: CostTracker, priced: FakeProvider) -> None:
    """embedding and aembedding are priced from their prompt tokens: 1M tokens of text-embedding-3-small = $0.02."""
    litellm.embedding(
        model="openai/text-embedding-3-small", input=["hi"], api_base=priced.openai_base, api_key="sk-fake"
    )
    asyncio.run(
        litellm.aembedding(
            model="openai/text-embedding-3-small", input=["hi"], api_base=priced.openai_base, api_key="sk-fake"
        )
    )
    tracker.flush(5)
    assert tracker.request_count == 2
    assert tracker.total_cost == Decimal("0.04")


def test_router_sync_and_async(tracker: CostTracker, priced: FakeProvider) -> None:
    """Router.completion and Router.acompletion are counted once each, with the Router's model group."""
    router = litellm.Router(
        model_list=[
            {
                "model_name": "main",
                "litellm_params": {"model": "openai/gpt-4o", "api_base": priced.openai_base, "api_key": "sk-fake"},
            }
        ]
    )
    router.completion(model="main", messages=MESSAGES)
    asyncio.run(router.acompletion(model="main", messages=MESSAGES))
    tracker.flush(5)
    assert tracker.request_count == 2
    assert tracker.total_cost == Decimal("0.04")
    assert tracker.cost_by("model_group") == {"main": Decimal("0.04")}


def test_cache_hit_costs_nothing_and_counts_savings(tracker: CostTracker) -> None:
    """A litellm cache hit is recorded at $0 with what it saved in saved_by_cache."""
    litellm.cache = litellm.Cache()
    kwargs = {"model": "gpt-4o", "messages": MESSAGES, "mock_response": "cached answer", "caching": True}
    litellm.completion(**kwargs)
    litellm.completion(**kwargs)
    tracker.flush(5)
    assert tracker.request_count == 2
    first, second = tracker.history
    assert second["status"] == "cache_hit" and second["cost"] == Decimal("0.00")
    assert tracker.saved_by_cache == first["cost"]
    assert tracker.total_cost == first["cost"]


def test_metadata_user_and_tags_breakdowns(tracker: CostTracker) -> None:
    """cost_by reads metadata=, user= and tags, as well as scope() metadata."""
    import tokencost

    litellm.completion(
        model="gpt-4o",
        messages=MESSAGES,
        mock_response="a",
        user="alice",
        metadata={"tags": ["batch", "nightly"], "team": "search"},
    )
    with tokencost.scope(user="bob", tags=["web"]):
        litellm.completion(model="gpt-4o", messages=MESSAGES, mock_response="a")
    one = tracker.history[0]["cost"]
    assert tracker.cost_by("user") == {"alice": one, "bob": one}
    assert tracker.cost_by("tag") == {"batch": one, "nightly": one, "web": one}
    assert tracker.cost_by("team") == {"search": one, "(none)": one}


def test_two_trackers_both_count_and_close_stops(priced: FakeProvider) -> None:
    """Two trackers with the same settings both get events; a closed one gets no more."""
    first, second = CostTracker(print_summary=False), CostTracker(print_summary=False)
    litellm.callbacks = [first, second]
    litellm.completion(**_openai(priced))
    assert (first.request_count, second.request_count) == (1, 1)
    first.close()
    litellm.completion(**_openai(priced))
    second.flush(5)
    assert (first.request_count, second.request_count) == (1, 2)
    second.close()


@pytest.mark.parametrize("usage", [{"input_tokens": -3, "output_tokens": 5}, None, {}])
def test_malformed_usage_never_breaks_the_call(
    tracker: CostTracker, fake: FakeProvider, usage: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Usage that is negative, null or empty: the call returns normally and the event is unpriced or zero."""
    fake.set_raw_usage("claude-sonnet-4-5" if usage is not None and usage != {} else "gpt-4o", usage)
    caplog.set_level(logging.WARNING, logger="tokencost")
    kwargs = _anthropic(fake) if usage is not None and usage != {} else _openai(fake)
    response = litellm.completion(**kwargs)
    assert response.choices
    assert tracker.request_count == 1
    event = tracker.history[0]
    if usage and usage.get("input_tokens", 0) < 0:
        assert event["priced"] is False and "negative" in event["reason"]


def test_threads_give_exact_totals(tracker: CostTracker) -> None:
    """32 threads x 200 calls give exact counts and sums."""

    def work() -> None:
        for _ in range(200):
            tracker.track(model="gpt-4o", prompt_tokens=10_000, completion_tokens=500, cache_read_tokens=8_000)

    threads = [threading.Thread(target=work) for _ in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert tracker.request_count == 6_400
    assert tracker.total_cost == Decimal("128.00")


def test_sync_completions_from_threads_are_exact(tracker: CostTracker) -> None:
    """Concurrent sync completions in 8 threads are each counted once and current in their own thread."""
    seen: list[int] = []

    def work() -> None:
        for _ in range(20):
            litellm.completion(model="gpt-4o", messages=MESSAGES, mock_response="ok")
        seen.append(tracker.request_count)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert tracker.request_count == 160
    assert min(seen) >= 20


def test_broken_stream_is_recorded_incomplete(tracker: CostTracker, priced: FakeProvider) -> None:
    """A stream the caller abandons after one chunk appears in the history as incomplete, with its prompt."""
    stream = litellm.completion(**_openai(priced, stream=True, stream_options={"include_usage": True}))
    next(iter(stream))
    del stream
    deadline = time.monotonic() + 5
    while tracker.request_count == 0 and time.monotonic() < deadline:
        gc.collect()  # the abandoned stream sits in a reference cycle until Python's collector runs
        time.sleep(0.05)
    (event,) = tracker.history
    assert event["status"] == "incomplete"
    assert event["prompt_tokens"] > 0
    assert "broken off" in event["reason"]


def test_track_rejects_bad_arguments(tracker: CostTracker) -> None:
    """track() names the bad argument: negative counts, strings, a None model."""
    with pytest.raises(ValueError, match="prompt_tokens"):
        tracker.track(model="gpt-4o", prompt_tokens=-5, completion_tokens=1)
    with pytest.raises(TypeError, match="completion_tokens"):
        tracker.track(model="gpt-4o", prompt_tokens=5, completion_tokens="7")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="model"):
        tracker.track(model=None, prompt_tokens=5, completion_tokens=7)  # type: ignore[arg-type]
    assert tracker.request_count == 0


def test_frame_reading_still_works_in_this_litellm() -> None:
    """litellm's function_setup still exposes the call's kwargs to pre-call rules (fails loudly if it moves)."""
    from tokencost._litellm_glue import call_frame_kwargs

    seen: list[Any] = []

    def rule(_text: str) -> bool:
        seen.append(call_frame_kwargs())
        return True

    litellm.pre_call_rules.append(rule)
    try:
        litellm.completion(model="gpt-4o", messages=MESSAGES, mock_response="ok", user="zed")
    finally:
        litellm.pre_call_rules.remove(rule)
    assert seen and seen[0] is not None
    kwargs, _ = seen[0]
    assert kwargs["model"] == "gpt-4o" and kwargs["user"] == "zed"


def test_export_csv_and_json_sum_to_total(tracker: CostTracker, tmp_path: Any) -> None:
    """export_csv and export_json write every event; their exact costs add up to total_cost."""
    import csv
    import json

    tracker.track(model="gpt-4o", prompt_tokens=10_000, completion_tokens=500, cache_read_tokens=8_000)
    tracker.track(model="o3", prompt_tokens=2_000, completion_tokens=4_000, reasoning_tokens=3_500)
    tracker.track(model="acme-unknown-7", prompt_tokens=1, completion_tokens=1)
    assert tracker.export_csv(tmp_path / "e.csv") == 3
    assert tracker.export_json(tmp_path / "e.json") == 3
    with open(tmp_path / "e.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    data = json.loads((tmp_path / "e.json").read_text())
    for records in (rows, data):
        assert sum(Decimal(r["cost"]) for r in records if r["cost"] not in ("", None)) == tracker.total_cost
    assert tracker.total_cost == Decimal("0.056")

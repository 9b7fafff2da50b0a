"""Current at return on every entry point (issue 13, item 7): async streams, cache hits, mocked embeddings.

Right after a call returns (a stream: once exhausted), request_count and total_cost include it without flush(),
inside the event loop too, with nothing lost when the loop closes; a budget refuses the very next call.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import litellm
import pytest

from tokencost import Budget, BudgetExceededError, CostTracker
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
    fake.set_openai_usage("gpt-4o", prompt_tokens=10_000, completion_tokens=500, cached_tokens=8_000)  # $0.02
    fake.set_anthropic_usage("claude-sonnet-4-5", input_tokens=100, output_tokens=500)  # $0.0078
    return fake


@pytest.fixture
def cache() -> Iterator[None]:
    litellm.cache = litellm.Cache()
    yield
    litellm.cache = None


STREAMS = {
    "openai-include-usage": (
        lambda f: _openai(f, stream=True, stream_options={"include_usage": True}),
        Decimal("0.02"),
    ),
    "anthropic": (lambda f: _anthropic(f, stream=True), Decimal("0.0078")),
    "openai-estimated": (lambda f: _openai(f, stream=True), None),
    "mock": (lambda f: {"model": "gpt-4o", "messages": MESSAGES, "mock_response": "hi there", "stream": True}, None),
}


@pytest.mark.parametrize("kind", list(STREAMS))
def test_async_stream_is_current_once_exhausted(tracker: CostTracker, priced: FakeProvider, kind: str) -> None:
    """`async for chunk in await acompletion(stream=True)`: counted, complete, the moment the loop ends."""
    kwargs, cost = STREAMS[kind]

    async def main() -> tuple[int, Decimal, str]:
        async for _ in await litellm.acompletion(**kwargs(priced)):
            pass
        return tracker.request_count, tracker.total_cost, tracker.history[0]["status"] if tracker.history else ""

    count, total, status = asyncio.run(main())
    assert (count, status) == (1, "ok")
    if cost is not None:
        assert total == cost
    assert tracker.request_count == 1


def test_async_streams_none_lost_when_the_loop_closes(tracker: CostTracker) -> None:
    """50 concurrent async streams in asyncio.run: 50 complete events right after it returns, no flush."""

    async def one() -> None:
        stream = await litellm.acompletion(model="gpt-4o", messages=MESSAGES, mock_response="hi there", stream=True)
        async for _ in stream:
            pass

    async def main() -> None:
        await asyncio.gather(*[one() for _ in range(50)])

    asyncio.run(main())
    assert tracker.request_count == 50
    assert {e["status"] for e in tracker.history} == {"ok"}
    assert {e["completion_tokens"] for e in tracker.history} == {2}


def test_sync_cache_hit_is_current_at_return(tracker: CostTracker, cache: None) -> None:
    """A sync cache hit is counted when completion() returns, not only after flush()."""
    kwargs = {"model": "gpt-4o", "messages": MESSAGES, "mock_response": "cached answer", "caching": True}
    litellm.completion(**kwargs)
    litellm.completion(**kwargs)
    assert tracker.request_count == 2
    assert tracker.history[1]["status"] == "cache_hit"


def test_async_cache_hit_is_current_inside_the_loop(tracker: CostTracker, cache: None) -> None:
    """An async cache hit inside asyncio.run is counted before await returns, and not lost when the loop closes."""
    kwargs = {"model": "gpt-4o", "messages": MESSAGES, "mock_response": "cached answer", "caching": True}
    litellm.completion(**kwargs)  # fills the cache
    assert tracker.request_count == 1

    async def main() -> int:
        await litellm.acompletion(**kwargs)
        return tracker.request_count

    assert asyncio.run(main()) == 2
    assert tracker.request_count == 2
    assert tracker.history[1]["status"] == "cache_hit"
    assert tracker.saved_by_cache == tracker.history[0]["cost"]


def test_mock_embedding_is_current_at_return(tracker: CostTracker) -> None:
    """embedding(mock_response=...) sends no request (so litellm calls no pre-API hook) and is still current."""
    litellm.embedding(model="text-embedding-3-small", input=["hi"], mock_response=[0.1, 0.2])
    assert tracker.request_count == 1


def test_budget_refuses_right_after_a_crossing_async_stream(priced: FakeProvider) -> None:
    """An async stream that crosses the budget: the very next call in the same loop is refused, no request sent."""
    tracker = CostTracker(budget="0.01", print_summary=False)
    litellm.callbacks = [tracker]

    async def main() -> None:
        async for _ in await litellm.acompletion(
            **_openai(priced, stream=True, stream_options={"include_usage": True})
        ):
            pass
        sent = priced.request_count()
        with pytest.raises(BudgetExceededError):
            await litellm.acompletion(**_openai(priced))
        assert priced.request_count() == sent

    asyncio.run(main())
    tracker.close()


def test_token_budget_refuses_right_after_a_crossing_cache_hit(priced: FakeProvider, cache: None) -> None:
    """A cache hit that crosses a token budget (its tokens count; its cost is $0) refuses the next call at once,
    sync and inside the event loop, with no request sent."""
    tracker = CostTracker(budgets=[Budget(max_tokens=15_000)], print_summary=False)
    litellm.callbacks = [tracker]
    kwargs = _openai(priced, caching=True)
    litellm.completion(**kwargs)  # 10,500 tokens
    sent = priced.request_count()

    async def main() -> None:
        await litellm.acompletion(**kwargs)  # a hit: 21,000 tokens, crossed
        with pytest.raises(BudgetExceededError):
            await litellm.acompletion(**_openai(priced))

    asyncio.run(main())
    with pytest.raises(BudgetExceededError):
        litellm.completion(**_openai(priced))
    assert priced.request_count() == sent
    tracker.close()


def test_litellm_internals_for_current_at_return_are_there() -> None:
    """The litellm internals tokencost patches while a tracker lives (docs/litellm.md); fails loudly if they move."""
    from litellm.litellm_core_utils.litellm_logging import Logging
    from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER
    from litellm.litellm_core_utils.thread_pool_executor import executor

    assert callable(type(executor).submit)
    assert callable(type(GLOBAL_LOGGING_WORKER).ensure_initialized_and_enqueue)
    assert asyncio.iscoroutinefunction(Logging.async_success_handler)
    assert asyncio.iscoroutinefunction(Logging.dispatch_success_handlers)
    assert callable(Logging.success_handler)
    tracker = CostTracker(print_summary=False)
    assert "submit" in executor.__dict__ and "ensure_initialized_and_enqueue" in GLOBAL_LOGGING_WORKER.__dict__
    tracker.close()
    gc.collect()
    assert "submit" not in executor.__dict__ and "ensure_initialized_and_enqueue" not in GLOBAL_LOGGING_WORKER.__dict__


def test_an_async_call_after_a_sync_one_counts_it_even_when_its_event_lags(priced: FakeProvider) -> None:
    """A sync call's success event lands on litellm's pool after the call returned; an async call the same thread
    makes next, inside an event loop, is checked only once that event is in (here it lags by 300 ms, behind a
    slow logger registered first)."""
    import time as _time

    from litellm.integrations.custom_logger import CustomLogger

    class SlowLogger(CustomLogger):  # type: ignore[misc]
        def log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
            _time.sleep(0.3)

    slow = SlowLogger()
    tracker = CostTracker(budget="0.02", print_summary=False)
    litellm.callbacks = [slow, tracker]
    try:
        litellm.completion(**_openai(priced))  # $0.02: the budget is spent once its event lands
        sent = priced.request_count()

        async def main() -> None:
            with pytest.raises(BudgetExceededError):
                await litellm.acompletion(**_openai(priced))

        asyncio.run(main())
        assert priced.request_count() == sent
    finally:
        litellm.logging_callback_manager.remove_callback_from_all_lists(slow, require_self=False)


def test_a_sync_call_that_spends_the_budget_is_not_waited_for_by_its_own_recording(
    priced: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    """Recording the sync call that spends ``budget=`` mirrors the spent budget into litellm from inside that
    call's own recording: it must not wait for the call being recorded (it used to wait out the 5 s bound and log
    that litellm's events were late); the next call is refused, nothing sent."""
    tracker = CostTracker(budget="0.02", print_summary=False)
    litellm.callbacks = [tracker]
    with caplog.at_level(logging.WARNING, logger="tokencost"):
        litellm.completion(**_openai(priced))  # $0.02: spends the budget
    assert [r.getMessage() for r in caplog.records if r.name == "tokencost"] == []
    assert (tracker.request_count, tracker.total_cost) == (1, Decimal("0.02"))
    assert litellm.max_budget == 0.02  # the spent budget is mirrored for sync embedding()
    with pytest.raises(BudgetExceededError):
        litellm.completion(**_openai(priced))
    assert priced.request_count() == 1

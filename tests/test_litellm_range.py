"""Behaviour that differs across the supported litellm releases (1.98 to 1.110), pinned by tests on every one."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import litellm
import pytest
from litellm.integrations.custom_logger import CustomLogger

from tokencost import BudgetExceededError, CostTracker
from tokencost.testing import FakeProvider

MESSAGES = [{"role": "user", "content": "hi"}]


class SlowLogger(CustomLogger):  # type: ignore[misc]
    """Registered before the tracker, it holds litellm's logging pool so the tracker's event lands late."""

    def log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        time.sleep(0.3)


@pytest.fixture
def two_cents(fake: FakeProvider) -> FakeProvider:
    fake.set_openai_usage("gpt-4o", prompt_tokens=10_000, completion_tokens=500, cached_tokens=8_000)
    return fake


def _kw(fake: FakeProvider) -> dict[str, Any]:
    return {"model": "openai/gpt-4o", "messages": MESSAGES, "api_base": fake.openai_base, "api_key": "sk-fake"}


def test_sync_calls_inside_an_event_loop_count_before_the_next_one(two_cents: FakeProvider) -> None:
    """litellm 1.109's sync ``Router.completion`` runs ``litellm.completion`` inside an event loop of its own. Such
    a blocking call has returned when the next one is set up, so the next is checked only once the first one's
    event (late on litellm's pool here) is in: the crossing call spends the budget, the next call is refused."""
    slow = SlowLogger()
    tracker = CostTracker(budget="0.02", print_summary=False)
    litellm.callbacks = [slow, tracker]

    async def blocking_calls_in_a_loop() -> None:
        litellm.completion(**_kw(two_cents))  # $0.02: the budget is spent once its event lands
        sent = two_cents.request_count()
        with pytest.raises(BudgetExceededError):
            litellm.completion(**_kw(two_cents))
        assert two_cents.request_count() == sent

    try:
        asyncio.run(blocking_calls_in_a_loop())
        assert tracker.request_count == 1
    finally:
        litellm.logging_callback_manager.remove_callback_from_all_lists(slow, require_self=False)


def test_sync_router_completion_right_after_the_crossing_call_is_refused(two_cents: FakeProvider) -> None:
    """The race seen on 1.109.x: a sync Router.completion right after the crossing one went through."""
    router = litellm.Router(
        model_list=[
            {
                "model_name": "main",
                "litellm_params": {"model": "openai/gpt-4o", "api_base": two_cents.openai_base, "api_key": "sk-fake"},
            }
        ],
        num_retries=2,
    )
    slow = SlowLogger()
    tracker = CostTracker(budget="0.02", print_summary=False)
    litellm.callbacks = [slow, tracker]
    try:
        router.completion(model="main", messages=MESSAGES)
        sent = two_cents.request_count()
        with pytest.raises(BudgetExceededError):
            router.completion(model="main", messages=MESSAGES)
        assert two_cents.request_count() == sent
        assert tracker.request_count == 1
    finally:
        litellm.logging_callback_manager.remove_callback_from_all_lists(slow, require_self=False)

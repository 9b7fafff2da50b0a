"""tokencost.compat: every litellm internal tokencost relies on is checked at the first tracker; one that is
missing is warned about once, naming the feature that degrades, and tracking keeps working with what remains."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import litellm
import litellm.utils
import pytest
from litellm.litellm_core_utils import logging_worker, thread_pool_executor
from litellm.litellm_core_utils.litellm_logging import Logging

from tokencost import CostTracker, compat
from tokencost.testing import FakeProvider

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture(autouse=True)
def fresh_warnings() -> Iterator[None]:
    compat.forget_warnings()
    yield
    compat.forget_warnings()


def _without_frame_locals(mp: pytest.MonkeyPatch) -> None:
    real = litellm.utils.function_setup

    def function_setup(*call_args: Any, **call_kwargs: Any) -> Any:  # no locals named args / kwargs
        return real(*call_args, **call_kwargs)

    mp.setattr(litellm.utils, "function_setup", function_setup)


def _without_pre_call_self(mp: pytest.MonkeyPatch) -> None:
    real = Logging.pre_call

    def pre_call(*call_args: Any, **call_kwargs: Any) -> Any:  # no local named self
        return real(*call_args, **call_kwargs)

    mp.setattr(Logging, "pre_call", pre_call)


# internal name -> how to take it away (only where the tracker looks: litellm itself keeps working)
REMOVALS: dict[str, Callable[[pytest.MonkeyPatch], None]] = {
    "litellm.utils.function_setup (its frame locals args / kwargs)": _without_frame_locals,
    "litellm.pre_call_rules": lambda mp: mp.setattr(litellm, "pre_call_rules", None),
    "litellm.utils.callback_list": lambda mp: mp.setattr(litellm.utils, "callback_list", None),
    "litellm.logging_callback_manager.remove_callback_from_all_lists": lambda mp: mp.delattr(
        type(litellm.logging_callback_manager), "remove_callback_from_all_lists"
    ),
    "litellm.max_budget / litellm._current_cost": lambda mp: mp.delattr(litellm, "max_budget"),
    "litellm_core_utils.thread_pool_executor.executor.submit": lambda mp: mp.setattr(
        thread_pool_executor, "executor", None
    ),
    "litellm_core_utils.logging_worker.GLOBAL_LOGGING_WORKER.ensure_initialized_and_enqueue": lambda mp: mp.delattr(
        type(logging_worker.GLOBAL_LOGGING_WORKER), "ensure_initialized_and_enqueue"
    ),
    "litellm_core_utils.logging_worker.GLOBAL_LOGGING_WORKER.stop": lambda mp: mp.delattr(
        type(logging_worker.GLOBAL_LOGGING_WORKER), "stop"
    ),
    "Logging.dispatch_success_handlers": lambda mp: mp.delattr(Logging, "dispatch_success_handlers"),
    "Logging._restore_correlation_context": lambda mp: mp.delattr(Logging, "_restore_correlation_context"),
    "Logging._restore_correlation_context_if_unclaimed": lambda mp: mp.delattr(
        Logging, "_restore_correlation_context_if_unclaimed"
    ),
    "Logging.pre_call (its self in the calling frames)": _without_pre_call_self,
}


# litellm's own set-up uses these: without them no litellm call runs at all (the check still names them).
LITELLM_NEEDS_IT = {
    "litellm.pre_call_rules",
    "litellm.utils.callback_list",
    "litellm.max_budget / litellm._current_cost",
}


def test_every_internal_has_a_removal_test_and_this_litellm_has_them_all() -> None:
    assert set(REMOVALS) == {internal.name for internal in compat.INTERNALS}
    assert compat.check_litellm(warn=False) == []


@pytest.mark.parametrize("name", list(REMOVALS))
def test_a_missing_internal_is_warned_once_and_tracking_goes_on(
    name: str, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    internal = next(i for i in compat.INTERNALS if i.name == name)
    fake.set_openai_usage("gpt-4o", prompt_tokens=1_000, completion_tokens=100)
    with monkeypatch.context() as mp:
        REMOVALS[name](mp)
        assert [i.name for i in compat.check_litellm(warn=False)] == [name]
        with caplog.at_level(logging.WARNING, logger="tokencost"):
            tracker = CostTracker(print_summary=False)  # the first tracker checks litellm
            CostTracker(print_summary=False).close()  # a second one does not warn again
        warnings = [r.getMessage() for r in caplog.records if r.name == "tokencost" and name in r.getMessage()]
        assert len(warnings) == 1
        assert internal.degraded in warnings[0]
        litellm.callbacks = [tracker]
        if name in LITELLM_NEEDS_IT:  # litellm's own calls fail without it: the tracker still records and closes
            tracker.track("gpt-4o", prompt_tokens=1_000, completion_tokens=100, provider="openai")
        else:
            litellm.completion(model="openai/gpt-4o", messages=MESSAGES, api_base=fake.openai_base, api_key="sk-x")
        assert tracker.request_count == 1
        assert str(tracker.total_cost) == "0.0035"  # 1,000 x $2.50 + 100 x $10 per 1M
        tracker.close()
        assert not any(cb is tracker for cb in litellm.callbacks)

"""close() and garbage collection give litellm back exactly the state they found; frameworks cannot detach silently.

Issue 13, items 2 and 10. Every test drives real litellm (mock_response, or the loopback fake over HTTP).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import threading
import time
import weakref
from decimal import Decimal
from typing import Any

import litellm
import pytest
from litellm.integrations.custom_logger import CustomLogger

from tokencost import BudgetExceededError, CostTracker
from tokencost._litellm_glue import _QUIET_LOGGERS, _pre_call_rule
from tokencost.testing import FakeProvider

MESSAGES = [{"role": "user", "content": "hello"}]
MOCK = {"model": "gpt-4o", "messages": MESSAGES, "mock_response": "ok"}


def _openai(fake: FakeProvider, **extra: Any) -> dict[str, Any]:
    return {
        "model": "openai/gpt-4o",
        "messages": MESSAGES,
        "api_base": fake.openai_base,
        "api_key": "sk-fake",
        "max_retries": 0,
        **extra,
    }


@pytest.fixture
def priced(fake: FakeProvider) -> FakeProvider:
    fake.set_openai_usage("gpt-4o", prompt_tokens=10_000, completion_tokens=500, cached_tokens=8_000)  # $0.02
    return fake


def _litellm_state() -> dict[str, Any]:
    """Every litellm global a tracker may touch, as plain comparable values."""
    lists = sorted(n for n in dir(litellm) if n.endswith(("_callback", "_callbacks")) or n == "callbacks")
    from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER
    from litellm.litellm_core_utils.thread_pool_executor import executor

    return {
        "max_budget": litellm.max_budget,
        "_current_cost": litellm._current_cost,
        "pre_call_rules": list(litellm.pre_call_rules),
        **{
            name: [id(cb) for cb in getattr(litellm, name)]
            for name in lists
            if isinstance(getattr(litellm, name), list)
        },
        "utils.callback_list": [id(cb) for cb in sys.modules["litellm.utils"].callback_list or []],
        **{f"{name} filters": list(logging.getLogger(name).filters) for name in _QUIET_LOGGERS},
        "executor patches": dict(executor.__dict__).get("submit"),
        "worker patches": [
            dict(GLOBAL_LOGGING_WORKER.__dict__).get(n) for n in ("ensure_initialized_and_enqueue", "stop")
        ],
    }


def _collect(*refs: weakref.ref[Any]) -> None:
    """gc.collect() until the referents are gone, or 50 tries (a pool thread may hold one for a moment)."""
    for _ in range(50):
        gc.collect()
        if all(ref() is None for ref in refs):
            return
        time.sleep(0.02)


# -- item 2: close() restores litellm ----------------------------------------------------------------------------
def test_closed_spent_budget_refuses_nothing_afterwards(priced: FakeProvider) -> None:
    """After a tracker whose budget= was spent is closed, litellm refuses nothing: without a tracker, or with a
    new budget-less one, for completion, acompletion and embedding alike."""
    spent = CostTracker(budget="0.01", print_summary=False)
    litellm.callbacks = [spent]
    litellm.completion(**_openai(priced))  # $0.02: crosses
    sent = priced.request_count()
    with pytest.raises(litellm.BudgetExceededError):
        litellm.completion(**_openai(priced))
    assert priced.request_count() == sent
    spent.close()

    litellm.completion(**MOCK)
    asyncio.run(litellm.acompletion(**MOCK))
    litellm.embedding(model="text-embedding-3-small", input=["hi"], mock_response=[0.1, 0.2])
    fresh = CostTracker(print_summary=False)
    litellm.callbacks = [fresh]
    litellm.completion(**_openai(priced))
    asyncio.run(litellm.acompletion(**_openai(priced)))
    assert priced.request_count() == sent + 2
    assert fresh.request_count == 2
    fresh.close()


def test_close_gives_back_every_litellm_global(priced: FakeProvider) -> None:
    """A snapshot of litellm's globals taken before a tracker existed equals the one after close()."""
    gc.collect()
    litellm.max_budget, litellm._current_cost = 7.5, 1.25  # the host's own litellm budget, to be kept
    before = _litellm_state()
    assert _pre_call_rule not in before["pre_call_rules"], "a tracker of an earlier test is still installed"
    tracker = CostTracker(budget="0.03", print_summary=False)
    litellm.callbacks = [tracker]
    for _ in litellm.completion(**_openai(priced, stream=True, stream_options={"include_usage": True})):
        pass
    litellm.completion(**_openai(priced))  # crosses: tokencost mirrors it into litellm.max_budget
    assert tracker.budget_exceeded  # a sync view: the crossing call's pool event is in
    with pytest.raises(BudgetExceededError):
        asyncio.run(litellm.acompletion(**_openai(priced)))
    assert litellm.max_budget == 0.03
    during = _litellm_state()
    assert during != before
    tracker.close()
    litellm.callbacks = []  # the list the host assigned, emptied by close(): equal to the one before
    assert _litellm_state() == before


def test_unreferenced_tracker_never_registered_is_collected() -> None:
    """A tracker nobody holds and litellm does not list is collected, and takes its hooks out of litellm."""
    gc.collect()
    tracker = CostTracker(print_summary=False)
    assert _pre_call_rule in litellm.pre_call_rules
    ref = weakref.ref(tracker)
    del tracker
    _collect(ref)
    assert ref() is None
    assert _pre_call_rule not in litellm.pre_call_rules
    litellm.completion(**MOCK)


def test_closed_unreferenced_trackers_are_collected(monkeypatch: pytest.MonkeyPatch) -> None:
    """200 trackers, each registered, used and closed, are all collected once nothing references them."""
    # litellm keeps the callbacks of the first call it sets up in litellm.utils.callback_list: start afresh so the
    # first of these trackers is the one it keeps.
    monkeypatch.setattr(sys.modules["litellm.utils"], "callback_list", [])
    refs = []
    for _ in range(200):
        tracker = CostTracker(print_summary=False)
        litellm.callbacks = [tracker]
        litellm.completion(**MOCK)
        assert tracker.request_count == 1
        tracker.close()
        refs.append(weakref.ref(tracker))
        del tracker
    litellm.callbacks = []
    _collect(*refs)
    assert sum(ref() is not None for ref in refs) == 0


def test_unreferenced_registered_tracker_stays_alive_and_counts() -> None:
    """Decided: a tracker registered in litellm and never closed is kept alive by litellm's lists and keeps
    counting; only close() ends it."""
    litellm.callbacks = [CostTracker(print_summary=False)]
    litellm.completion(**MOCK)
    gc.collect()
    (tracker,) = [cb for cb in litellm.callbacks if isinstance(cb, CostTracker)]
    litellm.completion(**MOCK)
    assert tracker.request_count == 2
    tracker.close()


# -- item 10: frameworks that reassign litellm.callbacks ----------------------------------------------------------
class _FrameworkLogger(CustomLogger):  # type: ignore[misc]
    """A framework's own logger (CrewAI's token counter, say)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def log_pre_api_call(self, model: Any, messages: Any, kwargs: Any) -> None:
        self.calls += 1


def _framework_sets_callbacks(logger: _FrameworkLogger, everything: bool) -> None:
    """What CrewAI's LLM.set_callbacks does before every call; ``everything`` also resets the event lists."""
    for name in ("success_callback", "_async_success_callback"):
        for cb in list(getattr(litellm, name)):
            if type(cb) is type(logger):
                getattr(litellm, name).remove(cb)
    litellm.callbacks = [logger]
    if everything:
        litellm.success_callback = []
        litellm._async_success_callback = []
        litellm.input_callback = []


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_sync_calls_count_at_return_while_litellm_pool_lags_and_lists_are_emptied(
    priced: FakeProvider, stream: bool
) -> None:
    """litellm's logging pool has not run a sync call's success handler when the caller reads the totals (a busy
    pool: here every worker is held), and a framework empties litellm's success lists meanwhile (CrewAI). The
    call counts at return all the same, and the crossing call refuses the next one, with no request sent."""
    from litellm.litellm_core_utils.thread_pool_executor import executor

    tracker = CostTracker(budget="0.03", print_summary=False)
    other = _FrameworkLogger()
    litellm.callbacks = [tracker, other]
    gate = threading.Event()
    held = [executor.submit(gate.wait, 30) for _ in range(max(1, int(executor._max_workers)))]

    def call() -> None:
        if stream:
            for _ in litellm.completion(**_openai(priced), stream=True, stream_options={"include_usage": True}):
                pass
        else:
            litellm.completion(**_openai(priced))
        _framework_sets_callbacks(other, everything=True)

    try:
        call()
        assert (tracker.request_count, tracker.total_cost) == (1, Decimal("0.02"))
        call()  # $0.04: crosses $0.03
        assert tracker.request_count == 2
        sent = priced.request_count()
        with pytest.raises(BudgetExceededError):
            litellm.completion(**_openai(priced))
        assert priced.request_count() == sent
    finally:
        gate.set()
        for future in held:
            future.result(timeout=30)
    tracker.flush(10)
    assert tracker.request_count == 2  # litellm's own deliveries, once the pool ran them, were not counted again
    tracker.close()


class _Reassigner(_FrameworkLogger):
    """A logger that reassigns litellm.callbacks (to itself alone) from inside every call."""

    def log_pre_api_call(self, model: Any, messages: Any, kwargs: Any) -> None:
        super().log_pre_api_call(model, messages, kwargs)
        _framework_sets_callbacks(self, everything=True)


@pytest.mark.parametrize("everything", [False, True], ids=["callbacks", "every-list"])
def test_reassigned_callbacks_keep_the_tracker_counting_and_refusing(priced: FakeProvider, everything: bool) -> None:
    """A framework reassigning litellm.callbacks before every call does not detach the tracker: sync and async
    calls are all counted at return, and a spent budget refuses with no request sent."""
    tracker = CostTracker(budget="0.09", print_summary=False)
    other = _FrameworkLogger()
    litellm.callbacks = [tracker, other]
    litellm.completion(**_openai(priced))  # the tracker is in litellm's lists for this first call
    counted = []
    for _ in range(2):
        _framework_sets_callbacks(other, everything)
        litellm.completion(**_openai(priced))
        counted.append(tracker.request_count)

    async def twice() -> int:
        _framework_sets_callbacks(other, everything)
        await litellm.acompletion(**_openai(priced, model="openai/gpt-4o"))
        return tracker.request_count

    counted.append(asyncio.run(twice()))
    assert counted == [2, 3, 4]
    assert tracker.total_cost == Decimal("0.08")
    _framework_sets_callbacks(other, everything)
    litellm.completion(**_openai(priced))  # $0.10: crosses $0.09
    sent = priced.request_count()
    _framework_sets_callbacks(other, everything)
    with pytest.raises(BudgetExceededError):
        litellm.completion(**_openai(priced))
    _framework_sets_callbacks(other, everything)
    with pytest.raises(BudgetExceededError):
        asyncio.run(litellm.acompletion(**_openai(priced)))
    assert priced.request_count() == sent
    assert other.calls == 5
    tracker.close()


def test_logger_reassigning_callbacks_inside_each_call(priced: FakeProvider) -> None:
    """A CustomLogger hook that sets litellm.callbacks = [itself] (and resets the event lists) in every call:
    every call is still counted, and the spent budget refuses the next one with no request sent."""
    tracker = CostTracker(budget="0.05", print_summary=False)
    litellm.callbacks = [tracker, _Reassigner()]
    for n in range(1, 4):
        litellm.completion(**_openai(priced))
        assert tracker.request_count == n
    sent = priced.request_count()  # $0.06 spent
    with pytest.raises(BudgetExceededError):
        litellm.completion(**_openai(priced))
    assert priced.request_count() == sent
    tracker.close()


def test_tracker_replaced_before_its_first_call_warns_once(
    priced: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    """CrewAI replaces litellm.callbacks before the tracker ever saw a call: the calls cannot be tracked, and
    tokencost says so once instead of recording 0 of 3 in silence."""
    caplog.set_level(logging.WARNING, logger="tokencost")
    tracker = CostTracker(budget="0.01", print_summary=False)
    litellm.callbacks = [tracker]
    other = _FrameworkLogger()
    for _ in range(3):
        _framework_sets_callbacks(other, everything=False)
        litellm.completion(**_openai(priced))
    warnings = [r for r in caplog.records if r.name == "tokencost" and "no CostTracker is registered" in r.message]
    assert len(warnings) == 1
    tracker.close()


def test_closed_tracker_never_comes_back(priced: FakeProvider) -> None:
    """A closed tracker is not registered again, whatever a framework does to litellm.callbacks."""
    tracker = CostTracker(print_summary=False)
    other = _FrameworkLogger()
    litellm.callbacks = [tracker, other]
    litellm.completion(**_openai(priced))
    tracker.close()
    for _ in range(2):
        _framework_sets_callbacks(other, everything=True)
        litellm.completion(**_openai(priced))
        asyncio.run(litellm.acompletion(**_openai(priced)))
    assert not any(cb is tracker for name in dir(litellm) for cb in _as_list(getattr(litellm, name, None)))


def _as_list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def test_a_tracker_collected_inside_a_store_call_does_not_deadlock() -> None:
    """The collector may finalize an unreferenced tracker at any allocation, even inside another tracker's store
    call with the store's lock held: the finalizer reads no store and waits on no lock (it used to re-enter the
    store through sync_litellm_budget and hang; the stateful budget test found it)."""
    import threading

    from tokencost.stores.memory import MemoryStore

    class CollectingStore(MemoryStore):
        def __init__(self) -> None:
            super().__init__("memory://")
            self.held = threading.Lock()

        def totals(self, ledger: str) -> Any:
            with self.held:
                gc.collect()  # finalizers of unreferenced trackers run here, this store's lock held
                return super().totals(ledger)

    store = CollectingStore()
    live = CostTracker(budget=1, store=store, print_summary=False)
    litellm.callbacks = [live]
    litellm.completion(**MOCK)

    def garbage() -> None:
        CostTracker(store=store, print_summary=False)  # unreferenced, in reference cycles: freed by the collector

    gc.collect()
    gc.disable()  # the only collection is the one inside the store call
    try:
        garbage()
        done = threading.Event()
        worker = threading.Thread(target=lambda: (live.total_cost, done.set()), daemon=True)
        worker.start()
        worker.join(20)
    finally:
        gc.enable()
    assert done.is_set(), "a tracker's finalizer deadlocked inside a store call"
    live.close()

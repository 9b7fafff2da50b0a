"""The glue between litellm's global hooks and the trackers: refusal rules, stream watching, pool draining.

litellm's pre-call rules, logging filters and ``max_budget`` are process-wide, so they live here, once for every
tracker; each tracker registers itself in ``TRACKERS``. Several functions read litellm internals (the
``function_setup`` frame, the stream's ``Logging`` object, the logging thread pool): each says so, and
``tests/test_tracker.py`` fails loudly when litellm moves them.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import threading
import weakref
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import litellm

from tokencost.budgets import current_scope
from tokencost.errors import BudgetExceededError

if TYPE_CHECKING:
    from tokencost.tracker import CostTracker

__all__ = [
    "TRACKERS",
    "call_frame_kwargs",
    "drain_litellm_pool",
    "install_pre_call_rule",
    "registered_tracker",
    "sync_litellm_budget",
    "watch_stream",
]

TRACKERS: weakref.WeakSet[CostTracker] = weakref.WeakSet()  # every live tracker
_rule_lock = threading.Lock()  # guards installing the pre-call rule once


def registered_tracker() -> CostTracker:
    """Return the one ``CostTracker`` registered in litellm's callbacks.

    Raises:
        ValueError: when none or several are registered.
    """
    found = _active_trackers()
    if len(found) != 1:
        raise ValueError(f"{len(found)} CostTrackers are registered in litellm; pass tracker= to say which one to use")
    return found[0]


def _active_trackers() -> list[CostTracker]:
    """Return the live trackers registered in litellm's callback lists, in order."""
    out: list[CostTracker] = []
    for name in ("callbacks", "success_callback", "_async_success_callback"):
        for cb in getattr(litellm, name, []) or []:
            if cb in TRACKERS and not cb._closed and cb not in out:
                out.append(cb)
    return out


def call_frame_kwargs() -> tuple[Mapping[str, Any], Sequence[Any]] | None:
    """Find the arguments of the litellm call being set up (litellm's ``function_setup`` frame).

    litellm hands a pre-call rule only the message text; the call's own arguments (model, metadata, user,
    max_tokens) are read from the caller's frame. An internal of litellm, guarded by a test.
    """
    frame = sys._getframe(2)
    for _ in range(8):
        if frame is None:
            break
        if frame.f_code.co_name == "function_setup":
            kwargs = frame.f_locals.get("kwargs")
            args = frame.f_locals.get("args") or ()
            if isinstance(kwargs, Mapping):
                return kwargs, args
        frame = frame.f_back  # type: ignore[assignment]
    return None


def _pre_call_rule(_text: str) -> bool:
    """litellm pre-call rule: refuse a call whose budget is spent (the exception reaches the caller)."""
    trackers = _active_trackers()
    if not trackers:
        return True
    found = call_frame_kwargs()
    for tracker in trackers:
        if found is None:
            tracker._warn(
                "frame",
                "tokencost: cannot read litellm's call arguments here; only tracker-wide and "
                "scope() budgets apply to sync calls",
            )
            tracker._admit("", None, current_scope(), call_id=None)
        else:
            tracker._admit_kwargs(*found)
    return True


class _QuietRefusals(logging.Filter):
    """Drop litellm's error log of our own refusals (it logs every exception raised in a pre-call rule)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, BudgetExceededError)


def install_pre_call_rule() -> None:
    with _rule_lock:
        if _pre_call_rule not in litellm.pre_call_rules:
            litellm.pre_call_rules.append(_pre_call_rule)
            logging.getLogger("LiteLLM").addFilter(_QuietRefusals())


def sync_litellm_budget() -> None:
    """Mirror a spent tracker-wide budget into ``litellm.max_budget``: the only refusal sync embedding sees."""
    for tracker in _active_trackers():
        if tracker._limit is not None and tracker.raise_on_budget and tracker._total_spent():
            limit = float(tracker._limit)
            litellm.max_budget = limit
            # litellm refuses when its current cost is strictly above the limit.
            litellm._current_cost = max(float(tracker.total_cost), math.nextafter(limit, math.inf))
            _MIRRORED.add(limit)
            return
    if litellm.max_budget in _MIRRORED:
        litellm.max_budget = 0.0
        litellm._current_cost = 0
    _MIRRORED.clear()


_MIRRORED: set[float] = set()  # limits this module put in litellm.max_budget


def watch_stream(tracker: CostTracker, call_id: str) -> None:
    """Follow a sync or async stream through its litellm ``Logging`` object (found in the calling frames).

    litellm calls ``_restore_correlation_context`` when the stream ends (exhausted, failed or closed), and the
    guarded ``_restore_correlation_context_if_unclaimed`` from the stream wrapper's ``__del__``: a stream dropped
    before it ended was broken off by the caller and gets no success event, though the provider billed it. It
    is recorded as incomplete then, or when the logging object is collected, or at exit, whichever comes first.
    """
    frame = sys._getframe(2)
    logging_obj = None
    for _ in range(6):
        if frame is None:
            break
        candidate = frame.f_locals.get("self")
        if type(candidate).__name__ == "Logging" and hasattr(candidate, "model_call_details"):
            logging_obj = candidate
            break
        frame = frame.f_back  # type: ignore[assignment]
    if logging_obj is None:
        tracker._warn(
            "stream-watch", "tokencost: cannot follow litellm streams here; broken-off streams are recorded at exit"
        )
        return
    tracker_ref = weakref.ref(tracker)
    state = {"dropping": False}

    def mark_ended() -> None:
        t = tracker_ref()
        if t is not None:
            with t._lock:
                pending = t._pending.get(call_id)
                # Only the consumer's own thread ends a stream; litellm's pool also restores after each chunk.
                if pending is not None and pending.thread == threading.get_ident():
                    pending.ended = True

    def abandoned() -> None:
        t = tracker_ref()
        if t is not None:
            t._stream_gone(call_id)

    # Patch the instance, not the class, and hold the object weakly so a dropped stream is collected at once.
    obj_ref = weakref.ref(logging_obj)
    restore = getattr(type(logging_obj), "_restore_correlation_context", None)
    guarded = getattr(type(logging_obj), "_restore_correlation_context_if_unclaimed", None)
    if callable(restore):

        def patched_restore(*args: Any, **kwargs: Any) -> Any:
            if not state["dropping"]:
                mark_ended()
            obj = obj_ref()
            return None if obj is None else restore(obj, *args, **kwargs)

        logging_obj._restore_correlation_context = patched_restore
    if callable(guarded):

        def patched_guarded(*args: Any, **kwargs: Any) -> Any:
            t = tracker_ref()
            pending = t._pending.get(call_id) if t is not None else None
            if pending is not None and not pending.ended:
                abandoned()
            state["dropping"] = True
            obj = obj_ref()
            return None if obj is None else guarded(obj, *args, **kwargs)

        logging_obj._restore_correlation_context_if_unclaimed = patched_guarded
    weakref.finalize(logging_obj, abandoned)


def drain_litellm_pool(timeout: float | None) -> None:
    """Wait until litellm's logging thread pool has run everything submitted so far."""
    try:
        from litellm.litellm_core_utils.thread_pool_executor import executor
    except Exception:
        return
    workers = max(1, int(getattr(executor, "_max_workers", 1)))
    barrier = threading.Barrier(workers + 1)

    def wait_at_barrier() -> None:
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout)

    try:
        for _ in range(workers):
            executor.submit(wait_at_barrier)
        barrier.wait(timeout)
    except Exception:
        barrier.abort()

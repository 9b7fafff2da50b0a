"""The glue between litellm's global hooks and the trackers: refusal rules, stream watching, pool draining.

litellm's pre-call rules, logging filters and ``max_budget`` are process-wide, so they live here, once for every
tracker; each tracker registers itself in ``registry``. Several functions read litellm internals (the
``function_setup`` frame, the stream's ``Logging`` object, the logging thread pool): each says so, and
``tests/test_tracker.py`` fails loudly when litellm moves them.
"""

from __future__ import annotations

import atexit
import contextlib
import inspect
import logging
import math
import sys
import threading
import weakref
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import litellm

from tokencost import registry
from tokencost.context import current_scope
from tokencost.errors import BudgetExceededError
from tokencost.frameworks import check_frameworks
from tokencost.registry import TRACKERS, registered_tracker

if TYPE_CHECKING:
    from tokencost.engine import Tracking
    from tokencost.litellm_calls import LitellmCalls

log = logging.getLogger("tokencost")

__all__ = [
    "TRACKERS",
    "call_frame_kwargs",
    "drain_litellm_pool",
    "install_pre_call_rule",
    "record_now",
    "register",
    "registered_tracker",
    "sync_litellm_budget",
    "unregister",
    "watch_stream",
]

# Trackers seen in litellm's callback lists are held until close() (``registry.attached``): one found missing (a
# framework replaced ``litellm.callbacks``) is put back. A tracker never seen there is only weakly held, and warned.
_state_lock = registry.lock  # guards the registry, _installed and installing or removing the hooks below
# litellm's lists of callbacks a CustomLogger is promoted into (function_setup copies litellm.callbacks there).
_PROMOTED = (
    "input_callback",
    "success_callback",
    "failure_callback",
    "_async_success_callback",
    "_async_failure_callback",
)
_CALLBACK_LISTS = ("callbacks", *_PROMOTED)


class _Installed:
    """What tokencost put into litellm while a tracker is live, and what litellm held before."""

    def __init__(self) -> None:
        self.rule_added = False
        self.log_filter: logging.Filter | None = None
        self.submit: Any = None  # our instance patch of litellm's logging executor's submit
        self.enqueue: Any = None  # our instance patch of litellm's async logging worker's enqueue
        self.stop: Any = None  # our instance patch of that worker's stop (litellm's proxy shutting down)


_installed: _Installed | None = None


def register(tracker: Tracking) -> None:
    """Register a new tracker: install the process-wide hooks if it is the first live one."""
    with _state_lock:
        if _installed is None:
            _install()
        registry.add(tracker)
    weakref.finalize(tracker, _tracker_gone)
    check_frameworks()  # warns once about a framework set to send its calls around litellm (DSPy's engine)


def unregister(tracker: Tracking) -> None:
    """Take a closing tracker out of every litellm list; restore litellm once no tracker is left."""
    with _state_lock:
        registry.discard(tracker)
    _remove_everywhere(tracker)
    sync_litellm_budget()
    _uninstall_if_idle()


def _tracker_gone() -> None:
    """A tracker was collected (it was in no litellm list): restore litellm once no tracker is left.

    A finalizer runs at any allocation of any thread, perhaps one holding a store's lock or ours: it reads no
    store (a collected tracker never mirrored a budget: only listed or attached trackers do, and those are held)
    and never waits for a lock; when the lock is taken, a short-lived thread does the restoring instead.
    """
    try:
        if not _restore_if_idle(blocking=False):
            threading.Thread(target=_restore_if_idle, name="tokencost-restore", daemon=True).start()
    except Exception:  # a finalizer must never raise
        pass


def _restore_if_idle(blocking: bool = True) -> bool:
    """Give litellm back what tokencost changed once no live tracker is left; False if the lock was busy."""
    if not _state_lock.acquire(blocking=blocking):
        return False
    try:
        if not registry.live():
            _restore_budget()
            _uninstall_if_idle()
    finally:
        _state_lock.release()
    return True


def _remove_everywhere(tracker: Tracking) -> None:
    """Remove ``tracker`` (by identity) from every litellm callback list, and litellm's set-up list."""
    try:
        litellm.logging_callback_manager.remove_callback_from_all_lists(tracker, require_self=False)
    except Exception as exc:
        log.debug("tokencost: litellm's remove_callback_from_all_lists failed: %r", exc)
    lists = [getattr(litellm, name, None) for name in dir(litellm) if name.endswith(("_callback", "_callbacks"))]
    lists.append(getattr(litellm, "callbacks", None))
    # function_setup keeps the callbacks it set up first in litellm.utils.callback_list (a module global).
    lists.append(getattr(sys.modules.get("litellm.utils"), "callback_list", None))
    for found in lists:
        if isinstance(found, list):
            with contextlib.suppress(Exception):
                found[:] = [cb for cb in found if cb is not tracker]


def _in_lists(tracker: Tracking) -> bool:
    """Whether ``tracker`` is where litellm reads hooks (``callbacks``) and success events from."""
    return all(
        any(cb is tracker for cb in getattr(litellm, name, None) or ())
        for name in ("callbacks", "success_callback", "_async_success_callback")
    )


def _reattach_missing(trackers: Sequence[Tracking]) -> None:
    for tracker in trackers:
        if not _in_lists(tracker):
            _reattach(tracker)


def _reattach(tracker: Tracking) -> None:
    """Put an attached tracker back in every list litellm reads hooks and events from."""
    manager = getattr(litellm, "logging_callback_manager", None)
    lock = getattr(manager, "callback_lists_lock", None) or contextlib.nullcontext()
    with lock:
        if not any(cb is tracker for cb in litellm.callbacks):
            litellm.callbacks = [*litellm.callbacks, tracker]  # a new list: never grow a framework's own list
        for name in _PROMOTED:
            found = getattr(litellm, name, None)
            if isinstance(found, list) and not any(cb is tracker for cb in found):
                found.append(tracker)
    tracker.ledger.warn(
        "reattached",
        "tokencost: litellm.callbacks was replaced without this CostTracker (a framework such as CrewAI does "
        "that); tokencost registered it again. Call tracker.close() to stop tracking.",
        level=logging.INFO,
    )


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
    trackers = registry.active()
    _reattach_missing(trackers)
    if not trackers:
        for tracker in registry.live():
            tracker.ledger.warn(
                "detached",
                "tokencost: litellm calls are made while no CostTracker is registered in litellm (was "
                "litellm.callbacks replaced, e.g. by CrewAI, before the first call?): they are neither counted nor "
                "budgeted. Register the tracker where the framework takes its callbacks, or after it sets them.",
            )
        return True
    trackers = [t for t in trackers if not t.enforcer.idle()]
    found = call_frame_kwargs() if trackers else None
    for tracker in trackers:
        if found is None:
            tracker.ledger.warn(
                "frame",
                "tokencost: cannot read litellm's call arguments here; only tracker-wide and "
                "scope() budgets apply to sync calls",
            )
            tracker.enforcer.admit("", None, current_scope(), call_id=None)
        else:
            tracker.enforcer.admit_kwargs(*found)
    return True


# litellm's loggers that log our refusals as errors: the SDK's (every exception raised in a pre-call rule), the
# proxy's (every exception an LLM route answers, as an argument of the message) and the Router's.
_QUIET_LOGGERS = ("LiteLLM", "LiteLLM Proxy", "LiteLLM Router")


class _QuietRefusals(logging.Filter):
    """Drop litellm's error logs of our own refusals: the refused caller gets the error, the log gets nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        args = record.args if isinstance(record.args, tuple) else ()
        return not any(isinstance(found, BudgetExceededError) for found in (exc, *args))


def install_pre_call_rule() -> None:
    """Install the process-wide hooks (done by the first tracker; ``register`` calls it)."""
    with _state_lock:
        if _installed is None:
            _install()


def _install() -> None:
    """Put tokencost's hooks into litellm, remembering what to take out again (call with _state_lock held)."""
    global _installed
    from tokencost.compat import check_litellm  # once per process: the first tracker checks litellm

    check_litellm()  # warns once per missing internal, naming what degrades
    state = _Installed()
    rules = getattr(litellm, "pre_call_rules", None)
    if isinstance(rules, list) and _pre_call_rule not in rules:
        rules.append(_pre_call_rule)
        state.rule_added = True
    state.log_filter = _QuietRefusals()
    for name in _QUIET_LOGGERS:
        # First: litellm's own filter formats the message and drops its arguments (the refusal among them).
        logging.getLogger(name).filters.insert(0, state.log_filter)
    state.submit = _patch_executor()
    state.enqueue = _patch_worker()
    state.stop = _patch_worker_stop()
    _installed = state
    _register_exit()


def _uninstall_if_idle() -> None:
    """Take every hook out of litellm once no live tracker is left."""
    global _installed
    with _state_lock:
        state = _installed
        if state is None or registry.live():
            return
        _installed = None
        if state.rule_added:
            with contextlib.suppress(ValueError, AttributeError):
                litellm.pre_call_rules.remove(_pre_call_rule)
        if state.log_filter is not None:
            for name in _QUIET_LOGGERS:
                logging.getLogger(name).removeFilter(state.log_filter)
        _unpatch(_executor(), "submit", state.submit)
        _unpatch(_worker(), "ensure_initialized_and_enqueue", state.enqueue)
        _unpatch(_worker(), "stop", state.stop)


_exit_registered = False


def _register_exit() -> None:
    """One atexit handler for every tracker (a bound method per tracker would keep each one alive)."""
    global _exit_registered
    if not _exit_registered:
        _exit_registered = True
        atexit.register(_at_exit)


def _at_exit() -> None:
    from tokencost.exit_summary import at_exit

    trackers = registry.live()
    if trackers:
        check_frameworks()  # DSPy is often configured after the tracker was built
        drain_litellm_pool(2.0)
    for tracker in trackers:
        at_exit(tracker)


def sync_litellm_budget() -> None:
    """Mirror a spent tracker-wide budget into ``litellm.max_budget``: the only refusal sync embedding sees.

    What litellm held before is put back once no registered tracker has a spent ``budget=`` (close() included).
    """
    global _saved_budget, _mirrored_limit
    if not (hasattr(litellm, "max_budget") and hasattr(litellm, "_current_cost")):
        return  # this litellm has no process budget to mirror into (check_litellm warned)
    for tracker in registry.active():
        if tracker.budget is not None and tracker.raise_on_budget and tracker.enforcer.total_spent():
            limit = float(tracker.budget)
            # Not tracker.total_cost: this runs inside the recording of the call that spent the budget, and a
            # view would wait for that very call to be recorded.
            spent = tracker.enforcer.recorded_usd()
            cost = limit if spent is None else float(spent)
            with _state_lock:
                if _saved_budget is None:
                    _saved_budget = (litellm.max_budget, litellm._current_cost)
                litellm.max_budget = limit
                # litellm refuses when its current cost is strictly above the limit.
                litellm._current_cost = max(cost, math.nextafter(limit, math.inf))
                _mirrored_limit = limit
            return
    _restore_budget()


def _restore_budget() -> None:
    """Put back litellm's ``max_budget`` / ``_current_cost`` from before tokencost mirrored a spent budget."""
    global _saved_budget, _mirrored_limit
    with _state_lock:
        if _saved_budget is not None and getattr(litellm, "max_budget", None) == _mirrored_limit:
            litellm.max_budget, litellm._current_cost = _saved_budget  # unless the user set it meanwhile
        _saved_budget = None
        _mirrored_limit = None


_saved_budget: tuple[Any, Any] | None = None  # litellm's (max_budget, _current_cost) before tokencost mirrored
_mirrored_limit: float | None = None  # the limit tokencost put in litellm.max_budget


# -- recording in the caller's thread or task -----------------------------------------------------------------
def _executor() -> Any:
    try:
        from litellm.litellm_core_utils.thread_pool_executor import executor
    except Exception:
        return None
    return executor


def _worker() -> Any:
    try:
        from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER
    except Exception:
        return None
    return GLOBAL_LOGGING_WORKER


def _unpatched(obj: Any, name: str) -> Any:
    """The bound method an instance patch of ``obj.name`` calls: another patch already there (chained), or the
    class's own method."""
    previous = obj.__dict__.get(name)
    return previous if previous is not None else getattr(type(obj), name).__get__(obj)


def _unpatch(obj: Any, name: str, patch: Any) -> None:
    if obj is not None and patch is not None and obj.__dict__.get(name) is patch:
        with contextlib.suppress(Exception):
            delattr(obj, name)


def _logging_of(fn: Any, args: Sequence[Any]) -> Any:
    """The litellm ``Logging`` object of a submitted ``success_handler`` (also behind ``ctx.run``), or None."""
    for candidate in (fn, args[0] if args else None):
        if getattr(candidate, "__name__", None) == "success_handler":
            owner = getattr(candidate, "__self__", None)
            if type(owner).__name__ == "Logging" and hasattr(owner, "model_call_details"):
                return owner
    return None


def _patch_executor() -> Any:
    """Patch litellm's logging executor so a sync success event a call submits is awaited by views.

    Every sync success event (plain calls, cache hits, mocked embeddings) is ``executor.submit``-ted in the
    caller's thread before the call returns. A call tokencost has not seen start (a cache hit sends no request)
    is registered as pending there, and settled once the handler has run, whether or not it reached the tracker.
    An internal of litellm (``thread_pool_executor.executor``), guarded by tests/test_current_at_return.py.
    """
    executor = _executor()
    if executor is None or not callable(getattr(type(executor), "submit", None)):
        return None
    original = _unpatched(executor, "submit")

    def submit(fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        expecting: list[weakref.ref[Tracking]] = []
        call_id = None
        try:
            logging_obj = _logging_of(fn, args)
            call_id = getattr(logging_obj, "litellm_call_id", None) if logging_obj is not None else None
            if call_id:
                trackers = registry.active()
                if not kwargs.get("for_async_request"):
                    _record_submitted(logging_obj, fn, args, kwargs, trackers)
                model = str(logging_obj.model_call_details.get("model") or getattr(logging_obj, "model", "") or "")
                _reattach_missing(trackers)  # a logger may have reset litellm's lists during the call
                call_type = getattr(logging_obj, "call_type", None)
                expecting = [weakref.ref(t) for t in trackers if t.calls.expect_event(call_id, model, call_type)]
        except Exception as exc:
            log.debug("tokencost: could not follow a litellm success event: %r", exc)
        if not expecting:
            return original(fn, *args, **kwargs)

        def settle() -> None:
            for ref in expecting:
                t = ref()
                if t is not None:
                    t.calls.resolve({"litellm_call_id": call_id})

        def run() -> Any:
            try:
                return fn(*args, **kwargs)
            finally:
                settle()

        try:
            future = original(run)
        except BaseException:
            settle()
            raise
        if future.cancelled():  # litellm's pool dropped it (backlog full): nothing will come
            settle()
        return future

    executor.submit = submit
    return submit


def _record_submitted(
    logging_obj: Any, fn: Any, args: Sequence[Any], kwargs: Mapping[str, Any], trackers: Sequence[Tracking]
) -> None:
    """Record a sync call's success event now, in the caller's thread, from what litellm hands its pool.

    litellm submits ``success_handler(result, start_time, end_time, cache_hit)`` (behind ``ctx.run`` for plain
    calls) before the call returns, or in the consumer's thread when a stream ends. Recording it here makes the
    call current at return without waiting for the pool, and counts it even when a framework empties litellm's
    success lists before the pool runs the handler; litellm's own delivery later is de-duplicated by call id.
    """
    handler_args = args if getattr(fn, "__name__", None) == "success_handler" else args[1:]
    result = handler_args[0] if handler_args else kwargs.get("result")
    if getattr(result, "usage", None) is None:
        return
    cache_hit = handler_args[3] if len(handler_args) > 3 else kwargs.get("cache_hit")
    stream = bool(getattr(logging_obj, "stream", False))
    record_now(logging_obj, result, cache_hit=bool(cache_hit), stream=stream, trackers=trackers)


def _patch_worker() -> Any:
    """Patch litellm's async logging worker: an async success event it queues is recorded now, in the caller's task.

    litellm queues the success event of an async cache hit on its background worker, which runs after the call
    returned, and never when the event loop closes first. The queued coroutine (``Logging.async_success_handler``,
    not started) holds the response and the logging object; the event is recorded from them before the call
    returns, and litellm's own delivery later is de-duplicated by call id. An internal of litellm
    (``logging_worker.GLOBAL_LOGGING_WORKER``), guarded by tests/test_current_at_return.py.
    """
    worker = _worker()
    if worker is None or not callable(getattr(type(worker), "ensure_initialized_and_enqueue", None)):
        return None
    original = _unpatched(worker, "ensure_initialized_and_enqueue")

    def ensure_initialized_and_enqueue(async_coroutine: Any) -> Any:
        try:
            _record_queued(async_coroutine)
        except Exception as exc:
            log.debug("tokencost: could not record a queued litellm success event: %r", exc)
        return original(async_coroutine)

    worker.ensure_initialized_and_enqueue = ensure_initialized_and_enqueue
    return ensure_initialized_and_enqueue


def _patch_worker_stop() -> Any:
    """Patch litellm's async logging worker's ``stop``: every tracker is finished there as at exit.

    litellm's proxy stops the worker at shutdown, once its in-flight requests are drained; uvicorn then raises
    again the SIGTERM it caught, with the default handler back, so the process ends without running atexit.
    Finishing here gives the proxy its final flush and exit summary (printed once: atexit skips it after). An
    internal of litellm (``logging_worker.GLOBAL_LOGGING_WORKER.stop``), guarded by tests/test_proxy.py.
    """
    worker = _worker()
    if worker is None or not inspect.iscoroutinefunction(getattr(type(worker), "stop", None)):
        return None
    original = _unpatched(worker, "stop")

    async def stop(*args: Any, **kwargs: Any) -> Any:
        try:
            return await original(*args, **kwargs)
        finally:
            try:
                _at_exit()
            except Exception as exc:  # never break litellm's shutdown
                log.debug("tokencost: could not finish the trackers when litellm's worker stopped: %r", exc)

    worker.stop = stop
    return stop


def _record_queued(coroutine: Any) -> None:
    code = getattr(coroutine, "cr_code", None)
    frame = getattr(coroutine, "cr_frame", None)
    if code is None or frame is None or code.co_name != "async_success_handler":
        return
    f_locals = frame.f_locals
    logging_obj, result, cache_hit = f_locals.get("self"), f_locals.get("result"), f_locals.get("cache_hit")
    if type(logging_obj).__name__ != "Logging" or getattr(result, "usage", None) is None:
        return
    if getattr(logging_obj, "stream", False) and not cache_hit:
        return  # a stream's final event is recorded when the stream ends (watch_stream)
    record_now(logging_obj, result, cache_hit=bool(cache_hit))


def record_now(
    logging_obj: Any,
    result: Any,
    *,
    cache_hit: bool = False,
    stream: bool = False,
    trackers: Sequence[Tracking] | None = None,
) -> None:
    """Record a finished call from its litellm ``Logging`` object, in the caller's thread or task (for the
    registered trackers, or ``trackers``)."""
    if trackers is None:
        trackers = registry.active()
    if not trackers:
        return
    kwargs: dict[str, Any] = dict(logging_obj.model_call_details)
    kwargs.setdefault("litellm_call_id", getattr(logging_obj, "litellm_call_id", None))
    hidden = getattr(result, "_hidden_params", None)
    if kwargs.get("response_cost") is None and isinstance(hidden, Mapping):
        kwargs["response_cost"] = hidden.get("response_cost")  # litellm's figure, set before it hands the result over
    if cache_hit:
        kwargs["cache_hit"] = True
    if stream:
        kwargs["complete_streaming_response"] = result
    start = kwargs.get("start_time")
    for tracker in trackers:
        if not tracker.calls.started_before(start):
            tracker.calls.on_success(kwargs, result)


def watch_stream(calls: LitellmCalls, call_id: str) -> None:
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
        calls.ledger.warn(
            "stream-watch", "tokencost: cannot follow litellm streams here; broken-off streams are recorded at exit"
        )
        return
    tracker_ref = weakref.ref(calls)
    state = {"dropping": False}

    def mark_ended() -> None:
        t = tracker_ref()
        if t is not None:
            t.mark_stream_ended(call_id)  # only the consumer's own thread ends it

    def abandoned() -> None:
        t = tracker_ref()
        if t is not None:
            t.stream_gone(call_id)

    # Patch the instance, not the class, and hold the object weakly so a dropped stream is collected at once.
    # Another tracker's patch of the same object is chained, not replaced.
    obj_ref = weakref.ref(logging_obj)

    def unpatched(name: str) -> Any:
        before = logging_obj.__dict__.get(name)
        if before is not None:
            return lambda _obj, *args, **kwargs: before(*args, **kwargs)
        return getattr(type(logging_obj), name, None)

    restore = unpatched("_restore_correlation_context")
    guarded = unpatched("_restore_correlation_context_if_unclaimed")
    dispatch = unpatched("dispatch_success_handlers")
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
            if t is not None and t.is_unended_stream(call_id):
                abandoned()
            state["dropping"] = True
            obj = obj_ref()
            return None if obj is None else guarded(obj, *args, **kwargs)

        logging_obj._restore_correlation_context_if_unclaimed = patched_guarded
    if callable(dispatch):

        def patched_dispatch(result: Any = None, *args: Any, **kwargs: Any) -> Any:
            # An async stream's end: litellm schedules its success event as a task, which runs after the caller
            # saw the end (never, if the loop closes first). Record the assembled response now, in the caller's task.
            obj = obj_ref()
            t = tracker_ref()
            if obj is not None and t is not None and not t.closed:
                try:
                    if type(result).__name__ == "ModelResponse" and getattr(result, "usage", None) is not None:
                        kwargs_now: dict[str, Any] = dict(obj.model_call_details)
                        kwargs_now.setdefault("litellm_call_id", call_id)
                        kwargs_now["complete_streaming_response"] = result
                        if kwargs.get("cache_hit"):
                            kwargs_now["cache_hit"] = True
                        t.on_success(kwargs_now, result)
                except Exception as exc:
                    t.ledger.bug("stream end", exc)
            return dispatch(obj, result, *args, **kwargs)

        logging_obj.dispatch_success_handlers = patched_dispatch
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

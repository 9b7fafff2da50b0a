"""The check of the litellm internals tokencost relies on: what degrades when one is missing, said once.

Every internal listed in ``docs/litellm.md`` has an entry here: how to tell whether this litellm has it, and the
feature that degrades without it. The first tracker of a process runs :func:`check_litellm`; each missing
internal is logged once (logger ``tokencost``, level WARNING) and tokencost keeps working with what remains.
"""

from __future__ import annotations

import inspect
import logging
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import litellm

__all__ = ["INTERNALS", "Internal", "check_litellm", "forget_warnings", "has_internal"]

log = logging.getLogger("tokencost")


@dataclass(frozen=True)
class Internal:
    """One litellm internal: its name, how to find it, and what degrades without it."""

    name: str
    degraded: str
    present: Callable[[], bool]


def _logging_class() -> Any:
    try:
        from litellm.litellm_core_utils.litellm_logging import Logging
    except Exception:
        return None
    return Logging


def _logging_method(name: str) -> Callable[[], bool]:
    return lambda: callable(getattr(_logging_class(), name, None))


def _utils() -> Any:
    try:
        import litellm.utils  # noqa: F401  (loads the module if litellm has not yet)
    except Exception:
        return None
    return sys.modules.get("litellm.utils")


def _frame_locals_of_function_setup() -> bool:
    function_setup = getattr(_utils(), "function_setup", None)
    code = getattr(function_setup, "__code__", None)
    return code is not None and {"args", "kwargs"} <= set(code.co_varnames)


def _pre_call_self() -> bool:
    code = getattr(getattr(_logging_class(), "pre_call", None), "__code__", None)
    return code is not None and "self" in code.co_varnames


def _executor_submit() -> bool:
    try:
        from litellm.litellm_core_utils.thread_pool_executor import executor
    except Exception:
        return False
    return callable(getattr(type(executor), "submit", None))


def _worker_method(name: str) -> Any:
    """A method of the class of litellm's async logging worker, or None."""
    try:
        from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER
    except Exception:
        return None
    return getattr(type(GLOBAL_LOGGING_WORKER), name, None)


def _worker_enqueue() -> bool:
    return callable(_worker_method("ensure_initialized_and_enqueue"))


def _worker_stop() -> bool:
    return inspect.iscoroutinefunction(_worker_method("stop"))


def _remove_from_all_lists() -> bool:
    manager = getattr(litellm, "logging_callback_manager", None)
    return callable(getattr(manager, "remove_callback_from_all_lists", None))


INTERNALS: tuple[Internal, ...] = (
    Internal(
        "litellm.utils.function_setup (its frame locals args / kwargs)",
        "per-call budgets of sync calls: only tracker-wide and scope() budgets refuse them (per-user, per-model "
        "and per-tag budgets see no call arguments)",
        _frame_locals_of_function_setup,
    ),
    Internal(
        "litellm.pre_call_rules",
        "refusing sync calls before their request: only async calls and the Router are refused",
        lambda: isinstance(getattr(litellm, "pre_call_rules", None), list),
    ),
    Internal(
        "litellm.utils.callback_list",
        "collecting closed trackers: the first tracker of a process may stay in memory after close()",
        lambda: isinstance(getattr(_utils(), "callback_list", None), list),
    ),
    Internal(
        "litellm.logging_callback_manager.remove_callback_from_all_lists",
        "close(): the tracker is removed by identity from litellm's *_callback(s) lists only, other lists litellm "
        "keeps may still hold it",
        _remove_from_all_lists,
    ),
    Internal(
        "litellm.max_budget / litellm._current_cost",
        "refusing sync embedding() calls once budget= is spent",
        lambda: hasattr(litellm, "max_budget") and hasattr(litellm, "_current_cost"),
    ),
    Internal(
        "litellm_core_utils.thread_pool_executor.executor.submit",
        "sync cache hits and mocked embeddings are counted when litellm's pool delivers them, not at return",
        _executor_submit,
    ),
    Internal(
        "litellm_core_utils.logging_worker.GLOBAL_LOGGING_WORKER.ensure_initialized_and_enqueue",
        "async cache hits are counted when litellm's worker delivers them (lost if the event loop closes first), "
        "not at return",
        _worker_enqueue,
    ),
    Internal(
        "litellm_core_utils.logging_worker.GLOBAL_LOGGING_WORKER.stop",
        "litellm's proxy: no final flush and exit summary when it shuts down on SIGTERM (uvicorn ends the process "
        "without running atexit); events still queued for the store may be lost",
        _worker_stop,
    ),
    Internal(
        "Logging.dispatch_success_handlers",
        "async streams are counted when litellm's task delivers them (lost if the event loop closes first), not "
        "when `async for` ends",
        _logging_method("dispatch_success_handlers"),
    ),
    Internal(
        "Logging._restore_correlation_context",
        "sync streams are counted when the stream is collected, not when it ends",
        _logging_method("_restore_correlation_context"),
    ),
    Internal(
        "Logging._restore_correlation_context_if_unclaimed",
        "broken-off streams are recorded as incomplete when litellm's logging object is collected or at exit, "
        "not when the stream is dropped",
        _logging_method("_restore_correlation_context_if_unclaimed"),
    ),
    Internal(
        "Logging.pre_call (its self in the calling frames)",
        "following streams: sync streams are not current when they end, broken-off streams are recorded at exit",
        _pre_call_self,
    ),
)

_BY_NAME = {internal.name: internal for internal in INTERNALS}
_warned: set[str] = set()
_lock = threading.Lock()


def has_internal(name: str) -> bool:
    """Whether this litellm has the internal ``name`` (one of :data:`INTERNALS`); False if the check fails."""
    try:
        return bool(_BY_NAME[name].present())
    except KeyError:
        raise
    except Exception:
        return False


def check_litellm(*, warn: bool = True) -> list[Internal]:
    """Check every internal of :data:`INTERNALS`; return the missing ones and, with ``warn``, log each once.

    Never raises: a check that fails counts the internal as missing.
    """
    missing = [internal for internal in INTERNALS if not has_internal(internal.name)]
    if warn:
        version = getattr(litellm, "__version__", None) or _installed_version()
        for internal in missing:
            with _lock:
                if internal.name in _warned:
                    continue
                _warned.add(internal.name)
            log.warning(
                "tokencost: litellm %s has no %s; degraded: %s. tokencost supports litellm 1.98 to 1.110.",
                version,
                internal.name,
                internal.degraded,
            )
    return missing


def forget_warnings() -> None:
    """Let :func:`check_litellm` warn again about internals it already warned about (for tests)."""
    with _lock:
        _warned.clear()


def _installed_version() -> str:
    try:
        from importlib.metadata import version

        return version("litellm")
    except Exception:
        return "(unknown version)"

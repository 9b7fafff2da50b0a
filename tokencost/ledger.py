"""What the parts of one tracker share: the store and ledger name, the budgets, the clock, and one log of problems.

The recorder (``recording``), the enforcer (``enforcement``) and the litellm adapter (``litellm_calls``) each get
the tracker's ``Ledger``; none of them reaches into another.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tokencost.budgets import Budget, counter_checks

if TYPE_CHECKING:
    from tokencost.events import Event
    from tokencost.stores.base import Store

__all__ = ["Ledger", "OnceLog", "log"]

log = logging.getLogger("tokencost")


class OnceLog:
    """Log a problem once per key (a failing store or an unknown model must not flood the log)."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._lock = threading.Lock()  # guards _seen

    def __call__(self, key: str, message: str, *args: object, level: int = logging.WARNING) -> None:
        with self._lock:
            if key in self._seen:
                return
            self._seen.add(key)
        log.log(level, message, *args)

    def forget(self, key: str) -> None:
        """Log the problem ``key`` again the next time it happens (it went away)."""
        with self._lock:
            self._seen.discard(key)


@dataclass(eq=False)
class Ledger:
    """One tracker's ledger in its store, with the budgets kept over it."""

    store: Store
    name: str
    budgets: list[Budget]
    clock: Callable[[], float]
    warn: OnceLog = field(default_factory=OnceLog)

    def safe(self, what: str, fn: Callable[[], Any], default: Any = None) -> Any:
        """Run a store call; on failure log once and return ``default`` (a view or write must not raise)."""
        try:
            result = fn()
        except Exception as exc:
            self.warn(f"store:{what}", "tokencost: the store failed (%s): %s", what, exc)
            return default
        self.warn.forget(f"store:{what}")
        return result

    def bug(self, where: str, exc: BaseException) -> None:
        """Log an internal error once per place and kind (the user's call goes on)."""
        self.warn(
            f"bug:{where}:{type(exc).__name__}",
            "tokencost: internal error in %s (the call goes on): %r",
            where,
            exc,
            level=logging.ERROR,
        )

    def call_user(self, what: str, fn: Callable[..., Any], *args: Any) -> None:
        """Call a user's callback; one that raises is logged once and ignored."""
        try:
            fn(*args)
        except Exception as exc:
            self.warn(f"callback:{what}", "tokencost: the %s callback raised %r; ignored", what, exc)

    def charges(self, event: Event) -> tuple[str, ...]:
        """The budget counters an event is added to: each once, however many budgets share it."""
        if not self.budgets:
            return ()
        return tuple(counter_checks(self.budgets, event.model, event.metadata, event.timestamp))

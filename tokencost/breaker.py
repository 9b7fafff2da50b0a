"""A circuit breaker for store calls: once the store fails, later calls fail at once instead of each waiting.

A store that hangs costs every budgeted call the whole ``store_timeout``. After a failure the breaker opens:
calls raise ``StoreError`` immediately for ``cooldown`` seconds; then one call is let through as a probe, and
the breaker closes again when it succeeds (the store is back) or stays open for another cooldown.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

from tokencost.errors import StoreError

__all__ = ["CircuitBreaker"]

_T = TypeVar("_T")


class CircuitBreaker:
    """Fail fast while a store is down; let one probe through every ``cooldown`` seconds."""

    def __init__(self, cooldown: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.cooldown = cooldown
        self._clock = clock
        self._lock = threading.Lock()  # guards _open_until and _last_error
        self._open_until: float | None = None
        self._last_error: BaseException | None = None

    def call(self, fn: Callable[[], _T]) -> _T:
        """Run ``fn``; while open, raise ``StoreError`` without running it."""
        with self._lock:
            if self._open_until is not None:
                now = self._clock()
                # (a clock set back by more than the cooldown does not keep the breaker open)
                if self._open_until - self.cooldown <= now < self._open_until:
                    raise StoreError(f"store unavailable (failing fast after: {self._last_error})")
                self._open_until = now + self.cooldown  # this call is the probe; others keep failing fast
        try:
            result = fn()
        except Exception as exc:
            with self._lock:
                self._open_until = self._clock() + self.cooldown
                self._last_error = exc
            raise
        with self._lock:
            self._open_until = None
            self._last_error = None
        return result

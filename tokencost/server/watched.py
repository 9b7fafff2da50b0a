"""The server's view of its store: writes that failed (the API must say so) and outages (logged once)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from tokencost.events import Event
from tokencost.pricing import Price
from tokencost.stores import Check, Group, Reservation, Store, Totals

__all__ = ["StoreHealth", "WatchedStore"]

log = logging.getLogger("tokencost")


class WatchedStore(Store):
    """Delegate to a store, remembering per thread the last write that failed.

    The tracker logs a failed write and goes on (it must never break its host program); the API must instead
    tell the client that its call was not recorded.
    """

    scheme = "watched"

    def __init__(self, inner: Store) -> None:
        super().__init__(inner.url)
        self.inner = inner
        self._local = threading.local()

    def take_write_error(self) -> BaseException | None:
        """Return and forget the error of this thread's last failed write."""
        error: BaseException | None = getattr(self._local, "error", None)
        self._local.error = None
        return error

    def record(
        self, ledger: str, event: Event, charges: Sequence[str] = (), reservation: str | None = None
    ) -> dict[str, tuple[int, int]]:
        try:
            return self.inner.record(ledger, event, charges, reservation)
        except Exception as exc:
            self._local.error = exc
            raise

    def reserve(
        self, ledger: str, reservation: str, checks: Sequence[Check], cost_units: int, tokens: int, ttl: float
    ) -> Check | None:
        return self.inner.reserve(ledger, reservation, checks, cost_units, tokens, ttl)

    def release(self, ledger: str, reservation: str) -> None:
        self.inner.release(ledger, reservation)

    def reservations(self, ledger: str) -> list[Reservation]:
        return self.inner.reservations(ledger)

    def release_stale(self, ledger: str, older_than: float) -> int:
        return self.inner.release_stale(ledger, older_than)

    def counters(self, ledger: str, keys: Sequence[str]) -> dict[str, tuple[int, int, int]]:
        return self.inner.counters(ledger, keys)

    def update_cost(
        self, ledger: str, call_id: str, cost_units: int, price: Price, charges: Sequence[str] = ()
    ) -> bool:
        return self.inner.update_cost(ledger, call_id, cost_units, price, charges)

    def reset(self, ledger: str) -> None:
        self.inner.reset(ledger)

    def set_meta(self, ledger: str, key: str, value: str) -> None:
        self.inner.set_meta(ledger, key, value)

    def get_meta(self, ledger: str, key: str) -> str | None:
        return self.inner.get_meta(ledger, key)

    def totals(self, ledger: str) -> Totals:
        return self.inner.totals(ledger)

    def aggregate(self, ledger: str, by: str, since: float | None = None, until: float | None = None) -> list[Group]:
        return self.inner.aggregate(ledger, by, since, until)

    def events(
        self,
        ledger: str,
        since: float | None = None,
        until: float | None = None,
        model: str | None = None,
        limit: int | None = None,
    ) -> list[Event]:
        return self.inner.events(ledger, since, until, model, limit)

    def flush(self, timeout: float | None = None) -> bool:
        return self.inner.flush(timeout)

    def close(self) -> None:
        self.inner.close()


class StoreHealth:
    """Log a store outage once when it starts and once when it ends, not on every request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # guards _down
        self._down = False

    def failed(self, what: str, exc: BaseException) -> None:
        with self._lock:
            first, self._down = not self._down, True
        if first:
            log.warning("tokencost server: the store failed (%s): %s", what, exc)

    def ok(self) -> None:
        with self._lock:
            was_down, self._down = self._down, False
        if was_down:
            log.warning("tokencost server: the store answers again")

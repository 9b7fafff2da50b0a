"""The write-behind queue shared by ``SQLiteStore`` and ``RedisStore``: ``record()`` queues an event (``Queued``)
and returns; ``WriteBehind`` writes the queue in ``Batch``es, by the recording thread or a background one."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from tokencost.errors import StoreError
from tokencost.events import Event
from tokencost.stores.base import Store
from tokencost.stores.codec import quarantined_event
from tokencost.stores.grouping import sums_of

__all__ = ["QUEUED_STORE_WRAPPED", "Batch", "BatchWriter", "CounterFetcher", "Queued", "WriteBehind"]

logger = logging.getLogger("tokencost")

# What a store writing through WriteBehind wraps into StoreError: not record(), the hot path, which only queues
# (WriteBehind.add raises StoreError itself).
QUEUED_STORE_WRAPPED = tuple(name for name in Store.WRAPPED_METHODS if name != "record")


class Queued(NamedTuple):
    """One recorded event waiting to be written, with what it charges (encoded by the writer, off the caller)."""

    ledger: str
    event: Event
    charges: tuple[str, ...]
    reservation: str | None


@dataclass(slots=True)
class Batch:
    """Events written in one transaction (SQLite) or one script call per ledger (Redis), with their charges."""

    seq: int
    items: list[Queued] = field(default_factory=list)
    first_at: float = 0.0  # monotonic time the first item was queued
    charges: dict[tuple[str, str], list[int]] = field(default_factory=dict)  # (ledger, key) -> [units, tokens]
    drops: set[tuple[str, str]] = field(default_factory=set)  # (ledger, reservation)
    # (ledger, charged keys) -> [(key, this batch's charge, WriteBehind._current entry)]: record()'s shortcut.
    refs: dict[tuple[str, tuple[str, ...]], list[tuple[str, list[int], list[int]]]] = field(default_factory=dict)

    def add(self, item: Queued) -> None:
        """Queue ``item`` and add what it charges to the batch's counters."""
        if not self.items:
            self.first_at = time.monotonic()
        self.items.append(item)
        if item.reservation is not None:
            self.drops.add((item.ledger, item.reservation))
        if item.charges:
            cost = item.event.cost_units or 0
            tokens = item.event.usage.total_tokens
            charges = self.charges
            for key in item.charges:
                counter = charges.get((item.ledger, key))
                if counter is None:
                    charges[item.ledger, key] = [cost, tokens]
                else:
                    counter[0] += cost
                    counter[1] += tokens

    def totals(self) -> dict[str, list[int]]:
        """Return the ``Totals`` sums of the batch's events, by ledger."""
        return {ledger: sums_of(item.event for item in items) for ledger, items in self.by_ledger().items()}

    def without(self, ledger: str) -> Batch:
        """Return the batch with the events of ``ledger`` left out."""
        batch = Batch(self.seq)
        for item in self.items:
            if item.ledger != ledger:
                batch.add(item)
        batch.first_at = self.first_at
        return batch

    def by_ledger(self) -> dict[str, list[Queued]]:
        """Return the items grouped by ledger, each in the order recorded."""
        out: dict[str, list[Queued]] = {}
        for item in self.items:
            group = out.get(item.ledger)
            if group is None:
                out[item.ledger] = [item]
            else:
                group.append(item)
        return out


# write(batch) -> the new committed (units, tokens) of every counter the batch charged.
BatchWriter = Callable[[Batch], Mapping[tuple[str, str], tuple[int, int]]]
# fetch(ledger, keys) -> committed (units, tokens) of those counters.
CounterFetcher = Callable[[str, Sequence[str]], Mapping[str, tuple[int, int]]]


class WriteBehind:
    """Queue events in memory and write them in batches.

    A full batch (``batch_size``) is written by the thread that filled it; a background thread writes a batch
    ``max_delay`` after its first event, and retries after a failure with backoff (up to 2 s). While writes
    succeed, a ``record()`` that finds a full batch queued writes it (waiting for the write in flight) before it
    queues its event, so at most two batches (``2 * batch_size`` events) are ever unwritten, however many threads
    record: that bounds what a SIGKILL loses. While writes fail, events queue up to ``max_queue``.

    A write that fails with an error ``transient(error)`` calls the backend's (down, locked, timed out) keeps its
    batch queued. Any other error is the data's (an event that cannot be encoded, an amount out of range, a
    constraint): the batch is written again in halves, down to the one bad event, which is written unpriced
    with the reason (its metadata and price left out), or dropped when even that fails. Each is logged (the first
    and every 1,000th), and the next ``drain()`` returns ``False`` after a drop.
    ``txn_lock`` serializes the store's write transactions in this process (the background batch, and every
    store method that writes or must see the queue written), so a batch is never half-visible to them. A batch
    that fails stays queued as it is and is written first, unchanged, on the next attempt (Redis uses its
    sequence number to tell a retry of an already applied batch).

    ``record()`` returns counter values without a round trip: ``_current`` keeps, for each counter this process
    charged, the committed value last read (every batch reads back the counters it charged) plus this process's
    queued charges. Other processes' charges show up there at this process's next batch write.
    """

    def __init__(
        self,
        name: str,
        write: BatchWriter,
        fetch: CounterFetcher,
        *,
        batch_size: int,
        max_delay: float,
        max_queue: int,
        transient: Callable[[BaseException], bool] | None = None,
    ) -> None:
        if batch_size < 1 or max_queue < batch_size or max_delay < 0:
            raise ValueError("need batch_size >= 1, max_queue >= batch_size and max_delay >= 0")
        self.name = name
        self._write = write
        self._fetch = fetch
        self._transient = transient or (lambda exc: isinstance(exc, StoreError))
        # Events written unpriced because they could not be written as recorded, and events dropped because they
        # could not be written at all; _lost_unreported: drops the next drain() reports.
        self.quarantined = 0
        self.lost = 0
        self._lost_unreported = 0
        self.batch_size = batch_size
        self.max_delay = max_delay
        self.max_queue = max_queue
        # Serializes write transactions of this process (see class docstring); taken before _lock, never after.
        self.txn_lock = threading.Lock()
        # Guards _queue, _inflight, _current, _error, _seq, _closing, _dropped and the thread's wake-ups.
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._seq = 0
        self._queue = Batch(0)  # numbered when taken (take), so a batch sent later always has a higher number
        self._inflight: Batch | None = None  # taken by a write that has not succeeded yet
        self._current: dict[tuple[str, str], list[int]] = {}  # (ledger, key) -> committed + queued [units, tokens]
        self._error: BaseException | None = None  # the last write's failure, until a write succeeds
        self._closing = False
        self._dropped = 0
        self._thread: threading.Thread | None = None

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    # -- recording ------------------------------------------------------------------------------------------
    def add(self, item: Queued) -> dict[str, tuple[int, int]]:
        """Queue ``item``; return each charged counter's value including it (and everything queued before it).

        Raises:
            StoreError: when the last write failed (the event is queued all the same and written when the
                backend is back), or the queue is full and cannot be written (the event is dropped).
        """
        with self._lock:
            if self._error is None and not self._closing and len(self._queue.items) < self.batch_size:
                values = self._enqueue(item)
                if values is not None and len(self._queue.items) < self.batch_size:
                    return values
                queued = True
            else:
                queued = False
        return self._add_slow(item, queued)

    def _enqueue(self, item: Queued) -> dict[str, tuple[int, int]] | None:
        # With _lock held: queue the item and add its charges to _current. Return the charged counters' values,
        # or None when _current lacks one of them (the caller reads it from the store).
        queue = self._queue
        items = queue.items
        if not items:
            queue.first_at = time.monotonic()
            if self._thread is None:
                # Started with the first event, so opening a store starts nothing.
                self._thread = threading.Thread(target=self._run, name=f"tokencost-{self.name}-writer", daemon=True)
                self._thread.start()
            self._wake.notify()
        items.append(item)
        ledger, event, keys, reservation = item
        if reservation is not None:
            queue.drops.add((ledger, reservation))
        out: dict[str, tuple[int, int]] | None = {}
        if keys:
            cost = event.cost_units or 0
            usage = event.usage
            tokens = (
                usage.input
                + usage.cache_read
                + usage.cache_write
                + usage.cache_write_1h
                + usage.cache_read_audio
                + usage.output
                + usage.reasoning
                + usage.audio_in
                + usage.audio_out
                + usage.image
            )
            refs = queue.refs.get((ledger, keys))
            if refs is not None:
                values: dict[str, tuple[int, int]] = {}
                for key, charge, value in refs:
                    charge[0] += cost
                    charge[1] += tokens
                    units = value[0] = value[0] + cost
                    used = value[1] = value[1] + tokens
                    values[key] = (units, used)
                return values
            charges = queue.charges
            current = self._current
            found = []
            for key in keys:
                queued = charges.get((ledger, key))
                if queued is None:
                    queued = charges[ledger, key] = [cost, tokens]
                else:
                    queued[0] += cost
                    queued[1] += tokens
                counter = current.get((ledger, key))
                if counter is None:
                    out = None
                else:
                    units = counter[0] = counter[0] + cost
                    used = counter[1] = counter[1] + tokens
                    found.append((key, queued, counter))
                    if out is not None:
                        out[key] = (units, used)
            if out is not None:
                queue.refs[ledger, keys] = found
        return out

    def _add_slow(self, item: Queued, queued: bool) -> dict[str, tuple[int, int]]:
        if not queued:
            while True:
                with self._lock:
                    if self._closing:
                        raise StoreError(f"{self.name} store is closed")
                    if self._error is not None or len(self._queue.items) < self.batch_size:
                        break
                # A full batch waits (another thread is writing the one before it): write it in this thread
                # before queuing more, which bounds what a crash can lose to two batches.
                try:
                    self.drain()
                except Exception:  # the error is kept (self._error) and reported below
                    break
            with self._lock:
                if len(self._queue.items) >= self.max_queue:
                    self._dropped += 1
                    if self._dropped == 1 or self._dropped % 1000 == 0:
                        logger.error(
                            "%s store: %d events queued (the most kept while writes fail); dropped %d so far",
                            self.name,
                            self.max_queue,
                            self._dropped,
                        )
                    raise StoreError(
                        f"{self.name} store: {self.max_queue} events already wait to be written; "
                        f"event dropped: {self._error}"
                    )
                self._enqueue(item)
                error = self._error
                size = len(self._queue.items)
            if error is not None:
                raise self._queued_error(error, size)
        with self._lock:
            size = len(self._queue.items)
        if size >= self.batch_size:
            # The thread that fills a batch writes it: a background writer would only fight it for the GIL
            # (measured: 15-25% fewer events/s). The background thread writes batches that wait max_delay.
            try:
                self.drain()
            except Exception as exc:
                raise self._queued_error(exc, size) from exc
        with self._lock:
            missing = [key for key in item.charges if (item.ledger, key) not in self._current]
            size = len(self._queue.items)
        if missing:
            with self.txn_lock:
                try:
                    values = self._fetch(item.ledger, missing)
                except Exception as exc:
                    raise self._queued_error(exc, size) from exc
                with self._lock:
                    for key in missing:
                        if (item.ledger, key) not in self._current:
                            units, tokens = values.get(key, (0, 0))
                            q_units, q_tokens = self._queued_charge(item.ledger, key)
                            self._set_current(item.ledger, key, units + q_units, tokens + q_tokens)
        with self._lock:
            current = self._current
            zero = [0, 0]  # a reset() in another thread may have just dropped the counter
            return {key: (v[0], v[1]) for key in item.charges for v in (current.get((item.ledger, key), zero),)}

    def _set_current(self, ledger: str, key: str, units: int, tokens: int) -> None:
        # With _lock held. In place: batches keep references to these lists (Batch.refs).
        value = self._current.get((ledger, key))
        if value is None:
            self._current[ledger, key] = [units, tokens]
        else:
            value[0] = units
            value[1] = tokens

    def _queued_error(self, error: BaseException, size: int) -> StoreError:
        return StoreError(
            f"{self.name} store failed: {error}; the event is queued ({size} waiting, at most {self.max_queue} "
            "kept) and written when the store works again"
        )

    def _queued_charge(self, ledger: str, key: str, besides: Batch | None = None) -> tuple[int, int]:
        # With _lock held.
        units = tokens = 0
        for batch in (self._inflight, self._queue):
            if batch is not None and batch is not besides:
                queued = batch.charges.get((ledger, key))
                if queued is not None:
                    units += queued[0]
                    tokens += queued[1]
        return units, tokens

    # -- overlays for reads (call with txn_lock held, so no batch is being written) ----------------------------
    def queued_charges(
        self, ledger: str, keys: Iterable[str], besides: Batch | None = None
    ) -> dict[str, tuple[int, int]]:
        """Return this process's queued (not yet written) charges to ``keys``, leaving out batch ``besides``."""
        with self._lock:
            return {key: self._queued_charge(ledger, key, besides) for key in keys}

    def queued_totals(self, ledger: str) -> list[int]:
        """Return the ``Totals`` sums of this process's queued events of ``ledger``."""
        with self._lock:
            items = [item for batch in (self._inflight, self._queue) if batch is not None for item in batch.items]
        return sums_of(item.event for item in items if item.ledger == ledger)

    def queued_drops(self, ledger: str, besides: Batch | None = None) -> set[str]:
        """Return the reservations that queued events of ``ledger`` will drop, leaving out batch ``besides``."""
        with self._lock:
            return {
                rid
                for batch in (self._inflight, self._queue)
                if batch is not None and batch is not besides
                for led, rid in batch.drops
                if led == ledger
            }

    def set_committed(self, values: Mapping[tuple[str, str], tuple[int, int]]) -> None:
        """Remember committed counter values a store method wrote and read back (call with txn_lock held)."""
        with self._lock:
            for (ledger, key), (units, tokens) in values.items():
                q_units, q_tokens = self._queued_charge(ledger, key)
                self._set_current(ledger, key, units + q_units, tokens + q_tokens)

    def forget(self, ledger: str) -> None:
        """Drop the queued events and cached counters of ``ledger`` (call with txn_lock held)."""
        with self._lock:
            self._queue = self._queue.without(ledger)
            if self._inflight is not None:
                self._inflight = self._inflight.without(ledger)
                if not self._inflight.items:
                    self._inflight = None
            self._current = {k: v for k, v in self._current.items() if k[0] != ledger}

    # -- writing ----------------------------------------------------------------------------------------------
    def drain(self, timeout: float | None = None) -> bool:
        """Write everything queued now, in the caller's thread; ``False`` when ``timeout`` ran out first."""
        if not self.txn_lock.acquire(timeout=-1 if timeout is None else max(timeout, 0.0)):
            return False
        try:
            self.drain_locked()
        finally:
            self.txn_lock.release()
        return True

    def flush(self, timeout: float | None = None) -> bool:
        """``drain()``, for a store's ``flush()``: also ``False`` when an event was dropped since the last flush
        (it could not be written at all), so an acknowledged flush means every event recorded before it is in."""
        done = self.drain(timeout)
        with self._lock:
            lost, self._lost_unreported = self._lost_unreported, 0
        return done and not lost

    def drain_locked(self) -> None:
        """Write a failed batch (unchanged), then the queue as it is now. Call with txn_lock held."""
        for _ in range(2):
            batch = self.take()
            if batch is None:
                return
            try:
                values = self._write(batch)
            except BaseException as exc:
                if not self.recover(batch, exc):
                    raise
            else:
                self.written(values)

    def recover(self, batch: Batch, exc: BaseException) -> bool:
        """Handle the failure ``exc`` of writing the taken ``batch`` (alone or with a store method's own work).

        Returns ``False`` when ``exc`` is the backend's (``transient``): the batch stays queued, unchanged.
        Otherwise writes the batch in pieces, isolating the events that cannot be written (see the class
        docstring), and returns ``True``: the caller may retry its own work without the batch. Raises when the
        backend fails meanwhile (what is not written yet stays queued). Call with txn_lock held.
        """
        if not isinstance(exc, Exception) or self._transient(exc):
            self.failed(batch, exc)
            return False
        logger.warning(
            "%s store: writing %d events failed (%s: %s); writing them in parts around the bad ones",
            self.name,
            len(batch.items),
            type(exc).__name__,
            exc,
        )
        values: dict[tuple[str, str], tuple[int, int]] = {}
        # (items, already quarantined) still to write, in order; the whole batch failed, so start with halves.
        work: deque[tuple[list[Queued], bool]] = deque()
        self._split_into(work, batch.items, False, exc)
        while work:
            items, quarantined = work.popleft()
            with self._lock:
                piece = Batch(self._next_seq())
                for item in items:
                    piece.add(item)
                self._inflight = piece
            try:
                values.update(self._write(piece))
            except BaseException as error:
                if not isinstance(error, Exception) or self._transient(error):
                    rest = [item for part, _ in work for item in part]
                    with self._lock:
                        self._requeue_front(rest)
                    self.failed(piece, error)
                    raise
                self._split_into(work, items, quarantined, error)
        self.written(values)
        return True

    def _split_into(
        self, work: deque[tuple[list[Queued], bool]], items: list[Queued], quarantined: bool, exc: BaseException
    ) -> None:
        # Put ``items``, whose write failed with ``exc`` (not the backend's fault), back at the front of ``work``: in
        # halves; one event as its quarantined copy; a quarantined copy that failed too is dropped.
        if len(items) > 1:
            middle = len(items) // 2
            work.appendleft((items[middle:], quarantined))
            work.appendleft((items[:middle], quarantined))
            return
        (item,) = items
        reason = f"{type(exc).__name__}: {exc}"[:300]
        if not quarantined:
            with self._lock:
                self.quarantined += 1
                count = self.quarantined
            if count == 1 or count % 1000 == 0:
                logger.error(
                    "%s store: event %r of ledger %r could not be written as recorded (%s); written without cost, "
                    "price and metadata instead (%d so far)",
                    self.name,
                    item.event.call_id,
                    item.ledger,
                    reason,
                    count,
                )
            work.appendleft(([item._replace(event=quarantined_event(item.event, reason))], True))
            return
        with self._lock:
            self.lost += 1
            self._lost_unreported += 1
            count = self.lost
        if count == 1 or count % 1000 == 0:
            logger.error(
                "%s store: event %r of ledger %r cannot be written at all (%s); dropped (%d so far)",
                self.name,
                item.event.call_id,
                item.ledger,
                reason,
                count,
            )

    def _requeue_front(self, items: list[Queued]) -> None:
        # With _lock held: queue ``items`` (taken, not written) again, before what was queued since.
        if not items:
            return
        queue = Batch(0)
        for item in (*items, *self._queue.items):
            queue.add(item)
        queue.first_at = time.monotonic()
        self._queue = queue

    def take(self) -> Batch | None:
        """Return the batch to write next (a failed one first, unchanged), or None. Call with txn_lock held.

        The caller writes it and then calls ``written`` or ``failed``; a store method may write it in the same
        transaction or round trip as its own work.
        """
        with self._lock:
            if self._inflight is None:
                if not self._queue.items:
                    return None
                self._inflight = self._queue
                self._inflight.seq = self._next_seq()
                self._queue = Batch(0)
            return self._inflight

    def written(self, values: Mapping[tuple[str, str], tuple[int, int]]) -> None:
        """Mark the taken batch written; ``values`` are the committed counters it charged, as read back."""
        with self._lock:
            self._inflight = None
            charges = self._queue.charges
            for (ledger, key), (units, tokens) in values.items():
                queued = charges.get((ledger, key))
                if queued is None:
                    self._set_current(ledger, key, units, tokens)
                else:
                    self._set_current(ledger, key, units + queued[0], tokens + queued[1])
            recovered = self._error is not None
            self._error = None
        if recovered:
            logger.warning("%s store: writing again; the queued events are written", self.name)

    def failed(self, batch: Batch, exc: BaseException) -> None:
        """Mark the taken batch not written: it stays queued, unchanged, for the next attempt."""
        with self._lock:
            first = self._error is None
            self._error = exc
        if first:
            logger.warning(
                "%s store: writing %d events failed, keeping them queued: %s", self.name, len(batch.items), exc
            )

    def pending(self) -> int:
        """Return how many events wait to be written."""
        with self._lock:
            return len(self._queue.items) + (len(self._inflight.items) if self._inflight is not None else 0)

    def _run(self) -> None:
        # Write what waited max_delay (full batches are written by the thread that fills them); after a failure,
        # retry with backoff.
        backoff = retry_at = 0.0
        while True:
            with self._lock:
                while True:
                    if self._closing:
                        return
                    now = time.monotonic()
                    if self._queue.items:
                        due = self._queue.first_at + self.max_delay
                    elif self._inflight is not None and self._error is not None:
                        due = now  # a failed batch waits for its retry (another thread may be writing it now)
                    else:
                        self._wake.wait()
                        continue
                    due = max(due, retry_at)
                    if due <= now:
                        break
                    self._wake.wait(due - now)
            try:
                self.drain()
                backoff = retry_at = 0.0
            except BaseException:  # logged in drain_locked; the batch stays queued for a retry
                backoff = min(2.0, backoff * 2 or 0.05)
                retry_at = time.monotonic() + backoff

    def close(self) -> None:
        """Stop the background thread and write what is queued.

        Raises:
            Exception: the backend's error when the last write fails (the events are then lost).
        """
        with self._lock:
            self._closing = True
            self._wake.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)
        with self.txn_lock:
            self.drain_locked()

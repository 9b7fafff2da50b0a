"""``SQLiteStore``: the ledger in one SQLite file, shared by every process on the host and kept across restarts.

``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` (missing folders are created). The file is
in WAL mode with ``synchronous=NORMAL``; money is INTEGER pico-dollars (never REAL): an event's amount in one
column (at most 2^63 - 1, see ``plausible_event``), running sums in two (``cost`` and ``cost_m``: the pico-dollars
below a micro-dollar and the whole micro-dollars), so totals hold about $9.2 * 10^12 exactly.

**Batched writes.** ``record()`` queues the event and returns; the queue is written in one transaction per
batch: by the recording thread itself when ``batch_size`` (2,000) events are queued, or by a background thread
``max_delay`` (50 ms) after the first queued event; a ``record()`` that finds a full batch waiting behind the
one being written writes it first. So a process killed with SIGKILL loses at most two batches (4,000 events),
however many threads record, while writes succeed; while they fail, up to ``max_queue`` (20,000). ``flush()``
writes the queue now; ``close()`` and interpreter exit flush too. A committed batch survives a process crash;
after a power loss, WAL with ``synchronous=NORMAL`` may roll back the last transactions.

**Reads see queued events.** ``counters()`` and ``totals()`` add this process's queued events to what the file
says; ``events()`` and ``aggregate()`` write the queue first; ``reserve()`` writes it in its own transaction.
``record()`` returns counter values without touching the file: the values read back by this process's last
write (other processes' charges included) plus its queued charges. Other processes see an event once its batch
is written (at most ``max_delay`` later).

**Budgets across processes.** ``reserve()`` is one ``BEGIN IMMEDIATE`` transaction that checks spent +
reserved + this reservation against each limit, so processes sharing the file never both pass a check only one
of them fits under. An event's reservation is deleted in the transaction that writes the event: until then
other processes still see the reservation, so spent + reserved never undercounts.

**Group sums.** Besides running totals, the file keeps running sums of each group of ``DIMENSIONS`` (model,
provider, user: metadata ``"user"``, tag: each of metadata ``"tags"``, day: UTC date, status, price_source),
written in the transaction that writes the events (and by ``update_cost``, cleared by ``reset``). So
``aggregate()`` by one of these over the whole history reads a few rows (a per-user budget line over a million
events: milliseconds, not seconds); with ``since``/``until``, or by another metadata key, it groups the events
in SQL. The sums are keyed exactly as that SQL groups. Schema 2 added them: a schema 1 file is upgraded when it
is first opened (about 3 s per million events, holding the write lock meanwhile); should a schema 1 tokencost
that had the file open already keep writing, ``aggregate()`` notices that the groups no longer add up to the
totals and sums them again.

One connection per store object, guarded by a lock (threads share it), opened lazily when the file cannot be
opened yet (locked, read-only, not a ledger): the store is down until then. Prices are kept once each as decimal
text (exact), so ``events()`` returns events equal to those recorded (metadata goes through JSON: tuples come
back as lists). Only unpriced
events are indexed by call id (``update_cost`` looks them up; an index of every call id halves write speed).

The write-behind queue (``WriteBehind``) and the JSON helpers are shared with ``RedisStore``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import math
import operator
import os
import sqlite3
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple, TypeVar

from tokencost.errors import StoreError
from tokencost.events import Event
from tokencost.pricing import Price
from tokencost.stores.base import (
    MAX_EVENT_UNITS,
    MAX_TOKENS,
    MICRO,
    NONE_KEY,
    Check,
    Group,
    Reservation,
    Store,
    Totals,
    join_sums,
    plausible_event,
    ranked_groups,
    split_sums,
    split_units,
)
from tokencost.usage import Usage

__all__ = ["DIMENSIONS", "QUEUED_STORE_WRAPPED", "SQLiteStore", "WriteBehind"]

logger = logging.getLogger("tokencost")

_T = TypeVar("_T")
_K = TypeVar("_K")
# 1: the first layout. 2: adds the groups table. 3: spans replace the (ledger, ts) index of events. 4: running
# money sums get a micro-dollar column (cost_m, saved_m, units_m: past 2^63 pico-dollars), reservations their
# creation time. An older file is upgraded when opened.
_SCHEMA_VERSION = 4
_N_SUMS = 11  # Stored sums: requests, cost, unpriced, saved, five token buckets, cost_m, saved_m (split_sums).
# Columns schema 4 added to tables an older file already has (ALTER TABLE ... ADD COLUMN).
_ADDED_COLUMNS = (
    ("totals", "cost_m", "INTEGER NOT NULL DEFAULT 0"),
    ("totals", "saved_m", "INTEGER NOT NULL DEFAULT 0"),
    ("groups", "cost_m", "INTEGER NOT NULL DEFAULT 0"),
    ("groups", "saved_m", "INTEGER NOT NULL DEFAULT 0"),
    ("counters", "units_m", "INTEGER NOT NULL DEFAULT 0"),
    ("reservations", "units_m", "INTEGER NOT NULL DEFAULT 0"),
    ("reservations", "created_at", "REAL NOT NULL DEFAULT 0"),
)

# ---------------------------------------------------------------------------------------------------------------
# Price codec: decimal text, so a price read back is equal to the one recorded.
_PRICE_FIELDS = tuple(f.name for f in dataclasses.fields(Price) if f.init)
_price_json_cache: dict[Price, str] = {}
_price_cache: dict[str, Price] = {}
_price_json_by_id: dict[int, tuple[Price, str]] = {}  # keeps the Price alive, so its id is not reused
_CODEC_CACHE_SIZE = 4096


_PRICE_TEXT_FIELDS = ("source", "source_url", "tier_above_tokens")


def price_to_dict(price: Price, depth: int = 0) -> dict[str, Any]:
    """Return ``price`` as a JSON-ready dict: every amount as decimal text, ``above_tier`` as a nested dict."""
    if depth > 8:
        raise ValueError("price tiers nested more than 8 deep")
    out: dict[str, Any] = {}
    for name in _PRICE_FIELDS:
        value = getattr(price, name)
        if value is None:
            continue
        if isinstance(value, Price):
            out[name] = price_to_dict(value, depth + 1)
        elif isinstance(value, Decimal):
            out[name] = str(value)
        else:
            out[name] = value
    return out


def price_from_dict(raw: Mapping[str, Any]) -> Price:
    """Rebuild a ``Price`` from ``price_to_dict``'s dict."""
    kwargs: dict[str, Any] = {}
    for name in _PRICE_FIELDS:
        if name in raw:
            value = raw[name]
            if name == "above_tier":
                kwargs[name] = price_from_dict(value)
            elif name in _PRICE_TEXT_FIELDS:
                kwargs[name] = value
            else:
                kwargs[name] = Decimal(value)
    return Price(**kwargs)


def price_to_json(price: Price) -> str:
    """Return ``price`` as compact JSON with every amount as decimal text."""
    # Looked up by identity first: hashing a Price (eight Decimals) costs more than encoding a small event.
    cached = _price_json_by_id.get(id(price))
    if cached is not None and cached[0] is price:
        return cached[1]
    text = _price_json_cache.get(price)
    if text is None:
        text = json.dumps(price_to_dict(price), separators=(",", ":"), sort_keys=True)
        if len(_price_json_cache) >= _CODEC_CACHE_SIZE:
            _price_json_cache.clear()
        _price_json_cache[price] = text
    if len(_price_json_by_id) >= _CODEC_CACHE_SIZE:
        _price_json_by_id.clear()
    _price_json_by_id[id(price)] = (price, text)
    return text


def price_from_json(text: str) -> Price:
    """Rebuild a ``Price`` written by ``price_to_json``."""
    price = _price_cache.get(text)
    if price is None:
        price = price_from_dict(json.loads(text))
        if len(_price_cache) >= _CODEC_CACHE_SIZE:
            _price_cache.clear()
        _price_cache[text] = price
    return price


def price_key(text: str) -> str:
    """Return a short content address for a price's JSON (prices are stored once, events refer to them)."""
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:16]


def quarantined_event(event: Event, reason: str) -> Event:
    """Return what is written instead of ``event`` when it cannot be written as recorded: no cost, price,
    breakdown or metadata, plain values only, and ``reason`` (usage kept when it is plain integers in range)."""
    usage = event.usage
    buckets = [getattr(usage, name, 0) for name in ("input", "cache_read", "cache_write", "output", "reasoning",
                                                       "audio_in", "audio_out", "image")]  # fmt: skip
    plain = all(type(v) is int and 0 <= v <= MAX_TOKENS for v in buckets)
    ts = event.timestamp
    return Event(
        call_id=str(event.call_id),
        timestamp=float(ts) if isinstance(ts, (int, float)) and math.isfinite(ts) else 0.0,
        model=str(event.model),
        provider=str(event.provider),
        usage=Usage(*buckets) if plain else Usage(),
        cost_units=None,
        status="ok" if event.status not in ("ok", "cache_hit", "incomplete") else str(event.status),
        reason=f"not written as recorded: {reason}",
    )


def sums_of(events: Iterable[Event]) -> list[int]:
    """Return what ``events`` add to a ``Totals``, in field order."""
    requests = cost = unpriced = saved = input_ = cache_read = cache_write = output = reasoning = 0
    for event in events:
        requests += 1
        units = event.cost_units
        if units is None:
            unpriced += 1
        else:
            cost += units
        saved += event.saved_units
        usage = event.usage
        input_ += usage.input
        cache_read += usage.cache_read
        cache_write += usage.cache_write
        output += usage.output
        reasoning += usage.reasoning
    return [requests, cost, unpriced, saved, input_, cache_read, cache_write, output, reasoning]


def _json_encoder() -> Callable[[Any], str]:
    # json.dumps builds an encoder on every call; building CPython's C encoder once makes encoding a small dict
    # two to three times cheaper. Arguments: markers (None: no circular check), default, string encoder, indent,
    # separators, sort_keys, skipkeys, allow_nan (what JSONEncoder.iterencode passes). NaN is refused: SQLite's
    # JSON functions reject it (see metadata_to_json).
    c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
    if c_make_encoder is None:  # pragma: no cover - CPython always has the C accelerator
        return json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str, allow_nan=False).encode
    chunks = c_make_encoder(None, str, json.encoder.encode_basestring, None, ":", ",", False, False, False)

    def encode(value: Any) -> str:
        return "".join(chunks(value, 0))

    return encode


encode_json = _json_encoder()


def metadata_to_json(metadata: Mapping[str, Any]) -> str:
    """Return metadata as compact JSON; values JSON cannot hold (NaN, cycles, objects) are kept as their ``str``."""
    if not metadata:
        return "{}"
    try:
        return encode_json(metadata if type(metadata) is dict else dict(metadata))
    except (ValueError, TypeError, RecursionError):
        # Never fail a write over metadata: an event that cannot be written would block every later one.
        return encode_json(plain_json(metadata))


def plain_json(value: Any, depth: int = 0) -> Any:
    """Return ``value`` with everything JSON cannot hold replaced by its ``str`` (finite depth, no NaN)."""
    if depth > 32:
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): plain_json(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_json(v, depth + 1) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (str, int, float)):
        return value
    return str(value)


# ---------------------------------------------------------------------------------------------------------------
# Write-behind queue shared by SQLiteStore and RedisStore.

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


# ---------------------------------------------------------------------------------------------------------------
# SQLite

_SCHEMA = """
CREATE TABLE IF NOT EXISTS prices (id INTEGER PRIMARY KEY, json TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    ledger TEXT NOT NULL,
    call_id TEXT NOT NULL,
    ts REAL NOT NULL,
    model TEXT NOT NULL,
    provider TEXT NOT NULL,
    cost INTEGER,
    saved INTEGER NOT NULL,
    input INTEGER NOT NULL,
    cache_read INTEGER NOT NULL,
    cache_write INTEGER NOT NULL,
    output INTEGER NOT NULL,
    reasoning INTEGER NOT NULL,
    audio_in INTEGER NOT NULL,
    audio_out INTEGER NOT NULL,
    image INTEGER NOT NULL,
    price_source TEXT,
    price_id INTEGER REFERENCES prices (id),
    breakdown TEXT,
    metadata TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT
);
-- The stretch of events (seq range, time range) each batch wrote for each ledger: a block range index, which
-- ledger and time filters narrow a scan with. An index on (ledger, ts) cost 10% of the write speed.
CREATE TABLE IF NOT EXISTS spans (
    ledger TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    min_ts REAL,
    max_ts REAL,
    PRIMARY KEY (ledger, last_seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS spans_last_seq ON spans (last_seq);
-- Only unpriced events are looked up by call id (update_cost): indexing every call id halves write speed.
CREATE INDEX IF NOT EXISTS events_unpriced ON events (ledger, call_id) WHERE cost IS NULL;
CREATE TABLE IF NOT EXISTS totals (
    ledger TEXT PRIMARY KEY,
    requests INTEGER NOT NULL,
    cost INTEGER NOT NULL,
    unpriced INTEGER NOT NULL,
    saved INTEGER NOT NULL,
    input INTEGER NOT NULL,
    cache_read INTEGER NOT NULL,
    cache_write INTEGER NOT NULL,
    output INTEGER NOT NULL,
    reasoning INTEGER NOT NULL,
    cost_m INTEGER NOT NULL DEFAULT 0,
    saved_m INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
-- Running sums of each group of each dimension in DIMENSIONS: aggregate() over the whole history reads these
-- few rows instead of grouping every event. Written in the transactions that write events.
CREATE TABLE IF NOT EXISTS groups (
    ledger TEXT NOT NULL,
    dim TEXT NOT NULL,
    key TEXT NOT NULL,
    requests INTEGER NOT NULL,
    cost INTEGER NOT NULL,
    unpriced INTEGER NOT NULL,
    saved INTEGER NOT NULL,
    input INTEGER NOT NULL,
    cache_read INTEGER NOT NULL,
    cache_write INTEGER NOT NULL,
    output INTEGER NOT NULL,
    reasoning INTEGER NOT NULL,
    cost_m INTEGER NOT NULL DEFAULT 0,
    saved_m INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (ledger, dim, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counters (
    ledger TEXT NOT NULL,
    key TEXT NOT NULL,
    units INTEGER NOT NULL,
    tokens INTEGER NOT NULL,
    units_m INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (ledger, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS reservations (
    ledger TEXT NOT NULL,
    id TEXT NOT NULL,
    keys TEXT NOT NULL,
    units INTEGER NOT NULL,
    tokens INTEGER NOT NULL,
    expires_at REAL NOT NULL,
    units_m INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (ledger, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    ledger TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (ledger, key)
) WITHOUT ROWID;
"""

_INTO_SPANS = "INSERT OR REPLACE INTO spans (ledger, first_seq, last_seq, min_ts, max_ts)"
_SPANS_OF_EVENTS = f"{_INTO_SPANS} SELECT ledger, min(seq), max(seq), min(ts), max(ts) FROM events"
# Add spans for the events after seq ? (those of the batch just written, and any an older tokencost wrote).
_ADD_SPANS = f"{_SPANS_OF_EVENTS} WHERE seq > ? GROUP BY ledger"
# Spans for every event of an older file, one per ledger and stretch of 2,048 seq (as batches would have written).
_SPANS_OF_ALL = f"{_SPANS_OF_EVENTS} GROUP BY ledger, seq / 2048"
_ADD_SPAN = f"{_INTO_SPANS} VALUES (?, ?, ?, ?, ?)"
_COVERED = "SELECT COALESCE(max(last_seq), 0) FROM spans"
# The seq covered by spans and the newest seq, as columns added to a query of spans.
_NEWEST = f", ({_COVERED}), (SELECT COALESCE(max(seq), 0) FROM events) FROM spans"
_INSERT_EVENT = (
    "INSERT INTO events (ledger, call_id, ts, model, provider, cost, saved, input, cache_read, cache_write, output,"
    " reasoning, audio_in, audio_out, image, price_source, price_id, breakdown, metadata, status, reason)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# Add a batch's sums to its ledger's totals.
# Adding sums in SQL: (the money sums' micro-dollar parts too).
_ADD_SUMS = (
    " requests = requests + excluded.requests, cost = cost + excluded.cost, unpriced = unpriced + excluded.unpriced,"
    " saved = saved + excluded.saved, input = input + excluded.input,"
    " cache_read = cache_read + excluded.cache_read, cache_write = cache_write + excluded.cache_write,"
    " output = output + excluded.output, reasoning = reasoning + excluded.reasoning,"
    " cost_m = cost_m + excluded.cost_m, saved_m = saved_m + excluded.saved_m"
)
_ADD_TOTALS = (
    "INSERT INTO totals (ledger, requests, cost, unpriced, saved, input, cache_read, cache_write, output, reasoning,"
    " cost_m, saved_m) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (ledger) DO UPDATE SET" + _ADD_SUMS
)
_UPSERT_COUNTER = (
    "INSERT INTO counters (ledger, key, units, units_m, tokens) VALUES (?, ?, ?, ?, ?) ON CONFLICT (ledger, key)"
    " DO UPDATE SET units = units + excluded.units, units_m = units_m + excluded.units_m,"
    " tokens = tokens + excluded.tokens"
)
_EVENT_COLUMNS = (
    "e.seq, e.call_id, e.ts, e.model, e.provider, e.cost, e.saved, e.input, e.cache_read, e.cache_write, e.output,"
    " e.reasoning, e.audio_in, e.audio_out, e.image, e.price_source, p.json, e.breakdown, e.metadata, e.status,"
    " e.reason"
)
# The stored sums (split_sums' layout) of a group of events: money summed in two parts, so no SUM overflows.
_SUMS_SQL = (
    "COUNT(*), COALESCE(SUM(e.cost % 1000000), 0), COUNT(*) - COUNT(e.cost), COALESCE(SUM(e.saved % 1000000), 0),"
    " COALESCE(SUM(e.input), 0), COALESCE(SUM(e.cache_read), 0), COALESCE(SUM(e.cache_write), 0),"
    " COALESCE(SUM(e.output), 0), COALESCE(SUM(e.reasoning), 0),"
    " COALESCE(SUM(e.cost / 1000000), 0), COALESCE(SUM(e.saved / 1000000), 0)"
)
# Group expressions of aggregate(); any other ``by`` is a metadata key (see _metadata_group).
_GROUP_SQL = {
    "model": "e.model",
    "provider": "e.provider",
    "status": "e.status",
    "price_source": f"COALESCE(e.price_source, '{NONE_KEY}')",
    "day": "date(e.ts, 'unixepoch')",
}
# A metadata value as memory's str(value) shows it (JSON true/false are Python's True/False).
_METADATA_GROUP = (
    "(SELECT CASE j.type WHEN 'true' THEN 'True' WHEN 'false' THEN 'False' WHEN 'null' THEN NULL"
    " ELSE CAST(j.value AS TEXT) END FROM json_each(e.metadata) AS j WHERE j.key = ?)"
)
# The tags of an event's metadata, one row each (duplicates once); no row when "tags" is not a JSON array.
_TAGS_SQL = (
    "SELECT DISTINCT CAST(j.value AS TEXT) FROM json_each(?1, '$.tags') AS j WHERE json_type(?1, '$.tags') = 'array'"
)

# Dimensions kept as running group sums (RedisStore keeps the same ones).
DIMENSIONS = ("model", "provider", "user", "tag", "day", "status", "price_source")
_GROUP_COLUMNS = "requests, cost, unpriced, saved, input, cache_read, cache_write, output, reasoning, cost_m, saved_m"
# Add stored sums (split_sums' layout) to a group.
_ADD_GROUP = (
    f"INSERT INTO groups (ledger, dim, key, {_GROUP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (ledger, dim, key) DO UPDATE SET" + _ADD_SUMS
)
# The key of each dimension but "tag", as aggregate()'s SQL groups by it (str(None) when that is NULL).
_KEY_SQL = {
    **{dim: f"COALESCE({expr}, 'None')" for dim, expr in _GROUP_SQL.items()},
    "user": f"COALESCE({_METADATA_GROUP.replace('?', repr('user'))}, '{NONE_KEY}')",
}
# The user group of metadata JSON ``?``.
_USER_SQL = "SELECT " + _KEY_SQL["user"].replace("e.metadata", "?")
_NO_TAGS = (NONE_KEY,)  # the tag groups of an event without tags
_MOVED_DIMENSIONS = tuple(dim for dim in DIMENSIONS if dim != "tag")  # the dimensions of _KEY_SQL
_MAX_I64 = 2**63  # JSON integers SQLite reads back exactly lie strictly within +-2^63
_DAY_S = 86_400.0
_LAST_DAY_S = 253_402_300_800.0  # 10000-01-01: dates beyond are SQLite's business
_EPOCH_ORDINAL = 719_163  # datetime.date(1970, 1, 1).toordinal()


def _encodes_as(metadata: dict[str, Any], text: str) -> bool:
    """Tell whether ``metadata`` encodes to ``text`` as it is (``metadata_to_json`` did not need ``plain_json``)."""
    try:
        return encode_json(metadata) == text
    except (ValueError, TypeError, RecursionError):
        return False


def _plain_user(value: Any) -> str | None:
    """Return the user group of a bool or int metadata value as aggregate()'s SQL shows it; None for others."""
    if value is True or value is False:
        return str(value)
    if type(value) is int and -_MAX_I64 < value < _MAX_I64:
        return str(value)
    return None


def _add_sums(groups: dict[_K, list[int]], key: _K, sums: list[int]) -> None:
    """Add ``sums`` to the sums of ``key`` in ``groups``."""
    acc = groups.get(key)
    groups[key] = list(sums) if acc is None else list(map(operator.add, acc, sums))


def _path_from_url(url: str) -> str:
    prefix = "sqlite:///"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise ValueError(
            f"malformed SQLite store URL {url!r}: expected sqlite:///relative/path.db or sqlite:////absolute/path.db"
        )
    if "?" in url:
        raise ValueError(f"SQLite store URL {url!r}: pass options as keyword arguments, not a query string")
    return url[len(prefix) :]


def _connect(path: str, timeout: float) -> sqlite3.Connection:
    """Open a connection to ``path`` (the one place the store connects: tests replace it)."""
    return sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)


class _Database:
    """The connection and every statement; each method runs with ``txn_lock`` held by the caller."""

    def __init__(self, path: str, busy_timeout: float, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self.clock = clock
        self.conn: sqlite3.Connection | None = None
        self.closed = False
        # Why the file could not be opened yet (locked, read-only, not a ledger...), and when to try again.
        self.open_error: StoreError | None = None
        self._retry_at = 0.0
        self._backoff = 0.0
        self._price_ids: dict[str, int] = {}  # price JSON -> committed prices.id (ids never change)
        self._new_price_ids: dict[str, int] = {}  # ids added by the open transaction
        self._days: dict[int, str] = {}  # days since the epoch -> ISO date
        self._metadata_cache: dict[str, tuple[str, tuple[str, ...]]] = {}  # metadata JSON -> user and tag groups
        self.try_open()

    def try_open(self) -> bool:
        """Open the file (creating or upgrading the schema); on failure remember why and when to try again.

        Never raises: a store that cannot open its file yet (locked by another process, read-only, its folder
        missing) is a store that is down: events are queued, reads raise ``StoreError``, and opening is tried
        again on the next use (at most every 2 s).
        """
        try:
            self.conn = self._open()
        except StoreError as exc:
            first = self.open_error is None
            self.open_error = exc
            self._backoff = min(2.0, self._backoff * 2 or 0.05)
            self._retry_at = time.monotonic() + self._backoff
            if first:
                logger.warning("%s; events are queued and written once it opens", exc)
            return False
        if self.open_error is not None:
            logger.warning("sqlite store: opened %s", self.path)
        self.open_error = None
        self._backoff = 0.0
        return True

    def _open(self) -> sqlite3.Connection:
        path = self.path
        # Opening waits at most 0.5 s for another process's lock (a constructor must not stall its host).
        open_wait = min(self.busy_timeout, 0.5)
        try:
            parent = os.path.dirname(os.path.abspath(path))
            if path != ":memory:" and not os.path.isdir(parent):
                os.makedirs(parent, exist_ok=True)
            conn = _connect(path, open_wait)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"sqlite store: cannot open {path}: {exc}") from exc
        try:
            # For a new file (no effect on one that exists): 16 KiB pages write rows 5% faster than 4 KiB ones.
            conn.execute("PRAGMA page_size = 16384")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal" and path != ":memory:":
                raise StoreError(f"sqlite store: cannot open {path}: it cannot use WAL journaling (got {mode!r})")
            conn.execute("PRAGMA synchronous = NORMAL")
            if conn.execute("PRAGMA user_version").fetchone()[0] != _SCHEMA_VERSION:
                self._create_or_upgrade(conn)
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        except StoreError:
            conn.close()
            raise
        except sqlite3.Error as exc:
            conn.close()
            raise StoreError(f"sqlite store: cannot open {path}: {self.describe(exc)}") from exc
        return conn

    def _create_or_upgrade(self, conn: sqlite3.Connection) -> None:
        path = self.path
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > _SCHEMA_VERSION:
                raise StoreError(
                    f"sqlite store: {path} has schema version {version}, newer than this tokencost "
                    f"({_SCHEMA_VERSION}); upgrade tokencost"
                )
            if version < _SCHEMA_VERSION:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                for table, column, declaration in _ADDED_COLUMNS:
                    if column not in {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}:
                        conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
                if 1 <= version < 3:
                    # An older file has events: sum them once into groups (version 1) and spans (seconds for
                    # millions of events, while other processes retry opening the file).
                    logger.warning("sqlite store: upgrading %s to schema %d", path, _SCHEMA_VERSION)
                    started = time.perf_counter()
                    if version == 1:
                        self.build_groups(conn, None)
                    conn.execute("DROP INDEX IF EXISTS events_ledger_ts")
                    conn.execute("DELETE FROM spans")
                    conn.execute(_SPANS_OF_ALL)
                    logger.info("sqlite store: upgraded %s in %.1f s", path, time.perf_counter() - started)
                conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def describe(self, exc: sqlite3.Error) -> str:
        """Say what went wrong in words a user can act on."""
        text = str(exc)
        if "locked" in text or "busy" in text:
            return (
                f"{text} (another connection held a write lock on {self.path} for longer than "
                f"busy_timeout={self.busy_timeout:g} s)"
            )
        if "readonly" in text or "read-only" in text:
            return f"{text} (no write permission on {self.path} or its directory)"
        if "not a database" in text or "malformed" in text:
            return f"{text} ({self.path} is not a tokencost SQLite ledger, or it is damaged)"
        return text

    def _conn(self) -> sqlite3.Connection:
        conn = self.conn
        if conn is not None:
            return conn
        if self.closed:
            raise StoreError(f"sqlite store {self.path} is closed")
        if time.monotonic() < self._retry_at or not self.try_open():
            raise StoreError(f"sqlite store {self.path} is not open: {self.open_error}")
        assert self.conn is not None
        return self.conn

    def write(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``fn`` in one ``BEGIN IMMEDIATE`` transaction; sqlite errors become ``StoreError``."""
        conn = self._conn()
        self._new_price_ids = {}
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except (sqlite3.IntegrityError, sqlite3.DataError, sqlite3.InterfaceError, sqlite3.ProgrammingError):
            raise  # the data's fault, not the file's: a batch is then written in parts around the bad event
        except sqlite3.Error as exc:
            if "readonly" in str(exc):
                # SQLite opened the file read-only (no write permission then): open it again on the next use, so
                # writes go through once it is writable.
                self.conn = None
                self._retry_at = 0.0
                conn.close()
            raise StoreError(f"sqlite store {self.path}: {self.describe(exc)}") from exc
        # Only ids of committed rows may be remembered: a rolled back id could be reused for another price.
        self._price_ids.update(self._new_price_ids)
        return result

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Run one query and return its rows."""
        conn = self._conn()
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite store {self.path}: {self.describe(exc)}") from exc

    # -- statements --------------------------------------------------------------------------------------------
    def write_batch(self, batch: Batch) -> dict[tuple[str, str], tuple[int, int]]:
        """Write a batch of events, their charges and totals, and drop their reservations, in one transaction."""
        return self.write(lambda conn: self.write_rows(conn, batch))

    def write_rows(self, conn: sqlite3.Connection, batch: Batch) -> dict[tuple[str, str], tuple[int, int]]:
        """Write a batch within the caller's transaction; return the charged counters' new values.

        Also adds the batch to its ledgers' totals and groups: summed by kind (events sharing every group key, of
        which a batch has few) as the rows are built, then each kind is spread over its groups.
        """
        price_ids = self._price_ids
        rows: list[tuple[Any, ...]] = []
        append = rows.append
        last_price: Price | None = None
        price_id: int | None = None
        # (ledger, model, provider, status, price_source, day, metadata JSON) -> Totals sums
        kinds: dict[tuple[Any, ...], list[int]] = {}
        metadata_of: dict[str, Mapping[str, Any]] = {}  # metadata JSON -> the metadata of one event
        day = ""
        day_lo, day_hi = 1.0, 0.0  # timestamps in [day_lo, day_hi) fall on ``day``
        for ledger, event, _, _ in batch.items:
            price = event.price
            if price is not last_price:
                last_price = price
                if price is None:
                    price_id = None
                else:
                    text = price_to_json(price)
                    price_id = price_ids.get(text)
                    if price_id is None:
                        price_id = self.price_id(conn, text)
            usage = event.usage
            input_ = usage.input
            cache_read = usage.cache_read
            cache_write = usage.cache_write
            output = usage.output
            reasoning = usage.reasoning
            cost = event.cost_units
            saved = event.saved_units
            ts = event.timestamp
            metadata = event.metadata
            breakdown = event.breakdown
            model = event.model
            provider = event.provider
            status = event.status
            source = event.price_source
            text = metadata_to_json(metadata) if metadata else "{}"
            if not day_lo <= ts < day_hi:
                day, day_lo, day_hi = self._day(conn, ts)
            append(
                (
                    ledger,
                    event.call_id,
                    ts,
                    model,
                    provider,
                    cost,
                    saved,
                    input_,
                    cache_read,
                    cache_write,
                    output,
                    reasoning,
                    usage.audio_in,
                    usage.audio_out,
                    usage.image,
                    source,
                    price_id,
                    None if breakdown is None else encode_json(dict(breakdown)),
                    text,
                    status,
                    event.reason,
                )
            )
            kind = (ledger, model, provider, status, source, day, text)
            sums = kinds.get(kind)
            if sums is None:
                if text not in metadata_of:
                    metadata_of[text] = metadata
                kinds[kind] = [
                    1,
                    0 if cost is None else cost,
                    1 if cost is None else 0,
                    saved,
                    input_,
                    cache_read,
                    cache_write,
                    output,
                    reasoning,
                ]
            else:
                sums[0] += 1
                if cost is None:
                    sums[2] += 1
                else:
                    sums[1] += cost
                sums[3] += saved
                sums[4] += input_
                sums[5] += cache_read
                sums[6] += cache_write
                sums[7] += output
                sums[8] += reasoning
        covered = conn.execute(_COVERED).fetchone()[0]
        conn.executemany(_INSERT_EVENT, rows)
        self._add_spans(conn, rows, {kind[0] for kind in kinds}, covered)
        # Fold the kinds by what decides their user and tag groups and by what decides the others first: two
        # additions a kind instead of one per group.
        by_metadata: dict[tuple[str, str], list[int]] = {}
        by_rest: dict[tuple[str, ...], list[int]] = {}
        for (ledger, model, provider, status, source, day, text), sums in kinds.items():
            _add_sums(by_metadata, (ledger, text), sums)
            _add_sums(by_rest, (ledger, model, provider, status, NONE_KEY if source is None else source, day), sums)
        totals: dict[str, list[int]] = {}
        groups: dict[tuple[str, str, str], list[int]] = {}
        for (ledger, model, provider, status, source, day), sums in by_rest.items():
            _add_sums(totals, ledger, sums)
            _add_sums(groups, (ledger, "model", model), sums)
            _add_sums(groups, (ledger, "provider", provider), sums)
            _add_sums(groups, (ledger, "day", day), sums)
            _add_sums(groups, (ledger, "status", status), sums)
            _add_sums(groups, (ledger, "price_source", source), sums)
        for (ledger, text), sums in by_metadata.items():
            user, tags = self._metadata_keys(conn, text, metadata_of[text])
            _add_sums(groups, (ledger, "user", user), sums)
            for tag in tags:
                _add_sums(groups, (ledger, "tag", tag), sums)
        conn.executemany(_ADD_TOTALS, [(ledger, *split_sums(sums)) for ledger, sums in totals.items()])
        conn.executemany(_ADD_GROUP, [(*key, *split_sums(sums)) for key, sums in groups.items()])
        if batch.drops:
            conn.executemany("DELETE FROM reservations WHERE ledger = ? AND id = ?", list(batch.drops))
        return self.charge(conn, [(led, key, u, t) for (led, key), (u, t) in batch.charges.items()])

    @staticmethod
    def _add_spans(conn: sqlite3.Connection, rows: Sequence[tuple[Any, ...]], ledgers: set[str], covered: int) -> None:
        """Add the spans of ``rows``, just inserted after the events spans covered up to seq ``covered``."""
        newest = conn.execute("SELECT max(seq) FROM events").fetchone()[0]
        if len(ledgers) == 1 and newest - len(rows) == covered:
            # The usual batch: one ledger, right after the last span (its rows got seq covered + 1 ... newest).
            times = [row[2] for row in rows]
            try:
                span = (*ledgers, covered + 1, newest, min(times), max(times))
            except TypeError:  # a timestamp that is not a number: let SQLite order the values
                pass
            else:
                conn.execute(_ADD_SPAN, span)
                return
        conn.execute(_ADD_SPANS, (covered,))

    def _metadata_keys(
        self, conn: sqlite3.Connection, text: str, metadata: Mapping[str, Any] | None
    ) -> tuple[str, tuple[str, ...]]:
        """Return the user group and tag groups of metadata JSON ``text`` as aggregate()'s SQL finds them.

        Worked out from ``metadata`` (``text`` decoded when None) when ``text`` is its JSON as it is (not through
        ``plain_json``) and its user and tags are plain values (str, int, bool, None; tags a list of str); asked
        of that SQL otherwise, so the groups always agree with it.
        """
        keys = self._metadata_cache.get(text)
        if keys is not None:
            return keys
        if metadata is None:
            try:
                metadata = json.loads(text)
            except ValueError:
                metadata = None  # asked of the SQL below
        user: str | None = None
        tags: tuple[str, ...] | None = None
        if type(metadata) is dict and (not metadata or _encodes_as(metadata, text)):
            value = metadata.get("user")
            if value is None:
                user = NONE_KEY
            elif type(value) is str:
                user = value if "\x00" not in value else None
            else:
                user = _plain_user(value)
            value = metadata.get("tags")
            if value is None or type(value) is str or type(value) is dict:
                tags = _NO_TAGS  # not a JSON array
            elif (type(value) is list or type(value) is tuple) and all(
                type(tag) is str and "\x00" not in tag for tag in value
            ):
                tags = tuple(dict.fromkeys(value)) or _NO_TAGS
        if user is None:
            user = conn.execute(_USER_SQL, (text,)).fetchone()[0]
        if tags is None:
            tags = tuple(NONE_KEY if tag is None else tag for (tag,) in conn.execute(_TAGS_SQL, (text,))) or _NO_TAGS
        if len(self._metadata_cache) >= _CODEC_CACHE_SIZE:
            self._metadata_cache.clear()
        keys = self._metadata_cache[text] = (user, tags)
        return keys

    def _day(self, conn: sqlite3.Connection, ts: float) -> tuple[str, float, float]:
        """Return the UTC day of ``ts`` as SQLite's ``date(ts, 'unixepoch')`` has it, and the span it covers.

        SQLite rounds to the millisecond first, so within a millisecond of midnight it decides (and ``ts`` outside
        0001-9999, or not a number); elsewhere the day is the floor of ``ts / 86400``.
        """
        if isinstance(ts, (float, int)) and 0.0 <= ts < _LAST_DAY_S:
            number, rest = divmod(ts, _DAY_S)
            if 0.001 <= rest < _DAY_S - 0.001:
                key = self._days.get(int(number))
                if key is None:
                    if len(self._days) >= _CODEC_CACHE_SIZE:
                        self._days.clear()
                    key = self._days[int(number)] = dt.date.fromordinal(_EPOCH_ORDINAL + int(number)).isoformat()
                start = number * _DAY_S
                return key, start + 0.001, start + _DAY_S - 0.001
        return str(conn.execute("SELECT date(?, 'unixepoch')", (ts,)).fetchone()[0]), 1.0, 0.0

    def build_groups(self, conn: sqlite3.Connection, ledger: str | None) -> None:
        """Sum the groups table afresh from the events of ``ledger`` (of every ledger when None).

        One pass: SQL sums the events by kind (about 3 s for a million events), the kinds are spread over their
        groups here as ``write_rows`` does.
        """
        only, params = ("WHERE e.ledger = ?", (ledger,)) if ledger is not None else ("", ())
        conn.execute(f"DELETE FROM groups {only.replace('e.', '')}", params)
        kinds = conn.execute(
            f"SELECT e.ledger, e.model, e.provider, e.status, {_KEY_SQL['price_source']}, {_KEY_SQL['day']},"
            f" e.metadata, {_SUMS_SQL} FROM events AS e {only} GROUP BY 1, 2, 3, 4, 5, 6, 7",
            params,
        )
        groups: dict[tuple[str, str, str], list[int]] = {}
        for led, model, provider, status, source, day, text, *sums in kinds.fetchall():
            user, tags = self._metadata_keys(conn, text, None)
            for dim, key in (
                ("model", model),
                ("provider", provider),
                ("user", user),
                ("day", day),
                ("status", status),
                ("price_source", source),
                *(("tag", tag) for tag in tags),
            ):
                _add_sums(groups, (led, dim, key), sums)
        conn.executemany(_ADD_GROUP, [(*key, *sums) for key, sums in groups.items()])

    def price_id(self, conn: sqlite3.Connection, text: str) -> int:
        """Return the id of a price's JSON, adding it to the prices table when new (inside a transaction)."""
        price_id = self._price_ids.get(text) or self._new_price_ids.get(text)
        if price_id is None:
            conn.execute("INSERT OR IGNORE INTO prices (json) VALUES (?)", (text,))
            price_id = conn.execute("SELECT id FROM prices WHERE json = ?", (text,)).fetchone()[0]
            self._new_price_ids[text] = price_id
        return price_id

    @staticmethod
    def charge(
        conn: sqlite3.Connection, charges: Sequence[tuple[str, str, int, int]]
    ) -> dict[tuple[str, str], tuple[int, int]]:
        """Add ``(ledger, key, units, tokens)`` to counters (inside a transaction); return their new values."""
        out: dict[tuple[str, str], tuple[int, int]] = {}
        if charges:
            conn.executemany(
                _UPSERT_COUNTER, [(ledger, key, *split_units(units), tokens) for ledger, key, units, tokens in charges]
            )
            for ledger, key, _, _ in charges:
                units, micro, tokens = conn.execute(
                    "SELECT units, units_m, tokens FROM counters WHERE ledger = ? AND key = ?", (ledger, key)
                ).fetchone()
                out[ledger, key] = (micro * MICRO + units, tokens)
        return out

    def fetch_counters(self, ledger: str, keys: Sequence[str]) -> dict[str, tuple[int, int]]:
        """Return the committed ``(units, tokens)`` of ``keys``."""
        out = dict.fromkeys(keys, (0, 0))
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            for key, units, micro, tokens in self.read(
                f"SELECT key, units, units_m, tokens FROM counters WHERE ledger = ? AND key IN ({marks})",
                (ledger, *chunk),
            ):
                out[key] = (micro * MICRO + units, tokens)
        return out

    def reserved(self, ledger: str, keys: Sequence[str], skip: set[str]) -> dict[str, tuple[int, int]]:
        """Return the units and tokens live reservations hold on each of ``keys``, leaving out ids in ``skip``."""
        held: dict[str, list[int]] = {}
        now = self.clock()
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            for key, units, micro, tokens in self.read(
                "SELECT j.value, SUM(r.units), SUM(r.units_m), SUM(r.tokens)"
                " FROM reservations AS r, json_each(r.keys) AS j"
                f" WHERE r.ledger = ? AND r.expires_at >= ? AND j.value IN ({', '.join('?' * len(chunk))})"
                " GROUP BY j.value",
                (ledger, now, *chunk),
            ):
                held[key] = [micro * MICRO + units, tokens]
        # Reservations that queued events will drop no longer hold anything (few: this process's queue).
        ids = sorted(skip)
        for start in range(0, len(ids) if held else 0, 500):
            chunk = ids[start : start + 500]
            for keys_json, units, micro, tokens in self.read(
                "SELECT keys, units, units_m, tokens FROM reservations"
                f" WHERE ledger = ? AND expires_at >= ? AND id IN ({', '.join('?' * len(chunk))})",
                (ledger, now, *chunk),
            ):
                for key in dict.fromkeys(json.loads(keys_json)):
                    if key in held:
                        held[key][0] -= micro * MICRO + units
                        held[key][1] -= tokens
        return {key: (units, tokens) for key, (units, tokens) in held.items()}

    def groups(self, ledger: str, dim: str) -> list[Any] | None:
        """Return ``(key, *sums)`` of each group of ``dim`` from the groups table, or None when it cannot be trusted.

        The model groups must add up to the totals (every event has one model). They do not when a tokencost
        without the groups table (schema 1), which had the file open when it was upgraded, wrote events since:
        then the groups of the ledger are summed again from the events, or None is returned when that fails.
        """
        conn = self._conn()
        sql = f"SELECT key, {_GROUP_COLUMNS} FROM groups WHERE ledger = ? AND dim = ?"
        try:
            conn.execute("BEGIN")  # one snapshot for the groups and the totals
            try:
                rows = conn.execute(sql, (ledger, dim)).fetchall()
                models = rows if dim == "model" else conn.execute(sql, (ledger, "model")).fetchall()
                totals = (
                    conn.execute(f"SELECT {_GROUP_COLUMNS} FROM totals WHERE ledger = ?", (ledger,)).fetchone()
                    or (0,) * _N_SUMS
                )
            finally:
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite store {self.path}: {self.describe(exc)}") from exc
        sums = [sum(column) for column in zip(*(row[1:] for row in models), strict=True)] or [0] * _N_SUMS
        if join_sums(sums) == join_sums(totals):
            return rows
        logger.warning(
            "sqlite store %s: the groups of ledger %r do not add up to its totals (a tokencost older than schema "
            "%d wrote to it?); summing them again from the events",
            self.path,
            ledger,
            _SCHEMA_VERSION,
        )
        try:
            self.write(lambda conn: self.build_groups(conn, ledger))
        except StoreError as exc:
            logger.warning("sqlite store %s: could not sum the groups again: %s", self.path, exc)
            return None
        return self.read(sql, (ledger, dim))

    def close(self) -> None:
        """Close the connection."""
        self.closed = True
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.close()


def _decode_row(row: Sequence[Any]) -> Event:
    (seq, call_id, ts, model, provider, cost, saved, *buckets) = row[:15]
    price_source, price_json, breakdown, metadata, status, reason = row[15:]
    return Event(
        call_id=call_id or f"event-{seq}",
        timestamp=ts,
        model=model,
        provider=provider,
        usage=Usage(*buckets),
        cost_units=cost,
        price_source=price_source,
        price=None if price_json is None else price_from_json(price_json),
        saved_units=saved,
        metadata=json.loads(metadata),
        status=status,
        reason=reason,
        breakdown=None if breakdown is None else json.loads(breakdown),
    )


def _close_quietly(batcher: WriteBehind, db: _Database) -> None:
    # Runs at interpreter exit or when the store is garbage-collected without close().
    try:
        batcher.close()
    except BaseException as exc:  # nobody to raise to at exit
        logger.error("sqlite store %s: %d queued events could not be written: %s", db.path, batcher.pending(), exc)
    finally:
        db.close()


class SQLiteStore(Store):
    """The ledger in a SQLite file: survives restarts, shared by the processes of one host. Thread-safe.

    Example::

        store = SQLiteStore("sqlite:///var/lib/app/costs.db")

    Args:
        url: ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` (missing folders are created).
        batch_size: write a batch when this many events are queued.
        max_delay: write a batch at most this many seconds after its first event was queued.
        max_queue: events kept queued while writes fail (more are dropped and logged).
        busy_timeout: seconds to wait for another process's write lock before failing.
        timeout: seconds one read, write or ``reserve()`` may wait for the file (replaces ``busy_timeout``).
        clock: seconds since the epoch, for reservation times (default ``time.time``).

    Opening never raises for a file that is locked, read-only, damaged or not there yet: the store is down until
    it opens (events are queued, reads raise ``StoreError``), and opening is tried again on the next use.

    Raises:
        ValueError: for a malformed URL or option.
    """

    scheme = "sqlite"
    WRAPPED_METHODS = QUEUED_STORE_WRAPPED

    def __init__(
        self,
        url: str,
        *,
        batch_size: int = 2000,
        max_delay: float = 0.05,
        max_queue: int = 20_000,
        busy_timeout: float = 5.0,
        timeout: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(url)
        self.path = _path_from_url(url)
        if timeout is not None:
            if not timeout > 0:
                raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
            busy_timeout = timeout
        self._clock = clock
        self._db = _Database(self.path, busy_timeout, clock)
        self._batcher = WriteBehind(
            "sqlite",
            self._db.write_batch,
            self._db.fetch_counters,
            batch_size=batch_size,
            max_delay=max_delay,
            max_queue=max_queue,
        )
        self._finalizer = weakref.finalize(self, _close_quietly, self._batcher, self._db)

    def __repr__(self) -> str:
        return f"SQLiteStore({self.url!r})"

    # -- writes -------------------------------------------------------------------------------------------
    def record(
        self, ledger: str, event: Event, charges: Sequence[str] = (), reservation: str | None = None
    ) -> dict[str, tuple[int, int]]:
        # tuple.__new__ skips NamedTuple's Python-level constructor: this is the hot path.
        item = tuple.__new__(
            Queued,
            (ledger, plausible_event(event), charges if type(charges) is tuple else tuple(charges), reservation),
        )
        return self._batcher.add(item)

    def reserve(
        self, ledger: str, reservation: str, checks: Sequence[Check], cost_units: int, tokens: int, ttl: float
    ) -> Check | None:
        keys = list(dict.fromkeys(check.key for check in checks))  # a counter checked twice is held once
        batcher = self._batcher
        db = self._db

        def run(conn: sqlite3.Connection) -> tuple[Check | None, dict[tuple[str, str], tuple[int, int]]]:
            # This process's queued events are written first, in the same transaction: their charges count.
            written = db.write_rows(conn, batch) if batch is not None else {}
            now = self._clock()
            conn.execute(
                "DELETE FROM reservations WHERE ledger = ? AND (expires_at < ? OR id = ?)", (ledger, now, reservation)
            )
            spent = db.fetch_counters(ledger, keys)
            # Events queued by other threads since: their charges count, their reservations are theirs to drop.
            queued = batcher.queued_charges(ledger, keys, besides=batch)
            held = db.reserved(ledger, keys, batcher.queued_drops(ledger, besides=batch))
            for check in checks:
                units = spent[check.key][0] + queued[check.key][0]
                used = spent[check.key][1] + queued[check.key][1]
                held_units, held_tokens = held.get(check.key, (0, 0))
                if check.limit_units is not None and units + held_units + cost_units > check.limit_units:
                    return check, written
                if check.limit_tokens is not None and used + held_tokens + tokens > check.limit_tokens:
                    return check, written
            rest, micro = split_units(cost_units)
            conn.execute(
                "INSERT INTO reservations (ledger, id, keys, units, units_m, tokens, created_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (ledger, reservation, json.dumps(keys), rest, micro, tokens, now, now + ttl),
            )
            return None, written

        with batcher.txn_lock:
            batch = batcher.take()
            try:
                result, written = db.write(run)
            except BaseException as exc:
                if batch is None or not batcher.recover(batch, exc):
                    raise
                batch = None  # written in parts; now the reservation alone
                result, written = db.write(run)
            if batch is not None:
                batcher.written(written)
            return result

    def release(self, ledger: str, reservation: str) -> None:
        with self._batcher.txn_lock:
            self._db.write(
                lambda conn: conn.execute("DELETE FROM reservations WHERE ledger = ? AND id = ?", (ledger, reservation))
            )

    def reservations(self, ledger: str) -> list[Reservation]:
        with self._batcher.txn_lock:
            rows = self._db.read(
                "SELECT id, keys, units, units_m, tokens, created_at, expires_at FROM reservations"
                " WHERE ledger = ? AND expires_at >= ? ORDER BY created_at, id",
                (ledger, self._clock()),
            )
            drops = self._batcher.queued_drops(ledger)
        return [
            Reservation(rid, tuple(json.loads(keys)), micro * MICRO + units, tokens, created, expires)
            for rid, keys, units, micro, tokens, created, expires in rows
            if rid not in drops
        ]

    def release_stale(self, ledger: str, older_than: float) -> int:
        now = self._clock()

        def run(conn: sqlite3.Connection) -> int:
            cursor = conn.execute(
                "DELETE FROM reservations WHERE ledger = ? AND created_at < ? AND expires_at >= ?",
                (ledger, now - older_than, now),
            )
            return cursor.rowcount

        with self._batcher.txn_lock:
            return self._db.write(run)

    def update_cost(
        self, ledger: str, call_id: str, cost_units: int, price: Price, charges: Sequence[str] = ()
    ) -> bool:
        if not 0 <= cost_units <= MAX_EVENT_UNITS:
            return False  # an amount no event can have is never written as money
        price_json = price_to_json(price)

        def run(conn: sqlite3.Connection) -> dict[tuple[str, str], tuple[int, int]] | None:
            row = conn.execute(
                "SELECT e.seq, e.cost, e.saved, e.input, e.cache_read, e.cache_write, e.output, e.reasoning,"
                " e.audio_in, e.audio_out, e.image, e.metadata,"
                f" {', '.join(_KEY_SQL[dim] for dim in _MOVED_DIMENSIONS)}"
                " FROM events AS e WHERE e.ledger = ? AND e.call_id = ? AND e.cost IS NULL ORDER BY e.seq DESC LIMIT 1",
                (ledger, call_id),
            ).fetchone()
            if row is None:
                return None
            seq, _, old_saved, *buckets = row[:11]
            metadata, *keys = row[11:]
            saved = price.saved_units(Usage(*buckets)) or old_saved
            price_id = self._db.price_id(conn, price_json)
            conn.execute(
                "UPDATE events SET cost = ?, saved = ?, price_source = ?, status = 'ok', reason = NULL, price_id = ?"
                " WHERE seq = ?",
                (cost_units, saved, price.source, price_id, seq),
            )
            cost_rest, cost_micro = split_units(cost_units)
            saved_rest, saved_micro = split_units(saved - old_saved)
            conn.execute(
                "UPDATE totals SET cost = cost + ?, cost_m = cost_m + ?, unpriced = unpriced - 1, saved = saved + ?,"
                " saved_m = saved_m + ? WHERE ledger = ?",
                (cost_rest, cost_micro, saved_rest, saved_micro, ledger),
            )
            # The event leaves its groups as it was and joins them as it is now (status and price_source change).
            tokens = buckets[:5]
            old = [1, 0, 1, old_saved, *tokens]
            new = [1, cost_units, 0, saved, *tokens]
            moves: dict[tuple[str, str, str], list[int]] = {}
            tag_rows = conn.execute(_TAGS_SQL, (metadata,)).fetchall()
            tags = [("tag", NONE_KEY if tag is None else tag) for (tag,) in tag_rows] or [("tag", NONE_KEY)]
            source = NONE_KEY if price.source is None else price.source
            new_keys = {"status": "ok", "price_source": source}
            for dim, key in [*zip(_MOVED_DIMENSIONS, keys, strict=True), *tags]:
                _add_sums(moves, (ledger, dim, key), [-v for v in old])
                _add_sums(moves, (ledger, dim, new_keys.get(dim, key)), new)
            conn.executemany(_ADD_GROUP, [(*key, *split_sums(sums)) for key, sums in moves.items()])
            conn.executemany(
                "DELETE FROM groups WHERE ledger = ? AND dim = ? AND key = ? AND requests = 0", list(moves)
            )
            return self._db.charge(conn, [(ledger, key, cost_units, 0) for key in dict.fromkeys(charges)])

        with self._batcher.txn_lock:
            self._batcher.drain_locked()
            values = self._db.write(run)
            if values is None:
                return False
            self._batcher.set_committed(values)
            return True

    def reset(self, ledger: str) -> None:
        def run(conn: sqlite3.Connection) -> None:
            for table in ("events", "spans", "totals", "groups", "counters", "reservations"):
                conn.execute(f"DELETE FROM {table} WHERE ledger = ?", (ledger,))

        with self._batcher.txn_lock:
            self._batcher.forget(ledger)
            self._db.write(run)

    def set_meta(self, ledger: str, key: str, value: str) -> None:
        with self._batcher.txn_lock:
            self._db.write(
                lambda conn: conn.execute(
                    "INSERT INTO meta (ledger, key, value) VALUES (?, ?, ?)"
                    " ON CONFLICT (ledger, key) DO UPDATE SET value = excluded.value",
                    (ledger, key, value),
                )
            )

    def get_meta(self, ledger: str, key: str) -> str | None:
        with self._batcher.txn_lock:
            rows = self._db.read("SELECT value FROM meta WHERE ledger = ? AND key = ?", (ledger, key))
        return rows[0][0] if rows else None

    def flush(self, timeout: float | None = None) -> bool:
        return self._batcher.flush(timeout)

    def close(self) -> None:
        """Write what is queued and close the file.

        Raises:
            StoreError: when the queued events could not be written (they are lost).
        """
        if self._finalizer.detach() is None:
            return
        try:
            self._batcher.close()
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(f"sqlite store {self.path}: close failed: {exc}") from exc
        finally:
            self._db.close()

    # -- reads --------------------------------------------------------------------------------------------
    def counters(self, ledger: str, keys: Sequence[str]) -> dict[str, tuple[int, int, int]]:
        keys = list(dict.fromkeys(keys))
        with self._batcher.txn_lock:
            committed = self._db.fetch_counters(ledger, keys)
            held = self._db.reserved(ledger, keys, self._batcher.queued_drops(ledger))
            queued = self._batcher.queued_charges(ledger, keys)
        out: dict[str, tuple[int, int, int]] = {}
        for key in keys:
            units, tokens = committed[key]
            q_units, q_tokens = queued[key]
            out[key] = (units + q_units, tokens + q_tokens, held.get(key, (0, 0))[0])
        return out

    def totals(self, ledger: str) -> Totals:
        with self._batcher.txn_lock:
            rows = self._db.read(f"SELECT {_GROUP_COLUMNS} FROM totals WHERE ledger = ?", (ledger,))
            queued = self._batcher.queued_totals(ledger)
        committed = join_sums(rows[0]) if rows else [0] * len(queued)
        return Totals.from_sums([a + b for a, b in zip(committed, queued, strict=True)])

    def aggregate(self, ledger: str, by: str, since: float | None = None, until: float | None = None) -> list[Group]:
        if since is None and until is None and by in DIMENSIONS:
            with self._batcher.txn_lock:
                self._batcher.drain_locked()
                rows = self._db.groups(ledger, by)
            if rows is not None:
                return self._groups(rows)
        with self._batcher.txn_lock:
            self._batcher.drain_locked()
            where, params = self._where(ledger, since, until, None)
            if by == "tag":
                sql = (
                    f"SELECT COALESCE(t.k, '{NONE_KEY}') AS g, {_SUMS_SQL} FROM events AS e LEFT JOIN ("
                    "SELECT DISTINCT e.seq AS seq, CAST(j.value AS TEXT) AS k FROM events AS e,"
                    f" json_each(e.metadata, '$.tags') AS j {where} AND json_type(e.metadata, '$.tags') = 'array'"
                    f") AS t ON t.seq = e.seq {where} GROUP BY g"
                )
                params = [*params, *params]
            elif by in _GROUP_SQL:
                sql = f"SELECT {_GROUP_SQL[by]} AS g, {_SUMS_SQL} FROM events AS e {where} GROUP BY g"
            else:
                group = f"COALESCE({_METADATA_GROUP}, '{NONE_KEY}')"
                sql = f"SELECT {group} AS g, {_SUMS_SQL} FROM events AS e {where} GROUP BY g"
                params = [by, *params]
            rows = self._db.read(sql, params)
        return self._groups(rows)

    @staticmethod
    def _groups(rows: Iterable[Sequence[Any]]) -> list[Group]:
        return ranked_groups((str(row[0]), join_sums(row[1:])) for row in rows)

    def _where(self, ledger: str, since: float | None, until: float | None, model: str | None) -> tuple[str, list[Any]]:
        """Return the WHERE clause (alias ``e``) of a read, narrowed to the seq range of the spans it touches.

        With txn_lock held and the queue drained (every event this process recorded has its span).
        """
        spans = "SELECT min(first_seq), max(last_seq) FROM spans WHERE ledger = ?"
        clauses = ["e.ledger = ?"]
        params: list[Any] = [ledger]
        if since is not None:
            spans += " AND max_ts >= ?"
            clauses.append("e.ts >= ?")
            params.append(since)
        if until is not None:
            spans += " AND min_ts < ?"
            clauses.append("e.ts < ?")
            params.append(until)
        ((first, last, covered, newest),) = self._db.read(spans.replace(" FROM spans", _NEWEST, 1), params)
        if newest > covered:  # events an older tokencost wrote since the last span: scan them too
            first, last = covered + 1 if first is None else min(first, covered + 1), newest
        clauses.insert(0, "e.seq BETWEEN ? AND ?")
        params[:0] = [0, -1] if first is None else [first, last]
        if model is not None:
            clauses.append("e.model = ?")
            params.append(model)
        return "WHERE " + " AND ".join(clauses), params

    def events(
        self,
        ledger: str,
        since: float | None = None,
        until: float | None = None,
        model: str | None = None,
        limit: int | None = None,
    ) -> list[Event]:
        with self._batcher.txn_lock:
            self._batcher.drain_locked()
            where, params = self._where(ledger, since, until, model)
            sql = f"SELECT {_EVENT_COLUMNS} FROM events AS e LEFT JOIN prices AS p ON p.id = e.price_id {where}"
            if limit is not None:
                sql += " ORDER BY e.seq DESC LIMIT ?"
                params.append(max(limit, 0))
            else:
                sql += " ORDER BY e.seq"
            rows = self._db.read(sql, params)
        if limit is not None:
            rows.reverse()
        return [_decode_row(row) for row in rows]

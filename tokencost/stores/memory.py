"""``MemoryStore``: the ledger in this process's memory, compact enough for millions of events.

Events are kept as packed rows of 72 bytes in chunks of 1,024, with the repeated parts (model, provider, price,
metadata, status, call id prefix) interned once as a "kind". Each kind keeps sums (requests, cost, tokens...),
brought up to date on the first read after writes by summing the new rows column by column (C loops, not Python
ones): ``record()`` only appends, and totals and breakdowns by model, provider or metadata cost a pass over kinds.
"""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from itertools import groupby
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from tokencost.events import Event
from tokencost.pricing import Price
from tokencost.stores.base import (
    MAX_EVENT_UNITS,
    Check,
    Group,
    Store,
    Totals,
    first_misfit,
    plausible_event,
)
from tokencost.stores.grouping import (
    add_sums,
    day_key,
    group_keys,
    in_window,
    ranked_groups,
    repriced_sums,
    unpriced_sums,
)
from tokencost.usage import Usage

if TYPE_CHECKING:
    from tokencost.stores.reservation import Reservation

__all__ = ["MemoryStore"]

_UNPRICED = -1  # cost value of an unpriced event
_NO_EXTRA = (0, 0, 0, 0, 0, None, None, 0)
# Sums of a kind: requests, cost, unpriced, saved, then the five main token buckets.
_N_SUMS = 9
# An event's row: timestamp, kind, the number ending its call id (0: the id is in other_ids), then cost (-1 when
# unpriced), saved, input, cache_read (text and audio: the audio part is in ``extra``), cache_write (both TTLs: the
# 1-hour part is in ``extra``), output, reasoning.
# Packing a row in place is three times as
# fast as appending each value to an array.
_ROW = struct.Struct("=d2I7q")
_ROW_BYTES = _ROW.size
_PACK_ROW = _ROW.pack_into  # bound once: record() is the hot path
_SLOTS = _ROW_BYTES // 8  # int64 slots a row takes
_COST_SLOT = 2  # the slot of the cost; the six after it hold saved and the five token buckets
# Rows are written into chunks allocated whole and never resized: no copies as a ledger grows, and the process's
# memory grows by the rows and nothing else (one growing array left freed copies behind: 99 MB of RSS for 72 MB).
_CHUNK_SHIFT = 10
_CHUNK_ROWS = 1 << _CHUNK_SHIFT
_CHUNK_BYTES = _CHUNK_ROWS * _ROW_BYTES


def _metadata_key(metadata: Mapping[str, Any]) -> Any:
    """Return a key telling ``metadata`` apart from any other: its ``repr``.

    Unlike ``==``, a repr tells ``0``, ``False`` and ``0.0`` apart, and a list from a tuple; it is exact for plain
    data, which metadata is. (Objects that print alike may share the first one's metadata.) The same metadata in
    another key order only makes a second kind.
    """
    if not metadata:
        return ()
    try:
        return repr(metadata)
    except Exception:  # a value that cannot print: a kind of its own
        return object()


class _Ledger:
    def __init__(self) -> None:
        # (model, provider, price, price_source, metadata, status, reason, call id prefix or None)
        self.kinds: list[tuple[Any, ...]] = []
        self.kind_index: dict[Any, int] = {}
        self.kind_sums: list[list[int]] = []  # the sums of the events before ``folded``
        self.folded = 0
        self.chunks: list[bytearray] = []
        self.chunk = bytearray()  # the chunk rows are written to, at ``offset``
        self.offset = 0
        self.count = 0
        # index -> (audio_in, audio_out, image, cache_write_1h, web_search_requests, service_tier, inference_geo,
        # cache_read_audio) when any is set
        self.extra: dict[int, tuple[int, int, int, int, int, str | None, str | None, int]] = {}
        # A call id ending in a number ("t3f2a-17", as track() makes them) is kept as its kind's prefix and the
        # number: 4 bytes an event instead of a string. Other ids (litellm's UUIDs) are kept here.
        self.other_ids: dict[int, str] = {}
        self.pending_ids: dict[str, int] = {}  # call id -> index, for events a later price may reprice
        self.breakdowns: dict[int, Mapping[str, int]] = {}
        self.counters: dict[str, list[int]] = {}  # key -> [units, tokens]
        # id -> (expiry, units, tokens, keys, created), times by the store's clock
        self.reservations: dict[str, tuple[float, int, int, tuple[str, ...], float]] = {}

    def new_kind(self, key: tuple[Any, ...], kind: tuple[Any, ...]) -> int:
        """Intern ``kind`` under ``key``; return its number."""
        number = self.kind_index[key] = len(self.kinds)
        self.kinds.append(kind)
        self.kind_sums.append([0] * _N_SUMS)
        return number

    def fold(self) -> None:
        """Add the events recorded since the last fold to their kinds' sums."""
        start, end = self.folded, self.count
        if start == end:
            return
        kinds: list[int] = []
        columns: list[list[int]] = [[] for _ in range(_COST_SLOT, _SLOTS)]  # cost, saved, five token buckets
        index = start
        while index < end:
            chunk = self.chunks[index >> _CHUNK_SHIFT]
            low = index & (_CHUNK_ROWS - 1)
            high = min(_CHUNK_ROWS, low + end - index)
            with memoryview(chunk) as octets, octets.cast("q") as slots, octets.cast("I") as halves:
                kinds += halves[low * 2 * _SLOTS + 2 : high * 2 * _SLOTS : 2 * _SLOTS].tolist()
                for column, slot in zip(columns, range(_COST_SLOT, _SLOTS), strict=True):
                    column += slots[low * _SLOTS + slot : high * _SLOTS : _SLOTS].tolist()
            index += high - low
        parts: list[tuple[int, list[Any]]]
        if kinds.count(kinds[0]) == len(kinds):
            parts = [(kinds[0], columns)]
        else:
            parts = []
            order = sorted(range(len(kinds)), key=kinds.__getitem__)
            for kind, group in groupby(order, kinds.__getitem__):
                picked = list(group)
                if len(picked) == 1:
                    parts.append((kind, [(column[picked[0]],) for column in columns]))
                else:
                    pick = itemgetter(*picked)
                    parts.append((kind, [pick(column) for column in columns]))
        for kind, (costs, saved, *tokens) in parts:
            unpriced = costs.count(_UNPRICED)
            sums = self.kind_sums[kind]
            sums[0] += len(costs)
            sums[1] += sum(costs) + unpriced  # each unpriced event added -1
            sums[2] += unpriced
            sums[3] += sum(saved)
            for i, column in enumerate(tokens, 4):
                sums[i] += sum(column)
        self.folded = end

    def row(self, index: int) -> tuple[Any, ...]:
        """Return an event's row: timestamp, kind, call id number, cost, saved, the five token buckets."""
        return _ROW.unpack_from(self.chunks[index >> _CHUNK_SHIFT], (index & (_CHUNK_ROWS - 1)) * _ROW_BYTES)

    def iter_rows(self) -> Iterator[tuple[Any, ...]]:
        """Yield every event's row, oldest first."""
        for number, chunk in enumerate(self.chunks):
            rows = min(_CHUNK_ROWS, self.count - (number << _CHUNK_SHIFT))
            if rows > 0:
                yield from _ROW.iter_unpack(memoryview(chunk)[: rows * _ROW_BYTES])

    def usage(self, index: int, row: tuple[Any, ...]) -> Usage:
        audio_in, audio_out, image, write_1h, searches, tier, geo, read_audio = self.extra.get(index, _NO_EXTRA)
        input_, cache_read, cache_write, output, reasoning = row[5:]
        return Usage(
            input_, cache_read - read_audio, cache_write - write_1h, output, reasoning, audio_in, audio_out, image,
            write_1h, read_audio, searches, tier, geo,
        )  # fmt: skip


class MemoryStore(Store):
    """The ledger in memory: one process, gone at exit. Thread-safe.

    Args:
        url: ``memory://``.
        timeout: accepted for the same signature as other stores (nothing here waits).
        clock: seconds since the epoch, for reservation times (default ``time.time``).
    """

    scheme = "memory"
    # Nothing here talks to a backend, so no method needs wrapping into StoreError (and record() is hot).
    WRAPPED_METHODS = ()

    def __init__(
        self, url: str = "memory://", *, timeout: float | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(url)
        self._clock = clock
        # Guards _ledgers and everything inside them.
        self._lock = threading.Lock()
        self._ledgers: dict[str, _Ledger] = {}
        self._meta: dict[tuple[str, str], str] = {}

    def _ledger(self, name: str) -> _Ledger:
        ledger = self._ledgers.get(name)
        if ledger is None:
            ledger = self._ledgers[name] = _Ledger()
        return ledger

    # -- writes -------------------------------------------------------------------------------------------
    def record(
        self, ledger: str, event: Event, charges: Sequence[str] = (), reservation: str | None = None
    ) -> dict[str, tuple[int, int]]:
        event = plausible_event(event)  # an amount the row cannot hold is recorded unpriced, never dropped
        usage = event.usage
        cost = event.cost_units
        metadata = event.metadata
        call_id = event.call_id
        head: str | None
        head, _, tail = call_id.rpartition("-")
        # A number that prints back the same (no sign, no leading zero, ASCII digits) and fits the row.
        if head and len(tail) < 10 and tail.isdecimal() and tail.isascii() and tail[0] != "0":
            number = int(tail)
        else:
            head, number = None, 0
        kind_key = (
            event.model,
            event.provider,
            id(event.price),  # the kind keeps the price alive, so its id is not reused (and id() is faster than hash)
            event.price_source,
            _metadata_key(metadata) if metadata else (),
            event.status,
            event.reason,
            head,
        )
        with self._lock:
            led = self._ledgers.get(ledger) or self._ledger(ledger)
            kind = led.kind_index.get(kind_key)
            if kind is None:
                kind = led.new_kind(
                    kind_key,
                    (event.model, event.provider, event.price, event.price_source, dict(metadata), event.status,
                     event.reason, head),
                )  # fmt: skip
            offset = led.offset
            if not offset < len(led.chunk):
                led.chunk = bytearray(_CHUNK_BYTES)
                led.chunks.append(led.chunk)
                offset = 0
            # A value out of range raises here, before the row counts: the next event writes over what was packed.
            _PACK_ROW(
                led.chunk,
                offset,
                event.timestamp,
                kind,
                number,
                _UNPRICED if cost is None else cost,
                event.saved_units,
                usage.input,
                usage.cache_read + usage.cache_read_audio,
                usage.cache_write + usage.cache_write_1h,
                usage.output,
                usage.reasoning,
            )
            led.offset = offset + _ROW_BYTES
            index = led.count
            led.count = index + 1
            if not number:
                led.other_ids[index] = call_id
            if (
                usage.audio_in
                or usage.audio_out
                or usage.image
                or usage.cache_write_1h
                or usage.cache_read_audio
                or usage.web_search_requests
                or usage.service_tier is not None
                or usage.inference_geo is not None
            ):
                led.extra[index] = (
                    usage.audio_in,
                    usage.audio_out,
                    usage.image,
                    usage.cache_write_1h,
                    usage.web_search_requests,
                    usage.service_tier,
                    usage.inference_geo,
                    usage.cache_read_audio,
                )
            if cost is None:
                led.pending_ids[call_id] = index
            if event.breakdown is not None:
                led.breakdowns[index] = event.breakdown
            if reservation is not None:
                led.reservations.pop(reservation, None)
            if not charges:
                return {}
            out: dict[str, tuple[int, int]] = {}
            tokens = usage.total_tokens
            for key in charges:
                counter = led.counters.get(key)
                if counter is None:
                    counter = led.counters[key] = [0, 0]
                if cost is not None:
                    counter[0] += cost
                counter[1] += tokens
                out[key] = (counter[0], counter[1])
            return out

    def reserve(
        self, ledger: str, reservation: str, checks: Sequence[Check], cost_units: int, tokens: int, ttl: float
    ) -> Check | None:
        now = self._clock()
        with self._lock:
            led = self._ledger(ledger)
            misfit = first_misfit(checks, led.counters, self._reserved(led, now), cost_units, tokens)
            if misfit is not None:
                return misfit
            keys = tuple(dict.fromkeys(c.key for c in checks))  # a counter checked twice is held once
            led.reservations[reservation] = (now + ttl, cost_units, tokens, keys, now)
            return None

    @staticmethod
    def _reserved(led: _Ledger, now: float) -> dict[str, tuple[int, int]]:
        held: dict[str, tuple[int, int]] = {}
        for rid, (expiry, units, tokens, keys, _) in list(led.reservations.items()):
            if expiry < now:
                del led.reservations[rid]
                continue
            for key in keys:
                u, t = held.get(key, (0, 0))
                held[key] = (u + units, t + tokens)
        return held

    def release(self, ledger: str, reservation: str) -> None:
        with self._lock:
            self._ledger(ledger).reservations.pop(reservation, None)

    def reservations(self, ledger: str) -> list[Reservation]:
        from tokencost.stores.reservation import Reservation  # built on first listing

        with self._lock:
            led = self._ledger(ledger)
            self._reserved(led, self._clock())  # drops the expired ones
            out = [
                Reservation(rid, keys, units, tokens, created, expiry)
                for rid, (expiry, units, tokens, keys, created) in led.reservations.items()
            ]
        out.sort(key=lambda r: (r.created, r.id))
        return out

    def release_stale(self, ledger: str, older_than: float) -> int:
        with self._lock:
            led = self._ledger(ledger)
            now = self._clock()
            self._reserved(led, now)
            stale = [rid for rid, held in led.reservations.items() if held[4] < now - older_than]
            for rid in stale:
                del led.reservations[rid]
            return len(stale)

    def counters(self, ledger: str, keys: Sequence[str]) -> dict[str, tuple[int, int, int]]:
        with self._lock:
            led = self._ledger(ledger)
            reserved = self._reserved(led, self._clock()) if led.reservations else {}
            out = {}
            for key in keys:
                units, tokens = led.counters.get(key, (0, 0))
                out[key] = (units, tokens, reserved.get(key, (0, 0))[0])
            return out

    def update_cost(
        self, ledger: str, call_id: str, cost_units: int, price: Price, charges: Sequence[str] = ()
    ) -> bool:
        if not 0 <= cost_units <= MAX_EVENT_UNITS:
            return False  # an amount no event can have is never written as money
        with self._lock:
            led = self._ledger(ledger)
            index = led.pending_ids.get(call_id)
            if index is None:
                return False
            row = led.row(index)
            ts, old_kind, number, cost, old_saved, *tokens = row
            if cost != _UNPRICED:
                return False
            del led.pending_ids[call_id]
            led.fold()  # the event's old kind has counted it: move it to its new kind's sums
            model, provider, _, _, metadata, _, _, prefix = led.kinds[old_kind]
            kind_key = (model, provider, id(price), price.source, _metadata_key(metadata), "ok", None, prefix)
            kind = led.kind_index.get(kind_key)
            if kind is None:
                kind = led.new_kind(kind_key, (model, provider, price, price.source, metadata, "ok", None, prefix))
            saved = price.saved_units(led.usage(index, row))
            # The event leaves its old kind's sums and joins its new kind's.
            old, new = led.kind_sums[old_kind], led.kind_sums[kind]
            for i, value in enumerate(unpriced_sums(old_saved, tokens)):
                old[i] -= value
            for i, value in enumerate(repriced_sums(cost_units, saved, tokens)):
                new[i] += value
            _PACK_ROW(
                led.chunks[index >> _CHUNK_SHIFT],
                (index & (_CHUNK_ROWS - 1)) * _ROW_BYTES,
                ts, kind, number, cost_units, saved, *tokens,
            )  # fmt: skip
            for key in charges:
                counter = led.counters.setdefault(key, [0, 0])
                counter[0] += cost_units
            return True

    def reset(self, ledger: str) -> None:
        with self._lock:
            self._ledgers.pop(ledger, None)

    def set_meta(self, ledger: str, key: str, value: str) -> None:
        with self._lock:
            self._meta[ledger, key] = value

    def get_meta(self, ledger: str, key: str) -> str | None:
        with self._lock:
            return self._meta.get((ledger, key))

    # -- reads --------------------------------------------------------------------------------------------
    def totals(self, ledger: str) -> Totals:
        with self._lock:
            led = self._ledger(ledger)
            led.fold()
            return Totals.from_sums([sum(column) for column in zip(*led.kind_sums, strict=True)] or [0] * _N_SUMS)

    def aggregate(self, ledger: str, by: str, since: float | None = None, until: float | None = None) -> list[Group]:
        groups: dict[str, list[int]] = {}
        with self._lock:
            led = self._ledger(ledger)
            if since is None and until is None and by != "day":
                led.fold()
                for kind, sums in zip(led.kinds, led.kind_sums, strict=True):
                    for key in _group_keys(kind, by):
                        add_sums(groups, key, sums)
            else:
                for ts, kind, _, cost, *rest in led.iter_rows():  # rest: saved, five token buckets
                    if not in_window(ts, since, until):
                        continue
                    keys = [day_key(ts)] if by == "day" else _group_keys(led.kinds[kind], by)
                    values = (1, 0 if cost == _UNPRICED else cost, 1 if cost == _UNPRICED else 0, *rest)
                    for key in keys:
                        add_sums(groups, key, values)
        return ranked_groups(groups.items())

    def events(
        self,
        ledger: str,
        since: float | None = None,
        until: float | None = None,
        model: str | None = None,
        limit: int | None = None,
    ) -> list[Event]:
        if limit is not None and limit <= 0:
            return []
        with self._lock:
            led = self._ledger(ledger)
            picked: list[int] = []
            indexes = range(led.count)
            for index in reversed(indexes) if limit is not None else indexes:
                ts, kind = led.row(index)[:2]
                if not in_window(ts, since, until):
                    continue
                if model is not None and led.kinds[kind][0] != model:
                    continue
                picked.append(index)
                if limit is not None and len(picked) >= limit:
                    break
            if limit is not None:
                picked.reverse()
            return [self._event(led, index) for index in picked]

    @staticmethod
    def _event(led: _Ledger, index: int) -> Event:
        row = led.row(index)
        ts, kind, number, cost, saved = row[:5]
        model, provider, price, source, metadata, status, reason, prefix = led.kinds[kind]
        return Event(
            call_id=f"{prefix}-{number}" if number else led.other_ids[index],
            timestamp=ts,
            model=model,
            provider=provider,
            usage=led.usage(index, row),
            cost_units=None if cost == _UNPRICED else cost,
            price_source=source,
            price=price,
            saved_units=saved,
            metadata=dict(metadata),
            status=status,
            reason=reason,
            breakdown=led.breakdowns.get(index),
        )


def _group_keys(kind: tuple[Any, ...], by: str) -> list[str]:
    model, provider, _, source, metadata, status, _, _ = kind
    return group_keys(by, model, provider, status, source, metadata)

"""``MemoryStore``: the ledger in this process's memory, compact enough for millions of events.

Events are kept in columns (``array``) with the repeated parts (model, provider, price, metadata, status)
interned once as a "kind", about 60 bytes an event. Each kind keeps running sums, so totals and breakdowns
by model, provider or metadata cost a pass over kinds, not events.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from array import array
from collections.abc import Mapping, Sequence
from typing import Any

from tokencost.events import Event
from tokencost.pricing import Price
from tokencost.stores.base import Check, Group, Store, Totals, group_keys
from tokencost.usage import Usage

__all__ = ["MemoryStore"]

_UNPRICED = -1  # cost column value of an unpriced event
# Running sums of a kind: requests, cost, unpriced, saved, then the five main token buckets.
_N_SUMS = 9


def _freeze(value: Any) -> Any:
    if not value:
        return ()
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


class _Ledger:
    def __init__(self) -> None:
        self.kinds: list[tuple[Any, ...]] = []  # (model, provider, price, price_source, metadata, status, reason)
        self.kind_index: dict[Any, int] = {}
        self.kind_sums: list[list[int]] = []
        self.kind_col = array("I")
        self.time_col = array("d")
        self.cost_col = array("q")
        self.token_cols = tuple(array("q") for _ in range(5))  # input, cache_read, cache_write, output, reasoning
        self.extra: dict[int, tuple[int, int, int]] = {}  # index -> (audio_in, audio_out, image) when non-zero
        # Call ids ending in a number ("t3f2a-17") are kept as an interned prefix and the number: 12 bytes an
        # event instead of a string; other ids (litellm's UUIDs) in a dict.
        self.id_prefixes: list[str] = []
        self.id_prefix_index: dict[str, int] = {}
        self.id_prefix_col = array("I")
        self.id_number_col = array("q")
        self.other_ids: dict[int, str] = {}
        self.saved_overrides: dict[int, int] = {}  # index -> saved units, where not derivable from the price
        self.pending_ids: dict[str, int] = {}  # call id -> index, for events a later price may reprice
        self.breakdowns: dict[int, Mapping[str, int]] = {}
        self.counters: dict[str, list[int]] = {}  # key -> [units, tokens]
        self.reservations: dict[
            str, tuple[float, int, int, tuple[str, ...]]
        ] = {}  # id -> (expiry, units, tokens, keys)


class MemoryStore(Store):
    """The ledger in memory: one process, gone at exit. Thread-safe."""

    scheme = "memory"
    # Nothing here talks to a backend, so no method needs wrapping into StoreError (and record() is hot).
    _WRAPPED = ()

    def __init__(self, url: str = "memory://") -> None:
        super().__init__(url)
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
        usage = event.usage
        cost = event.cost_units
        kind_key = (
            event.model,
            event.provider,
            event.price,
            event.price_source,
            _freeze(event.metadata),
            event.status,
            event.reason,
        )
        with self._lock:
            led = self._ledger(ledger)
            kind = led.kind_index.get(kind_key)
            if kind is None:
                kind = led.kind_index[kind_key] = len(led.kinds)
                led.kinds.append(
                    (
                        event.model,
                        event.provider,
                        event.price,
                        event.price_source,
                        dict(event.metadata),
                        event.status,
                        event.reason,
                    )
                )
                led.kind_sums.append([0] * _N_SUMS)
            index = len(led.kind_col)
            led.kind_col.append(kind)
            led.time_col.append(event.timestamp)
            led.cost_col.append(_UNPRICED if cost is None else cost)
            cols = led.token_cols
            cols[0].append(usage.input)
            cols[1].append(usage.cache_read)
            cols[2].append(usage.cache_write)
            cols[3].append(usage.output)
            cols[4].append(usage.reasoning)
            if usage.audio_in or usage.audio_out or usage.image:
                led.extra[index] = (usage.audio_in, usage.audio_out, usage.image)
            call_id = event.call_id
            head, _, tail = call_id.rpartition("-")
            if head and tail.isdigit() and tail[0] != "0" and len(tail) < 18:
                prefix = led.id_prefix_index.get(head)
                if prefix is None:
                    prefix = led.id_prefix_index[head] = len(led.id_prefixes)
                    led.id_prefixes.append(head)
                led.id_prefix_col.append(prefix)
                led.id_number_col.append(int(tail))
            else:
                led.id_prefix_col.append(0)
                led.id_number_col.append(-1)
                led.other_ids[index] = call_id
            if cost is None:
                led.pending_ids[call_id] = index
            if event.breakdown is not None:
                led.breakdowns[index] = event.breakdown
            sums = led.kind_sums[kind]
            sums[0] += 1
            if cost is None:
                sums[2] += 1
            else:
                sums[1] += cost
            saved = event.saved_units
            if (saved or usage.cache_read or event.status == "cache_hit") and saved != _saved(
                event.price, event.status, usage
            ):
                led.saved_overrides[index] = event.saved_units
            sums[3] += saved
            sums[4] += usage.input
            sums[5] += usage.cache_read
            sums[6] += usage.cache_write
            sums[7] += usage.output
            sums[8] += usage.reasoning
            if reservation is not None:
                led.reservations.pop(reservation, None)
            out: dict[str, tuple[int, int]] = {}
            tokens = usage.total_tokens if charges else 0
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
        now = time.monotonic()
        with self._lock:
            led = self._ledger(ledger)
            reserved = self._reserved(led, now)
            for check in checks:
                spent, used = led.counters.get(check.key, (0, 0))
                held_units, held_tokens = reserved.get(check.key, (0, 0))
                if check.limit_units is not None and spent + held_units + cost_units > check.limit_units:
                    return check
                if check.limit_tokens is not None and used + held_tokens + tokens > check.limit_tokens:
                    return check
            led.reservations[reservation] = (now + ttl, cost_units, tokens, tuple(c.key for c in checks))
            return None

    @staticmethod
    def _reserved(led: _Ledger, now: float) -> dict[str, tuple[int, int]]:
        held: dict[str, tuple[int, int]] = {}
        for rid, (expiry, units, tokens, keys) in list(led.reservations.items()):
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

    def counters(self, ledger: str, keys: Sequence[str]) -> dict[str, tuple[int, int, int]]:
        with self._lock:
            led = self._ledger(ledger)
            reserved = self._reserved(led, time.monotonic()) if led.reservations else {}
            out = {}
            for key in keys:
                units, tokens = led.counters.get(key, (0, 0))
                out[key] = (units, tokens, reserved.get(key, (0, 0))[0])
            return out

    def update_cost(
        self, ledger: str, call_id: str, cost_units: int, price: Price, charges: Sequence[str] = ()
    ) -> bool:
        with self._lock:
            led = self._ledger(ledger)
            index = led.pending_ids.get(call_id)
            if index is None or led.cost_col[index] != _UNPRICED:
                return False
            del led.pending_ids[call_id]
            old_saved = self._saved_at(led, index, led.kinds[led.kind_col[index]])
            led.saved_overrides.pop(index, None)
            old_kind = led.kind_col[index]
            model, provider, _, _, metadata, _, _ = led.kinds[old_kind]
            kind_key = (model, provider, price, price.source, _freeze(metadata), "ok", None)
            kind = led.kind_index.get(kind_key)
            if kind is None:
                kind = led.kind_index[kind_key] = len(led.kinds)
                led.kinds.append((model, provider, price, price.source, metadata, "ok", None))
                led.kind_sums.append([0] * _N_SUMS)
            usage = self._usage(led, index)
            saved = _saved(price, "ok", usage)
            old, new = led.kind_sums[old_kind], led.kind_sums[kind]
            old[3] -= old_saved
            for i, value in enumerate(
                (1, 0, 1, 0, usage.input, usage.cache_read, usage.cache_write, usage.output, usage.reasoning)
            ):
                old[i] -= value
                new[i] += value
            new[2] -= 1  # priced now: the new kind counts it as a priced request
            new[1] += cost_units
            new[3] += saved
            led.kind_col[index] = kind
            led.cost_col[index] = cost_units
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
            return Totals.from_sums([sum(column) for column in zip(*led.kind_sums, strict=True)] or [0] * _N_SUMS)

    def aggregate(self, ledger: str, by: str, since: float | None = None, until: float | None = None) -> list[Group]:
        groups: dict[str, list[int]] = {}
        with self._lock:
            led = self._ledger(ledger)
            if since is None and until is None and by != "day":
                for kind, sums in zip(led.kinds, led.kind_sums, strict=True):
                    for key in _group_keys(kind, by):
                        acc = groups.setdefault(key, [0] * _N_SUMS)
                        for i in range(_N_SUMS):
                            acc[i] += sums[i]
            else:
                for index in range(len(led.kind_col)):
                    ts = led.time_col[index]
                    if (since is not None and ts < since) or (until is not None and ts >= until):
                        continue
                    kind = led.kinds[led.kind_col[index]]
                    if by == "day":
                        keys = [dt.datetime.fromtimestamp(ts, dt.timezone.utc).date().isoformat()]
                    else:
                        keys = _group_keys(kind, by)
                    cost = led.cost_col[index]
                    row = (
                        1,
                        0 if cost == _UNPRICED else cost,
                        1 if cost == _UNPRICED else 0,
                        self._saved_at(led, index, kind),
                        *(col[index] for col in led.token_cols),
                    )
                    for key in keys:
                        acc = groups.setdefault(key, [0] * _N_SUMS)
                        for i in range(_N_SUMS):
                            acc[i] += row[i]
        result = [Group.of(key, sums) for key, sums in groups.items() if sums[0] > 0]
        result.sort(key=lambda g: (-g.cost_units, g.key))
        return result

    def _saved_at(self, led: _Ledger, index: int, kind: tuple[Any, ...]) -> int:
        saved = led.saved_overrides.get(index)
        return _saved(kind[2], kind[5], self._usage(led, index)) if saved is None else saved

    @staticmethod
    def _usage(led: _Ledger, index: int) -> Usage:
        audio_in, audio_out, image = led.extra.get(index, (0, 0, 0))
        cols = led.token_cols
        return Usage(
            cols[0][index],
            cols[1][index],
            cols[2][index],
            cols[3][index],
            cols[4][index],
            audio_in,
            audio_out,
            image,
        )

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
            indexes = range(len(led.kind_col))
            for index in reversed(indexes) if limit is not None else indexes:
                ts = led.time_col[index]
                if (since is not None and ts < since) or (until is not None and ts >= until):
                    continue
                if model is not None and led.kinds[led.kind_col[index]][0] != model:
                    continue
                picked.append(index)
                if limit is not None and len(picked) >= limit:
                    break
            if limit is not None:
                picked.reverse()
            return [self._event(led, index) for index in picked]

    def _event(self, led: _Ledger, index: int) -> Event:
        model, provider, price, source, metadata, status, reason = led.kinds[led.kind_col[index]]
        cost = led.cost_col[index]
        number = led.id_number_col[index]
        usage = self._usage(led, index)
        return Event(
            call_id=led.other_ids[index] if number < 0 else f"{led.id_prefixes[led.id_prefix_col[index]]}-{number}",
            timestamp=led.time_col[index],
            model=model,
            provider=provider,
            usage=usage,
            cost_units=None if cost == _UNPRICED else cost,
            price_source=source,
            price=price,
            saved_units=self._saved_at(led, index, led.kinds[led.kind_col[index]]),
            metadata=dict(metadata),
            status=status,
            reason=reason,
            breakdown=led.breakdowns.get(index),
        )


def _saved(price: Price | None, status: str, usage: Usage) -> int:
    """What an event saved, derived from its price (not stored: it would cost memory on every event)."""
    if price is None:
        return 0
    if status == "cache_hit":
        return price.cost_units(usage)
    return price.saved_units(usage) if usage.cache_read else 0


def _group_keys(kind: tuple[Any, ...], by: str) -> list[str]:
    model, provider, _, source, metadata, status, _ = kind
    return group_keys(by, model, provider, status, source, metadata)

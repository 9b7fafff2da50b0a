"""``ReferenceStore``: the ``Store`` contract in the plainest way, for the contract tests to compare stores with.

A list of events and a few dicts per ledger; every read works its answer out from the events again. No speed
tricks, no shared helpers of the real stores (it does not use ``tokencost.stores.grouping``): when a store and
this one disagree, the store is wrong (or the contract is).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tokencost.events import Event
from tokencost.pricing import Price
from tokencost.stores.base import (
    MAX_EVENT_UNITS,
    NONE_KEY,
    Check,
    Group,
    Reservation,
    Store,
    Totals,
    plausible_event,
)

__all__ = ["ReferenceStore"]


@dataclass
class _Held:
    keys: tuple[str, ...]
    units: int
    tokens: int
    created: float
    expires: float


@dataclass
class _Ledger:
    events: list[Event] = field(default_factory=list)
    counters: dict[str, list[int]] = field(default_factory=dict)  # key -> [units, tokens]
    held: dict[str, _Held] = field(default_factory=dict)  # reservation id -> what it holds


def _sums(events: Sequence[Event]) -> list[int]:
    """The ``Totals`` sums of ``events``, in field order."""
    return [
        len(events),
        sum(e.cost_units for e in events if e.cost_units is not None),
        sum(1 for e in events if e.cost_units is None),
        sum(e.saved_units for e in events),
        sum(e.usage.input for e in events),
        sum(e.usage.cache_read + e.usage.cache_read_audio for e in events),  # cache reads of text and audio
        sum(e.usage.cache_write + e.usage.cache_write_1h for e in events),  # cache writes of both TTLs
        sum(e.usage.output for e in events),
        sum(e.usage.reasoning for e in events),
    ]


def _groups_of(event: Event, by: str) -> list[str]:
    """The groups ``event`` falls in when grouped by ``by`` (``Store.aggregate``'s rules)."""
    if by == "model":
        return [event.model]
    if by == "provider":
        return [event.provider]
    if by == "status":
        return [event.status]
    if by == "price_source":
        return [event.price_source if event.price_source else NONE_KEY]
    if by == "day":
        return [dt.datetime.fromtimestamp(event.timestamp // 86400 * 86400, dt.timezone.utc).date().isoformat()]
    if by == "tag":
        tags = event.metadata.get("tags")
        if not isinstance(tags, (list, tuple)) or not tags:
            return [NONE_KEY]
        out: list[str] = []
        for tag in tags:
            if str(tag) not in out:
                out.append(str(tag))
        return out
    value = event.metadata.get(by)
    return [NONE_KEY if value is None else str(value)]


def _in(event: Event, since: float | None, until: float | None) -> bool:
    return (since is None or event.timestamp >= since) and (until is None or event.timestamp < until)


class ReferenceStore(Store):
    """Every ``Store`` method over plain lists and dicts (one process, not thread-safe)."""

    scheme = "reference"
    WRAPPED_METHODS = ()

    def __init__(self, url: str = "reference://", *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(url)
        self.clock = clock
        self.ledgers: dict[str, _Ledger] = {}
        self.meta: dict[tuple[str, str], str] = {}

    def _ledger(self, name: str) -> _Ledger:
        if name not in self.ledgers:
            self.ledgers[name] = _Ledger()
        return self.ledgers[name]

    def _live(self, led: _Ledger) -> dict[str, _Held]:
        """Drop the expired reservations; return the open ones."""
        now = self.clock()
        led.held = {rid: held for rid, held in led.held.items() if held.expires >= now}
        return led.held

    def _held_on(self, led: _Ledger, key: str) -> tuple[int, int]:
        units = tokens = 0
        for held in self._live(led).values():
            if key in held.keys:
                units += held.units
                tokens += held.tokens
        return units, tokens

    # -- writes -------------------------------------------------------------------------------------------
    def record(
        self, ledger: str, event: Event, charges: Sequence[str] = (), reservation: str | None = None
    ) -> dict[str, tuple[int, int]]:
        event = plausible_event(event)
        led = self._ledger(ledger)
        led.events.append(dataclasses.replace(event, metadata=dict(event.metadata)))
        if reservation is not None:
            led.held.pop(reservation, None)
        out = {}
        for key in charges:
            counter = led.counters.setdefault(key, [0, 0])
            if event.cost_units is not None:
                counter[0] += event.cost_units
            counter[1] += event.usage.total_tokens
            out[key] = (counter[0], counter[1])
        return out

    def reserve(
        self, ledger: str, reservation: str, checks: Sequence[Check], cost_units: int, tokens: int, ttl: float
    ) -> Check | None:
        led = self._ledger(ledger)
        for check in checks:
            units, used = led.counters.get(check.key, [0, 0])
            held_units, held_tokens = self._held_on(led, check.key)
            if check.limit_units is not None and units + held_units + cost_units > check.limit_units:
                return check
            if check.limit_tokens is not None and used + held_tokens + tokens > check.limit_tokens:
                return check
        keys: list[str] = []
        for check in checks:
            if check.key not in keys:
                keys.append(check.key)
        now = self.clock()
        led.held[reservation] = _Held(tuple(keys), cost_units, tokens, now, now + ttl)
        return None

    def release(self, ledger: str, reservation: str) -> None:
        self._ledger(ledger).held.pop(reservation, None)

    def reservations(self, ledger: str) -> list[Reservation]:
        live = self._live(self._ledger(ledger))
        out = [Reservation(rid, h.keys, h.units, h.tokens, h.created, h.expires) for rid, h in live.items()]
        return sorted(out, key=lambda r: (r.created, r.id))

    def release_stale(self, ledger: str, older_than: float) -> int:
        led = self._ledger(ledger)
        cutoff = self.clock() - older_than
        stale = [rid for rid, held in self._live(led).items() if held.created < cutoff]
        for rid in stale:
            del led.held[rid]
        return len(stale)

    def counters(self, ledger: str, keys: Sequence[str]) -> dict[str, tuple[int, int, int]]:
        led = self._ledger(ledger)
        out = {}
        for key in keys:
            units, tokens = led.counters.get(key, [0, 0])
            out[key] = (units, tokens, self._held_on(led, key)[0])
        return out

    def update_cost(
        self, ledger: str, call_id: str, cost_units: int, price: Price, charges: Sequence[str] = ()
    ) -> bool:
        if not 0 <= cost_units <= MAX_EVENT_UNITS:
            return False
        led = self._ledger(ledger)
        for index in reversed(range(len(led.events))):
            old = led.events[index]
            if old.call_id == call_id and old.cost_units is None:
                led.events[index] = dataclasses.replace(
                    old,
                    cost_units=cost_units,
                    price=price,
                    price_source=price.source,
                    saved_units=price.saved_units(old.usage) or old.saved_units,
                    status="ok",
                    reason=None,
                )
                for key in dict.fromkeys(charges):
                    led.counters.setdefault(key, [0, 0])[0] += cost_units
                return True
        return False

    def reset(self, ledger: str) -> None:
        self.ledgers.pop(ledger, None)

    def set_meta(self, ledger: str, key: str, value: str) -> None:
        self.meta[ledger, key] = value

    def get_meta(self, ledger: str, key: str) -> str | None:
        return self.meta.get((ledger, key))

    # -- reads --------------------------------------------------------------------------------------------
    def totals(self, ledger: str) -> Totals:
        return Totals(*_sums(self._ledger(ledger).events))

    def aggregate(self, ledger: str, by: str, since: float | None = None, until: float | None = None) -> list[Group]:
        members: dict[str, list[Event]] = {}
        for event in self._ledger(ledger).events:
            if _in(event, since, until):
                for key in _groups_of(event, by):
                    members.setdefault(key, []).append(event)
        groups = [Group(*_sums(events), key=key) for key, events in members.items()]  # type: ignore[misc, arg-type]
        return sorted(groups, key=lambda g: (-g.cost_units, g.key))

    def events(
        self,
        ledger: str,
        since: float | None = None,
        until: float | None = None,
        model: str | None = None,
        limit: int | None = None,
    ) -> list[Event]:
        picked = [e for e in self._ledger(ledger).events if _in(e, since, until) and model in (None, e.model)]
        if limit is not None:
            picked = picked[-limit:] if limit > 0 else []
        return picked

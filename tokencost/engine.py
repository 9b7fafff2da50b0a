"""The engine of one tracker: its options checked, its parts built over one ledger, and what they do together.

``CostTracker`` is the face users hold; it builds an ``Engine`` and delegates to it. The parts (internal: their
names may change) are the ``Ledger`` they share, the ``Recorder`` (prices and commits events), the ``Enforcer``
(admits or refuses calls) and ``LitellmCalls`` (litellm calls from set-up to their event); none reaches into
another. ``Tracking`` names what the adapters (the litellm glue, the SDK wrappers, the exit summary) use of a
tracker, so they depend on this module and not on ``tracker``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from tokencost.budgets import Budget, dump_budgets
from tokencost.enforcement import Admission, Enforcer
from tokencost.ledger import Ledger, OnceLog
from tokencost.litellm_calls import LitellmCalls
from tokencost.metadata import clean_metadata
from tokencost.money import parse_amount
from tokencost.pricing import PriceChain, PriceSource
from tokencost.pricing.genai_prices import GenaiPricesSource
from tokencost.pricing.litellm_map import LitellmMapSource
from tokencost.pricing.override import OverrideSource, load_prices
from tokencost.providers import provider_of
from tokencost.recording import Recorder
from tokencost.scoped import active_budgets
from tokencost.stores import Store, Totals, store_from_url
from tokencost.track_args import read_timestamp

if TYPE_CHECKING:
    from tokencost.events import Event
    from tokencost.typing import OnStoreError
    from tokencost.usage import Usage
    from tokencost.webhooks import Webhook

__all__ = ["Engine", "Tracking", "as_budgets", "price_sources"]

# flush() without a timeout waits at most this long for success events (litellm can drop them under load).
FLUSH_EVENTS_MAX_S = 30.0


def as_budgets(budget: object, budgets: Iterable[Budget]) -> list[Budget]:
    """The tracker-wide ``budget=`` (a ``Budget`` over everything) followed by the ``budgets=`` given."""
    out: list[Budget] = []
    limit = parse_amount(budget, "budget")
    if limit is not None:
        out.append(Budget(limit_usd=limit))
    for item in budgets:
        if not isinstance(item, Budget):
            raise TypeError(f"budgets must hold Budget objects, not {type(item).__name__}")
        out.append(item)
    return out


def price_sources(
    prices: str | os.PathLike[str] | Mapping[str, Any] | None,
    sources: Iterable[PriceSource],
    price_cache_dir: str | os.PathLike[str],
    linkup_key: str | None,
    clock: Callable[[], float] | None = None,
) -> list[PriceSource]:
    """The price chain's sources in order: ``prices=``, the caller's own ``sources=``, litellm's map,
    genai-prices (priced at ``clock``'s time, the call's), discovery."""
    own = list(sources)
    for source in own:
        if not isinstance(source, PriceSource):
            raise TypeError(
                f"sources must hold price sources (a name and lookup(model, provider)), not {type(source).__name__}"
            )
    overrides = load_prices(os.fspath(prices) if isinstance(prices, os.PathLike) else prices) if prices else {}
    chain: list[PriceSource] = [OverrideSource(overrides), *own, LitellmMapSource(), GenaiPricesSource(clock)]
    try:
        from tokencost.pricing.linkup import discovery_sources
    except ImportError:
        return chain
    chain.extend(discovery_sources(Path(price_cache_dir), linkup_key))
    return chain


def check_seconds(value: object, arg: str) -> float:
    """Return ``value`` as a positive number of seconds, or raise ``ValueError`` naming ``arg``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 10**9:
        raise ValueError(f"{arg} must be a positive number of seconds, got {value!r}")
    return float(value)


def check_alert_at(alert_at: Sequence[float]) -> tuple[float, ...]:
    """Return the alert fractions sorted, or raise ``ValueError`` for one that is not a fraction of a budget."""
    for fraction in alert_at:
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 10:
            raise ValueError(f"alert_at holds fractions of a budget such as 0.8, got {fraction!r}")
    return tuple(sorted(float(f) for f in alert_at))


def open_store(store: object, timeout: float | None, clock: Callable[[], float] | None) -> Store:
    """The ``Store`` a ``store=`` argument names (a URL or a ``Store``)."""
    if isinstance(store, str):
        # A clock given for tests also times the store's reservations; else Redis keeps its server's clock.
        options: dict[str, Any] = {"timeout": timeout} if clock is None else {"timeout": timeout, "clock": clock}
        return store_from_url(store, **options)
    if not isinstance(store, Store):
        raise TypeError(f"store must be a URL or a Store, not {type(store).__name__}")
    return store


class Engine:
    """The parts of one tracker, wired over one ledger, and the operations that span them."""

    def __init__(
        self,
        store: Store,
        name: str,
        budgets: list[Budget],
        clock: Callable[[], float],
        sources: Sequence[PriceSource],
        *,
        owner: object,
        on_crossed: Callable[[], None],
        alert_at: tuple[float, ...],
        on_alert: Callable[[str, float, Decimal, Decimal], None] | None,
        raise_on_budget: bool,
        alert_webhook: Webhook | None = None,
        on_store_error: OnStoreError,
        reservation_ttl: float,
        limit: Decimal | None,
        id_prefix: str,
    ) -> None:
        self.store = store
        self.name = name
        self.ledger = Ledger(store, name, budgets, clock, OnceLog())
        self.recorder = Recorder(
            self.ledger,
            PriceChain(sources),
            on_crossed,
            alert_at=alert_at,
            on_alert=on_alert,
            webhook=alert_webhook,
            owner=owner,
        )
        self.enforcer = Enforcer(
            self.ledger,
            self.recorder.lookup,
            raise_on_budget=raise_on_budget,
            on_store_error=on_store_error,
            reservation_ttl=reservation_ttl,
            limit=limit,
        )
        self.enforcer.owner = owner
        self.calls = LitellmCalls(self.ledger, self.recorder, self.enforcer)
        self.enforcer.await_returned = self.calls.await_returned  # a thread's earlier calls count first
        # Ids of events recorded outside litellm: a prefix and a counter, which the memory store keeps compactly.
        self.id_prefix = id_prefix
        self.sequence = itertools.count(1)
        self._last_totals: Totals | None = None
        if budgets:
            self.ledger.safe("set_meta", lambda: store.set_meta(name, "budgets", dump_budgets(budgets)))

    def record_usage(
        self,
        model: str,
        usage: Usage | None,
        *,
        provider: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        call_id: str | None = None,
        reason: str | None = None,
        status: str = "ok",
        admission: Any = None,
        timestamp: float | dt.datetime | None = None,
    ) -> Event:
        """Price and record normalized usage (``None`` records the call unpriced with ``reason``); ``timestamp``
        is the call's time (epoch seconds or a ``datetime``, default now), for dated prices and the event."""
        event = self.recorder.price_event(
            call_id or f"{self.id_prefix}-{next(self.sequence)}",
            model,
            provider or provider_of(model),
            usage,
            clean_metadata(metadata) if metadata else {},
            status=status,
            reason=reason,
            cache_hit=status == "cache_hit",
            timestamp=None if timestamp is None else read_timestamp(timestamp),
        )
        return self.recorder.commit(event, active_budgets(), admission if isinstance(admission, Admission) else None)

    def totals(self) -> Totals:
        """The ledger's running sums, current at return; the last ones read while the store is down."""
        self.calls.await_returned()
        totals = self.ledger.safe("totals", lambda: self.store.totals(self.name))
        if totals is not None:
            self._last_totals = totals
            return totals  # type: ignore[no-any-return]
        return self._last_totals if self._last_totals is not None else Totals()

    def wait_for_prices(self, timeout: float | None) -> None:
        """Let price lookups running for recorded calls land (they reprice their events)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for source in self.recorder.prices.sources:
            wait = getattr(source, "wait", None)
            if callable(wait):
                wait(None if deadline is None else max(0.0, deadline - time.monotonic()))

    def flush(self, timeout: float | None) -> bool:
        """Wait for the calls that returned to be recorded and the store to make them durable (litellm's
        pool already drained); False when ``timeout`` ran out first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self.wait_for_prices(timeout)
        # Without a timeout, a success event litellm dropped (its pool drops past 10,000 pending) must not hang us.
        events_deadline = deadline if deadline is not None else time.monotonic() + FLUSH_EVENTS_MAX_S
        if not self.calls.wait_returned(events_deadline):
            if deadline is not None:
                return False
            self.ledger.warn("late-events", "tokencost: litellm's success events are late; totals may lag")
        store_timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        return bool(self.ledger.safe("flush", lambda: self.store.flush(store_timeout), default=False))

    @property
    def closed(self) -> bool:
        """Whether the engine was closed: it records and refuses nothing more."""
        return self.calls.closed

    def stop(self) -> None:
        """Record and refuse nothing more (the first step of closing)."""
        self.calls.closed = self.enforcer.closed = True

    def close(self) -> None:
        """Close the price sources, flush and close the store, deliver queued alerts (after ``stop()``)."""
        for source in self.recorder.prices.sources:
            close = getattr(source, "close", None)
            if callable(close):
                close()
        self.ledger.safe("flush", lambda: self.store.flush(5.0))
        self.ledger.safe("close", self.store.close)
        if self.recorder.webhook is not None:
            from tokencost.webhooks import CLOSE_TIMEOUT_S  # only a tracker with alert_webhook= imports webhooks

            self.finish_alerts(CLOSE_TIMEOUT_S)

    def finish_alerts(self, timeout: float) -> None:
        """Give the alert webhook up to ``timeout`` seconds to deliver what is queued, then stop its thread."""
        webhook = self.recorder.webhook
        if webhook is not None:
            try:
                webhook.close(timeout)
            except Exception as exc:
                self.ledger.bug("alert webhook", exc)


class Tracking(Protocol):
    """What the adapters (the litellm glue, the SDK wrappers, the exit summary) use of a tracker.

    ``CostTracker`` is the implementation; the adapters name this protocol so that none of them imports
    ``tracker``, which imports them.
    """

    name: str
    print_summary: bool
    ledger: Ledger
    recorder: Recorder
    enforcer: Enforcer
    calls: LitellmCalls
    engine: Engine

    @property
    def store(self) -> Store: ...

    @property
    def prices(self) -> PriceChain: ...

    @property
    def closed(self) -> bool: ...

    @property
    def budget(self) -> Decimal | None: ...

    @property
    def raise_on_budget(self) -> bool: ...

    @property
    def total_cost(self) -> Decimal: ...

    @property
    def request_count(self) -> int: ...

    def summary(self) -> Any: ...

    def close(self) -> None: ...

    def record_usage(
        self,
        model: str,
        usage: Usage | None,
        *,
        provider: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        call_id: str | None = None,
        reason: str | None = None,
        status: str = "ok",
        admission: Any = None,
        timestamp: float | dt.datetime | None = None,
    ) -> Event: ...

"""``CostTracker``: the litellm callback that turns every call into a priced event, and refuses spent budgets.

How it meets litellm (DESIGN.md section 3 has the measured facts behind each choice):

* ``log_pre_api_call`` runs in the caller's thread before the request: the call is registered as pending with
  the caller's ``scope()`` metadata and ``budget()`` blocks (contextvars are only readable there).
* Sync success events run on litellm's thread pool *after* ``completion()`` returns. A thread reading a view
  cannot be inside a call at the same time, so views wait for the pending calls the reading thread started:
  totals are current at return, without waiting on other threads' calls still in flight.
* Async non-stream calls are recorded in ``async_post_call_success_deployment_hook``, in the caller's task before
  ``await`` returns; litellm's own async success events are lost when the loop closes, so they only fill in.
* Both success hooks fire for some calls: events are deduplicated by ``litellm_call_id``.
* Refusal happens before the request: ``async_pre_call_deployment_hook`` (async entry points, Router), a
  ``litellm.pre_call_rules`` entry (sync completion, streams, Router), and ``litellm.max_budget`` (sync embedding).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import logging
import os
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar, cast

import litellm
from litellm.integrations.custom_logger import CustomLogger

from tokencost._budget_error import StoreUnavailableError
from tokencost._litellm_glue import (
    drain_litellm_pool,
    register,
    sync_litellm_budget,
    unregister,
    watch_stream,
)
from tokencost.breaker import CircuitBreaker
from tokencost.budgets import _ACTIVE as _active_var
from tokencost.budgets import _SCOPE as _scope_var
from tokencost.budgets import Budget, BudgetLine, ScopedBudget, active_budgets, budget_lines, current_scope
from tokencost.budgets import dump_budgets as _dump_budgets
from tokencost.errors import BudgetExceededError
from tokencost.events import Event
from tokencost.metadata import call_metadata, clean_metadata
from tokencost.money import from_units, parse_amount, to_units
from tokencost.pricing import Price, PriceChain, PriceSource
from tokencost.pricing.litellm_map import LitellmMapSource, model_info
from tokencost.pricing.override import OverrideSource, load_prices
from tokencost.stores import Check, Store, store_from_url
from tokencost.stores.base import plausible_event
from tokencost.usage import Usage, UsageError, from_litellm_usage
from tokencost.worst_case import WorstCase, WorstCaseRequest, count_prompt

__all__ = ["CostTracker"]

_C = TypeVar("_C")
_T = TypeVar("_T")

log = logging.getLogger("tokencost")

# How long a view waits for the success events of calls the reading thread has made (they fire on litellm's
# pool a few ms after return). Past it the view answers with what is recorded and logs once.
_RETURN_WAIT_S = 5.0
# flush() without a timeout waits at most this long for success events (litellm can drop them under load).
_FLUSH_EVENTS_MAX_S = 30.0
# Call ids remembered for de-duplication: both success hooks fire within milliseconds of each other.
_SEEN_MAX = 100_000
# A reservation of a strict budget expires after this long without settling (a crashed worker).
_RESERVATION_TTL_S = 900.0
# How long a strict budget holds the worst case of a call whose cost is unknown: past any budget window.
_UNKNOWN_HOLD_S = 10 * 366 * 86_400.0
# The bound on one store round trip before on_store_error applies (admission reads a counter or two).
_STORE_TIMEOUT_S = 0.5


@dataclass(eq=False)
class _Pending:
    """A call seen before its request went out, waiting for its success or failure event."""

    thread: int
    stream: bool
    model: str
    scope: Mapping[str, Any]
    budgets: tuple[ScopedBudget, ...]
    messages: Any = None
    ended: bool = False


@dataclass(eq=False)
class _Admission:
    """A call let through the budgets; ``reservation`` is held on the store under strict budgets."""

    reservation: str | None = None
    created: float = field(default_factory=time.monotonic)
    worst_units: int | None = None  # what the reservation holds (kept when the call's cost is unknown)
    worst_tokens: int = 0
    keys: tuple[str, ...] = ()  # the strict budgets' counters it is held on


class _OnceLog:
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
        with self._lock:
            self._seen.discard(key)


def _as_budgets(budget: object, budgets: Iterable[Budget]) -> list[Budget]:
    out: list[Budget] = []
    limit = parse_amount(budget, "budget")
    if limit is not None:
        out.append(Budget(limit_usd=limit))
    for item in budgets:
        if not isinstance(item, Budget):
            raise TypeError(f"budgets must hold Budget objects, not {type(item).__name__}")
        out.append(item)
    return out


def _tighter(a: Budget, b: Budget) -> Budget:
    """Return one budget holding the tighter limits of two that share a counter (same scope and window)."""

    def low(x: Any, y: Any) -> Any:
        return y if x is None else x if y is None else min(x, y)

    return replace(
        a,
        limit_usd=low(a.limit_usd, b.limit_usd),
        max_tokens=low(a.max_tokens, b.max_tokens),
        strict=a.strict or b.strict,
        unpriced="refuse" if "refuse" in (a.unpriced, b.unpriced) else "allow",
    )


def _get(obj: Any, key: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


class CostTracker(CustomLogger):  # type: ignore[misc]
    """Price every litellm call exactly, keep the ledger, and refuse calls once a budget is spent.

    Example::

        tracker = CostTracker(budget=5)
        litellm.callbacks = [tracker]
        litellm.completion(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        print(tracker.total_cost, tracker.cost_by_model)

    Args:
        budget: total USD limit (int, float, str or Decimal), or None.
        on_budget_exceeded: ``fn(tracker)``, called once each time a budget scope is crossed.
        raise_on_budget: refuse calls (``BudgetExceededError``) once a budget is spent.
        print_summary: print a summary on stderr at interpreter exit.
        store: ledger URL (``memory://``, ``sqlite:///path.db``, ``redis://host:6379/0``) or a ``Store``.
        budgets: more ``Budget`` scopes (per model, user, tag, metadata key; daily or monthly windows).
        prices: a price override file (TOML or JSON) or a mapping ``model -> {input_per_mtok, ...}``.
        name: the ledger's namespace in the store: trackers with the same store and name share totals.
        price_cache_dir: where discovered prices are cached as editable files.
        linkup_api_key: Linkup key for price discovery (else ``LINKUP_API_KEY``; off when neither is set, or
            when this is ``False``).
        alert_at: budget fractions (e.g. ``(0.5, 0.8, 1.0)``) at which ``on_alert`` is called.
        on_alert: ``fn(scope, fraction, spent, limit)``, once per threshold per scope and window.
        on_store_error: ``"allow"`` (default) lets calls through while the store is unreachable, ``"refuse"``
            refuses them (``StoreUnavailableError``, a ``BudgetExceededError``) when a budget must be checked;
            either way the problem is logged once. Without any budget nothing is checked, so nothing is refused.
        reservation_ttl: seconds a strict reservation is held when its call never settles (a crashed worker).
        store_timeout: seconds one store round trip may take before ``on_store_error`` applies; after a
            failure, budget checks fail fast (no waiting) until the store answers a probe again.
        clock: the time source (epoch seconds) for event times and budget windows; for tests.

    Raises:
        ValueError, TypeError: for a bad budget, price file, store URL or option.
    """

    def __init__(
        self,
        budget: object = None,
        on_budget_exceeded: Callable[[CostTracker], None] | None = None,
        raise_on_budget: bool = True,
        print_summary: bool = True,
        store: str | Store = "memory://",
        budgets: Iterable[Budget] = (),
        prices: str | os.PathLike[str] | Mapping[str, Any] | None = None,
        name: str = "default",
        price_cache_dir: str | os.PathLike[str] = "model_costs",
        linkup_api_key: str | bool | None = None,
        *,
        alert_at: Sequence[float] = (),
        on_alert: Callable[[str, float, Decimal, Decimal], None] | None = None,
        on_store_error: str = "allow",
        clock: Callable[[], float] | None = None,
        reservation_ttl: float = _RESERVATION_TTL_S,
        store_timeout: float | None = _STORE_TIMEOUT_S,
    ) -> None:
        super().__init__()
        if not isinstance(name, str) or not name:
            raise ValueError("name must be a non-empty str")
        if on_store_error not in ("allow", "refuse"):
            raise ValueError(f"on_store_error must be 'allow' or 'refuse', got {on_store_error!r}")
        for value, arg in ((reservation_ttl, "reservation_ttl"), (store_timeout, "store_timeout")):
            if value is None and arg == "store_timeout":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 10**9:
                raise ValueError(f"{arg} must be a positive number of seconds, got {value!r}")
        self.reservation_ttl = float(reservation_ttl)
        self.store_timeout = None if store_timeout is None else float(store_timeout)
        for fraction in alert_at:
            if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 10:
                raise ValueError(f"alert_at holds fractions of a budget such as 0.8, got {fraction!r}")
        # A unique public attribute: litellm de-duplicates loggers by class and public attributes.
        self.tracker_id = uuid.uuid4().hex
        self._created = dt.datetime.now()  # litellm stamps calls with a naive local datetime.now()
        # Ids of events recorded by track(): a prefix and a counter, which the memory store keeps compactly.
        self._id_prefix = f"t{self.tracker_id[:12]}"
        self._sequence = itertools.count(1)
        self.name = name
        self.raise_on_budget = bool(raise_on_budget)
        self.print_summary = bool(print_summary)
        self.on_budget_exceeded = on_budget_exceeded
        self.on_alert = on_alert
        self.on_store_error = on_store_error
        self._alert_at = tuple(sorted(float(f) for f in alert_at))
        self._limit = parse_amount(budget, "budget")
        self._budgets = _as_budgets(budget, budgets)
        self._clock = clock or time.time
        overrides = load_prices(os.fspath(prices) if isinstance(prices, os.PathLike) else prices) if prices else {}
        # A clock given for tests also times the store's reservations; else Redis keeps its server's clock.
        options: dict[str, Any] = (
            {"timeout": self.store_timeout} if clock is None else {"timeout": self.store_timeout, "clock": clock}
        )
        self.store = store_from_url(store, **options) if isinstance(store, str) else store
        self._breaker = CircuitBreaker(clock=self._clock)
        if not isinstance(self.store, Store):
            raise TypeError(f"store must be a URL or a Store, not {type(store).__name__}")
        # False turns discovery off even when LINKUP_API_KEY is set (a server facing untrusted model names).
        if linkup_api_key is True or not isinstance(linkup_api_key, (str, bool, type(None))):
            raise TypeError("linkup_api_key must be a str, None or False")
        self._linkup_key = (
            None if linkup_api_key is False else (linkup_api_key or os.environ.get("LINKUP_API_KEY") or None)
        )
        sources: list[PriceSource] = [OverrideSource(overrides), LitellmMapSource()]
        sources.extend(_discovery_sources(Path(price_cache_dir), self._linkup_key))
        self.prices = PriceChain(sources)
        self.prices.add_listener(self._on_price)
        self._warn = _OnceLog()
        # Guards _pending, _seen, _admissions, _awaiting, _crossed, _alerted; _returned waits on it.
        self._lock = threading.Lock()
        self._returned = threading.Condition(self._lock)
        self._pending: dict[str, _Pending] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._admissions: dict[str, _Admission] = {}
        self._awaiting: dict[tuple[str, str], list[tuple[str, tuple[str, ...], tuple[ScopedBudget, ...]]]] = {}
        self._crossed: set[str] = set()
        self._alerted: set[tuple[str, float]] = set()
        self._last_totals: Any = None
        self._closed = False
        if self._budgets:
            self._safe_store("set_meta", lambda: self.store.set_meta(name, "budgets", _dump_budgets(self._budgets)))
        # litellm's hooks are installed while a tracker lives; nothing holds the tracker but litellm's lists.
        register(self)

    # -- read-only views -----------------------------------------------------------------------------------
    @property
    def total_cost(self) -> Decimal:
        """What every priced call has cost, in USD (unpriced calls are counted in ``unpriced_count``)."""
        return from_units(self._totals().cost_units)

    @property
    def request_count(self) -> int:
        """How many calls are recorded (priced or not)."""
        return int(self._totals().requests)

    @property
    def unpriced_count(self) -> int:
        """How many recorded calls have no known price."""
        return int(self._totals().unpriced)

    @property
    def saved_by_cache(self) -> Decimal:
        """What prompt-cache reads and litellm cache hits saved against full price, in USD."""
        return from_units(self._totals().saved_units)

    @property
    def history(self) -> list[dict[str, Any]]:
        """Every recorded call as a dict (money as ``Decimal``, ``timestamp`` ISO-8601 UTC), oldest first."""
        return [event.to_dict() for event in self.events()]

    def events(
        self,
        since: float | str | None = None,
        until: float | str | None = None,
        model: str | None = None,
        limit: int | None = None,
    ) -> list[Event]:
        """Return recorded events, oldest first; ``since``/``until`` are epoch seconds or ISO-8601 text."""
        self._await_returned()
        return cast(
            list[Event],
            self._safe_store(
                "events",
                lambda: self.store.events(self.name, _when(since, "since"), _when(until, "until"), model, limit),
                default=[],
            ),
        )

    @property
    def cost_by_model(self) -> dict[str, Decimal]:
        """Cost per model in USD, most expensive first."""
        return self.cost_by("model")

    @property
    def cost_by_provider(self) -> dict[str, Decimal]:
        """Cost per provider in USD, most expensive first."""
        return self.cost_by("provider")

    def cost_by(self, key: str) -> dict[str, Decimal]:
        """Cost per value of ``key``: ``"model"``, ``"provider"``, ``"user"``, ``"tag"``, ``"day"``, a metadata key."""
        if not isinstance(key, str) or not key:
            raise TypeError("key must be a non-empty str")
        self._await_returned()
        groups = self._safe_store("aggregate", lambda: self.store.aggregate(self.name, key), default=[])
        return {g.key: from_units(g.cost_units) for g in groups}

    @property
    def budget(self) -> Decimal | None:
        """The total USD limit given as ``budget=``, or None."""
        return self._limit

    @property
    def remaining(self) -> Decimal | None:
        """What is left of ``budget`` in USD (never negative), or None without one."""
        if self._limit is None:
            return None
        return max(Decimal(0), self._limit - self.total_cost)

    @property
    def budget_exceeded(self) -> bool:
        """Whether any budget scope (current window) is spent."""
        return any(line.exceeded for line in self.budget_lines())

    def budget_lines(self) -> list[BudgetLine]:
        """Return the state of every budget scope in its current window."""
        if not self._budgets:
            return []
        self._await_returned()
        return cast(
            list[BudgetLine],
            self._safe_store(
                "counters", lambda: budget_lines(self.store, self.name, self._budgets, self._clock()), default=[]
            ),
        )

    def summary(self, window: str | None = None) -> Any:
        """Return a rich renderable summary (also plain data): totals, per model, budgets, unpriced, savings.

        ``window`` is None (everything), ``"day"`` or ``"month"`` (the current calendar window, UTC).
        """
        from tokencost.reports import build_summary

        self._await_returned()
        return build_summary(self.store, self.name, window=window, budgets=self._budgets, now=self._clock())

    def export_csv(self, path: str | os.PathLike[str], since: float | str | None = None) -> int:
        """Write every recorded event (money as exact decimal text) to a CSV file; return how many."""
        return self._export(path, "csv", since)

    def export_json(self, path: str | os.PathLike[str], since: float | str | None = None) -> int:
        """Write every recorded event to a JSON file (a list; money as exact decimal text); return how many."""
        return self._export(path, "json", since)

    def _export(self, path: str | os.PathLike[str], fmt: str, since: float | str | None) -> int:
        from tokencost.reports import export_events

        self.flush(10)
        return export_events(self.store, self.name, os.fspath(path), fmt, since=_when(since, "since"))

    # -- methods ---------------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget every recorded call and budget counter of this ledger (calls are let through again)."""
        self._await_returned()
        self._safe_store("reset", lambda: self.store.reset(self.name))
        with self._lock:
            self._crossed.clear()
            self._alerted.clear()
            self._awaiting.clear()
        sync_litellm_budget()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every call that has returned is recorded and the store made it durable.

        Returns ``False`` when ``timeout`` (seconds) ran out first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        drain_litellm_pool(timeout)
        for source in self.prices.sources:  # price lookups running for recorded calls: let them reprice
            wait = getattr(source, "wait", None)
            if callable(wait):
                wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
        # Without a timeout, a success event litellm dropped (its pool drops past 10,000 pending) must not hang us.
        events_deadline = deadline if deadline is not None else time.monotonic() + _FLUSH_EVENTS_MAX_S
        with self._lock:
            while self._has_returned_pending():
                left = events_deadline - time.monotonic()
                if left <= 0:
                    if deadline is None:
                        self._warn("late-events", "tokencost: litellm's success events are late; totals may lag")
                        break
                    return False
                self._returned.wait(left)
        store_timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        return bool(self._safe_store("flush", lambda: self.store.flush(store_timeout), default=False))

    async def aflush(self, timeout: float | None = None) -> bool:
        """Flush from async code: also drains litellm's async logging worker of this event loop."""
        try:
            from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER

            await asyncio.wait_for(GLOBAL_LOGGING_WORKER.flush(), timeout)
        except Exception as exc:
            self._warn("aflush", "tokencost: could not drain litellm's async logging worker: %s", exc)
        return await asyncio.to_thread(self.flush, timeout)

    def close(self) -> None:
        """Stop tracking, flush and close the store; return litellm to the state this tracker found.

        The tracker leaves every litellm callback list; once no tracker is left, tokencost's pre-call rule, its
        filter on the ``LiteLLM`` logger and its patches of litellm's logging executor and worker are removed,
        and ``litellm.max_budget`` / ``_current_cost`` get back the values they had before a spent ``budget=``
        was mirrored there. A closed tracker never comes back into litellm's lists.
        """
        if self._closed:
            return
        self._closed = True
        try:
            unregister(self)
        except Exception as exc:
            self._bug("close", exc)
        for source in self.prices.sources:
            close = getattr(source, "close", None)
            if callable(close):
                close()
        self._safe_store("flush", lambda: self.store.flush(5.0))
        self._safe_store("close", self.store.close)

    # -- calls outside litellm --------------------------------------------------------------------------------
    def track(
        self,
        model: str,
        prompt_tokens: int,
        completion_tokens: int,
        provider: str | None = None,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
        reasoning_tokens: int = 0,
        metadata: Mapping[str, Any] | None = None,
    ) -> Event:
        """Record a call made outside litellm and return the recorded ``Event``.

        The event reads like a ``history`` entry too: ``event["cost"] == event.cost``.

        Counts follow OpenAI's convention: ``prompt_tokens`` includes the cache reads and writes,
        ``completion_tokens`` includes the reasoning tokens.

        Example::

            tracker.track(model="gpt-4o", prompt_tokens=10_000, completion_tokens=500, cache_read_tokens=8_000)
            # cost: Decimal("0.02")

        Raises:
            TypeError: for a model that is not a str, or counts that are not ints.
            ValueError: for negative counts, or parts larger than the whole.
        """
        if not (
            type(prompt_tokens) is int
            and type(completion_tokens) is int
            and type(cache_read_tokens) is int
            and type(cache_write_tokens) is int
            and type(reasoning_tokens) is int
            and type(model) is str  # a str subclass takes the slow check, which accepts it
            and model
        ):
            _check_track_types(
                model, prompt_tokens, completion_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens
            )
        if provider is not None and not isinstance(provider, str):
            raise TypeError("provider must be a str or None")
        if metadata is not None and not isinstance(metadata, Mapping):
            raise TypeError("metadata must be a mapping or None")
        uncached = prompt_tokens - cache_read_tokens - cache_write_tokens
        visible = completion_tokens - reasoning_tokens
        if uncached < 0 or visible < 0 or cache_read_tokens < 0 or cache_write_tokens < 0 or reasoning_tokens < 0:
            _check_track_counts(
                prompt_tokens, completion_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens
            )
        usage = Usage(uncached, cache_read_tokens, cache_write_tokens, visible, reasoning_tokens)
        scope = _scope_var.get()
        # record_usage(), one layer less (this is the hot path of code that records many calls).
        event = self._price_event(
            f"{self._id_prefix}-{next(self._sequence)}",
            model,
            provider or _PROVIDERS.get(model) or _provider_of(model),
            usage,
            call_metadata(scope, metadata) if metadata or scope else {},
        )
        return self._commit(event, _active_var.get(), None)

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
    ) -> Event:
        """Price and record normalized usage (``None`` records the call unpriced with ``reason``).

        The building block of ``track``, ``track_response`` and the SDK wrappers.
        """
        event = self._price_event(
            call_id or f"{self._id_prefix}-{next(self._sequence)}",
            model,
            provider or _PROVIDERS.get(model) or _provider_of(model),
            usage,
            clean_metadata(metadata) if metadata else {},
            status=status,
            reason=reason,
        )
        return self._commit(event, active_budgets(), admission if isinstance(admission, _Admission) else None)

    def track_response(
        self,
        provider: str,
        model: str,
        response: Any,
        *,
        estimate_missing: bool = False,
        metadata: Mapping[str, Any] | None = None,
        messages: Any = None,
    ) -> Event:
        """Record a raw provider response (SDK object or JSON dict) of a call made outside litellm.

        Usage is read by the provider's extractor (``register_usage_extractor`` adds one). A response with no
        readable usage is recorded unpriced with the reason, or estimated with ``estimate_missing=True``.
        """
        from tokencost.wrappers import track_response

        return track_response(
            self, provider, model, response, estimate_missing=estimate_missing, metadata=metadata, messages=messages
        )

    def wrap_openai(self, client: _C, *, provider: str = "openai", estimate_missing: bool = False) -> _C:
        """Return ``client`` (an ``openai.OpenAI`` or ``AsyncOpenAI``) with every call priced and budgeted."""
        from tokencost.wrappers import wrap_openai

        return wrap_openai(self, client, provider=provider, estimate_missing=estimate_missing)

    def wrap_anthropic(self, client: _C, *, provider: str = "anthropic", estimate_missing: bool = False) -> _C:
        """Return ``client`` (an ``anthropic.Anthropic`` or ``AsyncAnthropic``) with every call priced and budgeted."""
        from tokencost.wrappers import wrap_anthropic

        return wrap_anthropic(self, client, provider=provider, estimate_missing=estimate_missing)

    def estimate_cost(self, model: str, messages: Any = None, max_tokens: int | None = None) -> Decimal | None:
        """Estimate a call's cost in USD before making it: prompt counted by litellm's token counter, plus
        ``max_tokens`` at the output price (the worst case). None when no source prices the model.
        """
        if not isinstance(model, str) or not model:
            raise TypeError("model must be a non-empty str")
        units = self._estimate_units(model, _provider_of(model), messages, max_tokens)
        return None if units is None else from_units(units[0])

    def can_afford(self, model: str, messages: Any = None, max_tokens: int | None = None) -> bool:
        """Answer, without sending anything, whether a call this size fits every budget that applies now.

        Counts what is spent and what calls in flight hold (strict reservations); ``max_tokens`` None counts
        the prompt alone.
        """
        estimate = self._estimate_units(model, _provider_of(model), messages, max_tokens)
        metadata = current_scope()
        for scoped in active_budgets():
            if scoped.exceeded:
                return False
            limit = scoped.max_cost_usd
            if limit is not None and estimate is not None and scoped.spent_units + estimate[0] > to_units(limit):
                return False
        if not self._budgets:
            return True
        checks = self._checks(model, metadata, self._clock())
        if not checks:
            return True
        counters = self._safe_store("counters", lambda: self.store.counters(self.name, list(checks)))
        if counters is None:
            return self.on_store_error == "allow"
        cost, toks = estimate if estimate is not None else (0, 0)
        for key, (b, _) in checks.items():
            units, tokens, reserved = counters.get(key, (0, 0, 0))
            if estimate is None and b.unpriced == "refuse":
                return False
            if b.limit_units is not None and units + reserved + cost > b.limit_units:
                return False
            if b.max_tokens is not None and tokens + toks > b.max_tokens:
                return False
        return True

    # -- litellm hooks: events --------------------------------------------------------------------------------
    def log_pre_api_call(self, model: Any, messages: Any, kwargs: Any) -> None:
        """Register the call as pending, capturing the caller's scope (runs in the caller's thread)."""
        try:
            call_id = kwargs.get("litellm_call_id")
            if not call_id:
                return
            stream = bool(kwargs.get("stream"))
            pending = _Pending(
                thread=threading.get_ident(),
                stream=stream,
                model=str(model),
                scope=current_scope(),
                budgets=active_budgets(),
                messages=messages if stream else None,
            )
            with self._lock:
                if call_id in self._seen or call_id in self._pending:
                    return
                self._pending[call_id] = pending
            if stream:
                watch_stream(self, call_id)
        except Exception as exc:
            self._bug("log_pre_api_call", exc)

    def _expect_event(self, call_id: str, model: str) -> bool:
        """A call submitted its sync success event (caller's thread) without a request tokencost saw start:
        a cache hit, a mocked embedding. Register it as pending so views wait for it; False if already known.
        """
        if self._closed:
            return False
        pending = _Pending(
            thread=threading.get_ident(),
            stream=False,
            model=model,
            scope=current_scope(),
            budgets=active_budgets(),
        )
        with self._lock:
            if call_id in self._seen or call_id in self._pending:
                return False
            self._pending[call_id] = pending
        return True

    def log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        """Record a finished call (litellm's thread pool, after ``completion()`` returned)."""
        if self._started_before_me(start_time):
            self._resolve(kwargs)
        else:
            self._on_success(kwargs, response_obj)

    async def async_log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        """Record a finished async call (litellm's background worker); de-duplicated by call id."""
        if self._started_before_me(start_time):
            self._resolve(kwargs)
        else:
            self._on_success(kwargs, response_obj)

    def _started_before_me(self, start_time: Any) -> bool:
        """Whether a call began before this tracker existed.

        litellm hands a queued event to whoever is registered when its worker gets to it, even the calls of an
        earlier event loop; those are not this tracker's.
        """
        return isinstance(start_time, dt.datetime) and start_time.tzinfo is None and start_time < self._created

    def log_failure_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        """Forget a failed call: the provider did not bill it; release its reservation."""
        self._on_failure(kwargs)

    async def async_log_failure_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        """Forget a failed async call and release its reservation."""
        self._on_failure(kwargs)

    async def async_post_call_success_deployment_hook(
        self, request_data: dict[str, Any], response: Any, call_type: Any
    ) -> Any:
        """Record an async non-stream call in the caller's task, before ``await`` returns."""
        try:
            logging_obj = request_data.get("litellm_logging_obj")
            details = getattr(logging_obj, "model_call_details", None)
            kwargs = dict(details) if isinstance(details, Mapping) else dict(request_data)
            kwargs.setdefault("litellm_call_id", request_data.get("litellm_call_id"))
            if getattr(response, "usage", None) is not None and not kwargs.get("stream"):
                self._on_success(kwargs, response)
        except Exception as exc:
            self._bug("async_post_call_success_deployment_hook", exc)
        return None

    # -- litellm hooks: refusal --------------------------------------------------------------------------------
    async def async_pre_call_deployment_hook(self, kwargs: dict[str, Any], call_type: Any) -> dict[str, Any] | None:
        """Refuse an async call (or Router call) whose budget is spent, before its request is sent."""
        self._admit_kwargs(kwargs)
        return None

    def pre_call_check(self, deployment: dict[str, Any]) -> dict[str, Any] | None:
        """Refuse a sync Router call whose tracker-wide or ``scope()`` budget is spent."""
        params = deployment.get("litellm_params") if isinstance(deployment, Mapping) else None
        model = str(_get(params, "model") or "")
        # Only a check: litellm admits the call again, with its arguments and call id, when it sets it up.
        self._admit(model, _provider_of(model), current_scope(), call_id=None, reserve=False)
        return None

    async def async_pre_call_check(
        self, deployment: dict[str, Any], parent_otel_span: Any = None
    ) -> dict[str, Any] | None:
        """Refuse an async Router call whose tracker-wide or ``scope()`` budget is spent."""
        return self.pre_call_check(deployment)

    # -- internals -------------------------------------------------------------------------------------------
    def _admit_kwargs(self, kwargs: Mapping[str, Any], args: Sequence[Any] = ()) -> None:
        """Admit a call from its litellm kwargs (raises ``BudgetExceededError`` to refuse it)."""
        try:
            call_id = kwargs.get("litellm_call_id")
            model = kwargs.get("model") or (args[0] if args else "")
            messages = kwargs.get("messages") or (args[1] if len(args) > 1 else None)
            params = kwargs.get("litellm_params")
            raw_meta = kwargs.get("metadata") or _get(params, "metadata") or kwargs.get("litellm_metadata")
            metadata = call_metadata(current_scope(), raw_meta, kwargs.get("user"))
            model, provider = _split_model(str(model), kwargs.get("custom_llm_provider"))
            max_tokens = kwargs.get("max_tokens") or kwargs.get("max_completion_tokens")
            request = WorstCaseRequest.from_kwargs(kwargs)
        except Exception as exc:
            self._bug("admit", exc)
            call_id, model, messages, metadata, provider, max_tokens = None, "", None, current_scope(), None, None
            request = WorstCaseRequest()
        self._admit(
            str(model), provider, metadata, call_id=call_id, messages=messages, max_tokens=max_tokens, request=request
        )

    def _admit(
        self,
        model: str,
        provider: str | None,
        metadata: Mapping[str, Any],
        *,
        call_id: str | None,
        messages: Any = None,
        max_tokens: Any = None,
        request: WorstCaseRequest | None = None,
        reserve: bool = True,
    ) -> _Admission | None:
        """Check every budget that applies to this call; reserve under strict budgets. Raise to refuse.

        ``reserve=False`` only checks (a hook that cannot tie a reservation to the call, such as the Router's
        ``pre_call_check``: the call is admitted again, with its arguments, when litellm sets it up).
        """
        if self._closed:
            return None
        self._await_returned()  # the thread's earlier calls count before this one is checked
        if call_id is not None:
            with self._lock:
                if call_id in self._admissions:
                    return self._admissions[call_id]
        for scoped in active_budgets():
            if scoped.tracker is None or scoped.tracker is self:
                scoped.check()
        if not self.raise_on_budget or not self._budgets:
            return None
        now = self._clock()
        checks = self._checks(model, metadata, now)
        if not checks:
            return None
        try:
            counters = self._guarded(lambda: self.store.counters(self.name, list(checks)))
        except Exception as exc:
            self._store_down(exc)
            return None
        for key, (b, value) in checks.items():
            units, tokens, reserved = counters.get(key, (0, 0, 0))
            if (b.limit_units is not None and units >= b.limit_units) or (
                b.max_tokens is not None and tokens >= b.max_tokens
            ):
                raise BudgetExceededError(
                    b.limit_usd,
                    from_units(units),
                    b.label(value),
                    max_tokens=b.max_tokens,
                    tokens=tokens,
                    reserved=from_units(reserved),
                )
        # A money budget that refuses unknown costs refuses a model no source prices (token limits need no price).
        refusing = [(key, b, v) for key, (b, v) in checks.items() if b.unpriced == "refuse" and b.limit_usd is not None]
        if refusing and self._lookup(model, provider) is None:
            key, b, value = refusing[0]
            units, tokens, reserved = counters.get(key, (0, 0, 0))
            raise BudgetExceededError(
                b.limit_usd,
                from_units(units),
                b.label(value),
                max_tokens=b.max_tokens,
                tokens=tokens,
                reserved=from_units(reserved),
                detail=f"the budget refuses calls of unknown cost (unpriced='refuse'), and no source prices {model!r}",
            )
        strict = {key: (b, value) for key, (b, value) in checks.items() if b.strict}
        if not strict or not reserve:
            return None
        worst = self._worst_case(model, provider, messages, max_tokens, request or WorstCaseRequest())
        reservation = uuid.uuid4().hex
        limits = [
            Check(key, b.limit_units if worst.units is not None else None, b.max_tokens)
            for key, (b, _) in strict.items()
        ]
        try:
            failed = self._guarded(
                lambda: self.store.reserve(
                    self.name, reservation, limits, worst.units or 0, worst.tokens, self.reservation_ttl
                )
            )
        except Exception as exc:
            self._store_down(exc)
            return None
        if failed is not None:
            b, value = strict[failed.key]
            state = self._safe_store("counters", lambda: self.store.counters(self.name, [failed.key]), default={})
            units, tokens, reserved = state.get(failed.key, (0, 0, 0))
            raise BudgetExceededError(
                b.limit_usd,
                from_units(units),
                b.label(value),
                max_tokens=b.max_tokens,
                tokens=tokens,
                reserved=from_units(reserved),
                detail=worst.describe(),
            )
        admission = _Admission(reservation, worst_units=worst.units, worst_tokens=worst.tokens, keys=tuple(strict))
        if call_id is not None:
            with self._lock:
                self._admissions[call_id] = admission
        return admission

    def _checks(self, model: str, metadata: Mapping[str, Any], now: float) -> dict[str, tuple[Budget, str]]:
        """Return the counters a call in this scope is checked against, each once, with its tightest budget.

        Budgets with the same ``per``, window and time zone share one counter (the spend is the same quantity);
        the check uses the budget that refuses first, so a looser budget beside it changes nothing.
        """
        out: dict[str, tuple[Budget, str]] = {}
        for b in self._budgets:
            for value in b.values(model, metadata):
                key = b.counter_key(value, now)
                seen = out.get(key)
                out[key] = (b, value) if seen is None else (_tighter(seen[0], b), value)
        return out

    def _release(self, admission: Any) -> None:
        """Drop the reservation of a call that failed or was never sent."""
        if isinstance(admission, _Admission) and admission.reservation is not None:
            reservation = admission.reservation
            self._safe_store("release", lambda: self.store.release(self.name, reservation))

    def release_reservations(self, older_than: float | None = None) -> int:
        """Drop the strict reservations held on this ledger for longer than ``older_than`` seconds.

        A reservation is held while its call is in flight; one left by a worker that crashed expires after
        ``reservation_ttl`` on its own. ``older_than=None`` uses ``reservation_ttl``; ``0`` drops every open
        reservation (only when no call is in flight anywhere). Returns how many were dropped.
        """
        if older_than is not None and (
            isinstance(older_than, bool) or not isinstance(older_than, (int, float)) or older_than < 0
        ):
            raise ValueError(f"older_than must be a non-negative number of seconds, got {older_than!r}")
        age = self.reservation_ttl if older_than is None else float(older_than)
        return int(self._safe_store("release_stale", lambda: self.store.release_stale(self.name, age), default=0))

    def _total_spent(self) -> bool:
        """Whether the tracker-wide ``budget=`` is spent."""
        if self._limit is None:
            return False
        totals = self._safe_store("totals", lambda: self.store.totals(self.name))
        return totals is not None and totals.cost_units >= to_units(self._limit)

    def _guarded(self, fn: Callable[[], _T]) -> _T:
        """Run a store call through the circuit breaker: while the store is down, fail at once."""
        return self._breaker.call(fn)

    def _store_down(self, exc: BaseException) -> None:
        self._warn(
            "store-down",
            "tokencost: the store is unreachable (%s); calls are %s until it answers again",
            exc,
            "let through" if self.on_store_error == "allow" else "refused",
        )
        if self.on_store_error == "refuse":
            raise StoreUnavailableError(str(exc), self._limit) from None
        return None

    def _worst_case(
        self, model: str, provider: str | None, messages: Any, max_tokens: Any, request: WorstCaseRequest
    ) -> WorstCase:
        """Return the most this call can be billed: every prompt part counted, ``n`` times ``max_tokens`` out."""
        price = self._lookup(model, provider)
        prompt = request.prompt_tokens(model, messages)
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 0:
            max_tokens = None
        given = max_tokens is not None
        if max_tokens is None:
            info = model_info(model, provider) or {}
            value = info.get("max_output_tokens") or info.get("max_tokens")
            max_tokens = value if isinstance(value, int) else 4096
        output = max_tokens * request.n
        if price is None:
            return WorstCase(None, prompt + output, prompt, output, given)
        tier = price.tier_above_tokens
        if tier is not None and prompt > tier and price.above_tier is not None:
            price = price.above_tier
        in_price = max(price.input, price.per_token("cache_write"))
        out_price = max(price.per_token("output"), price.per_token("reasoning"))
        return WorstCase(to_units(prompt * in_price + output * out_price), prompt + output, prompt, output, given)

    def _estimate_units(
        self, model: str, provider: str | None, messages: Any, max_tokens: Any
    ) -> tuple[int, int] | None:
        """Return (pico-dollars, tokens) of a call: prompt as counted plus ``max_tokens`` (0 when not given)."""
        price = self._lookup(model, provider)
        if price is None:
            return None
        prompt = count_prompt(model, messages)
        output = max_tokens if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) else 0
        output = max(output, 0)
        out_price = max(price.per_token("output"), price.per_token("reasoning"))
        return to_units(prompt * price.input + output * out_price), prompt + output

    def _lookup(self, model: str, provider: str | None) -> Price | None:
        try:
            return self.prices.lookup(model, provider)
        except Exception as exc:
            self._warn(f"source:{model}", "tokencost: a price source failed for %s: %s", model, exc)
            return None

    def _on_success(self, kwargs: Any, response_obj: Any) -> None:
        try:
            call_id = kwargs.get("litellm_call_id") or uuid.uuid4().hex
            with self._lock:
                if call_id in self._seen:
                    return
                self._seen[call_id] = None
                if len(self._seen) > _SEEN_MAX:
                    self._seen.popitem(last=False)
                pending = self._pending.get(call_id)
                admission = self._admissions.pop(call_id, None)
            try:
                event = self._event_from_litellm(call_id, kwargs, response_obj, pending)
            except Exception as exc:
                self._bug("pricing", exc)
                event = Event(
                    call_id,
                    self._clock(),
                    str(kwargs.get("model") or "unknown"),
                    "unknown",
                    Usage(),
                    None,
                    reason=f"tokencost could not read this call: {type(exc).__name__}",
                )
            self._commit(event, pending.budgets if pending else (), admission)
        except Exception as exc:
            self._bug("success event", exc)
        finally:
            self._resolve(kwargs)

    def _on_failure(self, kwargs: Any) -> None:
        try:
            call_id = kwargs.get("litellm_call_id")
            with self._lock:
                admission = self._admissions.pop(call_id, None) if call_id else None
            self._release(admission)
        except Exception as exc:
            self._bug("failure event", exc)
        finally:
            self._resolve(kwargs)

    def _resolve(self, kwargs: Any) -> None:
        call_id = kwargs.get("litellm_call_id") if isinstance(kwargs, Mapping) else None
        with self._lock:
            if call_id is not None:
                self._pending.pop(call_id, None)
            self._returned.notify_all()

    def _event_from_litellm(
        self, call_id: str, kwargs: Mapping[str, Any], response: Any, pending: _Pending | None
    ) -> Event:
        params = kwargs.get("litellm_params") or {}
        model = str(kwargs.get("model") or _get(response, "model") or (pending.model if pending else "") or "unknown")
        provider = str(kwargs.get("custom_llm_provider") or _get(params, "custom_llm_provider") or _provider_of(model))
        scope = pending.scope if pending else current_scope()
        metadata = call_metadata(scope, _get(params, "metadata"), kwargs.get("user"))
        complete = kwargs.get("complete_streaming_response")
        usage_obj = _get(complete, "usage") if complete is not None else None
        if usage_obj is None:
            usage_obj = _get(response, "usage")
        response_cost = kwargs.get("response_cost")
        try:
            usage: Usage | None = from_litellm_usage(usage_obj)
            reason = None
        except UsageError as exc:
            usage, reason = None, str(exc)
            self._warn(f"usage:{model}:{reason}", "tokencost: %s for %s; recorded unpriced", reason, model)
        return self._price_event(
            call_id,
            model,
            provider,
            usage,
            metadata,
            response_cost=response_cost,
            cache_hit=bool(kwargs.get("cache_hit")),
            reason=reason,
        )

    def _price_event(
        self,
        call_id: str,
        model: str,
        provider: str,
        usage: Usage | None,
        metadata: dict[str, Any],
        *,
        response_cost: Any = None,
        cache_hit: bool = False,
        status: str = "ok",
        reason: str | None = None,
    ) -> Event:
        now = self._clock()
        if usage is None:
            return Event(
                call_id,
                now,
                model,
                provider,
                Usage(),
                None,
                metadata=metadata,
                status=status,
                reason=reason or "no usage in response",
            )
        price = self._lookup(model, provider)
        if price is not None and not cache_hit:
            tier = price.tier_above_tokens
            if tier is not None and usage.prompt_tokens > tier:
                if price.above_tier is not None:
                    price = price.above_tier  # a long prompt: the whole call is billed at the tier's prices
                else:
                    # Several tiers tokencost does not model: litellm's own figure.
                    tier_cost = _response_cost_units(response_cost) or _litellm_tier_cost(model, provider, usage)
                    if tier_cost is not None:
                        return Event(
                            call_id, now, model, provider, usage, tier_cost, "response_cost", None, 0, metadata,
                            status, reason="priced by litellm (prompt above a pricing tier)",
                            breakdown={"total": tier_cost},
                        )  # fmt: skip
            return Event(
                call_id, now, model, provider, usage, price.cost_units(usage), price.source, price,
                price.saved_units(usage), metadata, status, reason,
            )  # fmt: skip
        if cache_hit:
            saved = price.cost_units(usage) if price is not None else 0
            return Event(
                call_id,
                now,
                model,
                provider,
                usage,
                0,
                price.source if price else "cache",
                price,
                saved,
                metadata,
                "cache_hit",
            )
        litellm_cost = _response_cost_units(response_cost)
        if litellm_cost is not None:
            # Pricing tokencost does not model (per-image or per-second prices): litellm's own figure.
            return Event(
                call_id, now, model, provider, usage, litellm_cost, "response_cost", None, 0, metadata, status,
                reason="priced by litellm (no per-token price known)", breakdown={"total": litellm_cost},
            )  # fmt: skip
        pending = self.prices.is_pending(model, provider)
        self._warn(
            f"unpriced:{model}",
            "tokencost: no price known for model %r (provider %s); its calls are recorded unpriced%s",
            model,
            provider,
            " until price discovery answers" if pending else "",
        )
        return Event(
            call_id,
            now,
            model,
            provider,
            usage,
            None,
            metadata=metadata,
            status="pending" if pending else status,
            reason="price lookup in progress" if pending else f"no price known for model {model!r}",
        )

    def _charges(self, event: Event) -> tuple[str, ...]:
        """The counters an event is added to: each once, however many budgets share it."""
        return tuple(self._checks(event.model, event.metadata, event.timestamp))

    def _commit(self, event: Event, scoped: Sequence[ScopedBudget], admission: _Admission | None) -> Event:
        """Record an event, charge its budgets and scoped blocks, and return it as recorded.

        An event no real call can produce (over ``MAX_TOKENS`` tokens in a bucket, an amount out of range) is
        recorded unpriced with the reason instead, so it never reaches a total or blocks a store.
        """
        checked = plausible_event(event)
        if checked is not event:
            self._warn(f"implausible:{event.model}", "tokencost: %s (model %s)", checked.reason, event.model)
            event = checked
        charges = self._charges(event) if self._budgets else ()
        reservation = admission.reservation if admission is not None else None
        if reservation is not None and event.cost_units is None and event.status != "pending":
            event = self._hold_unknown(event, cast(_Admission, admission))
        try:
            counters = self.store.record(self.name, event, charges, reservation)
        except Exception as exc:
            self._warn("store-record", "tokencost: could not record a call in the store: %s", exc)
            counters = {}
        for block in scoped:
            if block.tracker is None or block.tracker is self:
                block.charge(event.cost_units, event.tokens)
        if event.status == "pending":
            with self._lock:
                self._awaiting.setdefault((event.model, event.provider), []).append(
                    (event.call_id, charges, tuple(scoped))
                )
        if counters and (event.cost_units or event.tokens):
            self._check_crossings(event, counters)
        return event

    def _hold_unknown(self, event: Event, admission: _Admission) -> Event:
        """Keep a strict budget's worst case for a call whose cost is unknown (a response without usage).

        A strict budget is never exceeded, so what the call may have cost stays held on its counters, as the
        reservation ``unknown-cost:<call id>`` (listed by ``tokencost reservations``; an operator who learns the
        real cost can release it), until the budget's window ends.
        """
        keep = f"unknown-cost:{event.call_id}"
        checks = [Check(key) for key in admission.keys]
        units, tokens = admission.worst_units or 0, admission.worst_tokens
        failed = self._safe_store(
            "reserve", lambda: self.store.reserve(self.name, keep, checks, units, tokens, _UNKNOWN_HOLD_S), default=1
        )
        if failed is not None:
            return event
        note = f"strict budgets hold its worst case (${from_units(units)}) as reservation {keep}"
        return replace(event, reason=f"{event.reason}; {note}" if event.reason else note)

    def _check_crossings(self, event: Event, counters: Mapping[str, tuple[int, int]]) -> None:
        crossed = False
        cost = event.cost_units or 0
        for b in self._budgets:
            for value in b.values(event.model, event.metadata):
                key = b.counter_key(value, event.timestamp)
                if key not in counters:
                    continue
                units, tokens = counters[key]
                limit = b.limit_units
                over = (limit is not None and units >= limit) or (b.max_tokens is not None and tokens >= b.max_tokens)
                label = f"{key}#{b.limit_usd}:{b.max_tokens}"
                if over:
                    with self._lock:
                        first = label not in self._crossed
                        self._crossed.add(label)
                    crossed = crossed or first
                if limit and self._alert_at and self.on_alert is not None:
                    before = units - cost
                    for fraction in self._alert_at:
                        mark = fraction * limit
                        if before < mark <= units:
                            with self._lock:
                                if (label, fraction) in self._alerted:
                                    continue
                                self._alerted.add((label, fraction))
                            self._call_user(
                                "on_alert", self.on_alert, b.label(value), fraction, from_units(units), b.limit_usd
                            )
        if crossed:
            sync_litellm_budget()
            if self.on_budget_exceeded is not None:
                self._call_user("on_budget_exceeded", self.on_budget_exceeded, self)

    def _call_user(self, what: str, fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:
            self._warn(f"callback:{what}", "tokencost: the %s callback raised %r; ignored", what, exc)

    def _on_price(self, model: str, provider: str | None, price: Price | None, reason: str | None) -> None:
        """Reprice the calls recorded while a price lookup for ``model`` was running."""
        with self._lock:
            waiting = [
                item
                for key, items in list(self._awaiting.items())
                if key[0] == model and (provider is None or key[1] == provider)
                for item in self._awaiting.pop(key)
            ]
        if price is None or not waiting:
            return
        wanted = {call_id for call_id, _, _ in waiting}
        events = self._safe_store("events", lambda: self.store.events(self.name), default=[])
        usage_of = {e.call_id: e.usage for e in events if e.call_id in wanted}
        for call_id, charges, scoped in waiting:
            usage = usage_of.get(call_id)
            if usage is None:
                continue
            cost = price.cost_units(usage)
            try:
                done = self.store.update_cost(self.name, call_id, cost, price, charges)
            except Exception as exc:
                self._warn("store:update_cost", "tokencost: could not reprice a call: %s", exc)
                continue
            if done:
                for block in scoped:
                    block.charge(cost, 0)

    def _await_returned(self) -> None:
        """Wait for the success events of calls the current thread has made (and so has returned from)."""
        if not self._pending:
            return
        try:
            asyncio.get_running_loop()
            return  # never block an event loop: its calls are recorded before they return anyway
        except RuntimeError:
            pass
        deadline = time.monotonic() + _RETURN_WAIT_S
        with self._lock:
            while self._has_returned_pending():
                left = deadline - time.monotonic()
                if left <= 0:
                    self._warn("late-events", "tokencost: litellm's success events are late; totals may lag")
                    return
                self._returned.wait(left)

    def _has_returned_pending(self) -> bool:
        """Whether a call that has returned still waits for its success event (call with ``_lock`` held).

        Calls made by this thread, or by threads that have ended, have returned; a live thread's pending call
        may still be in flight. A stream has returned once the consumer's thread ended it.
        """
        me = threading.get_ident()
        alive = {t.ident for t in threading.enumerate()} - {me}
        return any(p.thread not in alive and (not p.stream or p.ended) for p in self._pending.values())

    def _totals(self) -> Any:
        self._await_returned()
        totals = self._safe_store("totals", lambda: self.store.totals(self.name))
        if totals is not None:
            self._last_totals = totals
            return totals
        if self._last_totals is not None:
            return self._last_totals
        from tokencost.stores import Totals

        return Totals()

    def _safe_store(self, what: str, fn: Callable[[], Any], default: Any = None) -> Any:
        try:
            result = fn()
        except Exception as exc:
            self._warn(f"store:{what}", "tokencost: the store failed (%s): %s", what, exc)
            return default
        self._warn.forget(f"store:{what}")
        return result

    def _bug(self, where: str, exc: BaseException) -> None:
        self._warn(
            f"bug:{where}:{type(exc).__name__}",
            "tokencost: internal error in %s (the call goes on): %r",
            where,
            exc,
            level=logging.ERROR,
        )

    def _stream_gone(self, call_id: str) -> None:
        """A stream's logging object was collected: if it never finished, record it as incomplete."""
        with self._lock:
            pending = self._pending.get(call_id)
            if pending is None or call_id in self._seen:
                return
            self._seen[call_id] = None
            self._pending.pop(call_id, None)
            admission = self._admissions.pop(call_id, None)
        try:
            prompt = 0
            if pending.messages:
                try:
                    prompt = int(litellm.token_counter(model=pending.model, messages=pending.messages))
                except Exception:
                    prompt = 0
            usage = Usage(input=prompt)
            event = self._price_event(
                call_id, pending.model, _provider_of(pending.model), usage, dict(pending.scope), status="incomplete"
            )
            event = Event(
                event.call_id,
                event.timestamp,
                event.model,
                event.provider,
                event.usage,
                event.cost_units,
                event.price_source,
                event.price,
                0,
                event.metadata,
                "incomplete",
                "stream broken off before its end: prompt tokens estimated, output unknown",
            )
            self._commit(event, pending.budgets, admission)
        except Exception as exc:
            self._bug("broken stream", exc)
        finally:
            with self._lock:
                self._returned.notify_all()

    def _at_exit(self) -> None:
        try:
            drain_litellm_pool(2.0)
            with self._lock:
                unfinished = [call_id for call_id, p in self._pending.items() if p.stream and not p.ended]
            for call_id in unfinished:
                self._stream_gone(call_id)
            for source in self.prices.sources:
                wait = getattr(source, "wait", None)
                if callable(wait):
                    wait(2.0)
            self._safe_store("flush", lambda: self.store.flush(5.0))
            if self.print_summary and (self.request_count or self._budgets):
                from rich.console import Console

                Console(stderr=True).print(self.summary())
        except Exception as exc:
            self._bug("exit summary", exc)


def _split_model(model: str, provider: Any = None) -> tuple[str, str]:
    """Return (model, provider) as litellm names them in events: ``openai/gpt-4o`` -> (``gpt-4o``, ``openai``)."""
    try:
        name, found, _, _ = litellm.get_llm_provider(model=model, custom_llm_provider=provider or None)
        return str(name), str(found)
    except Exception:  # litellm does not know it: keep the name as given
        return model, str(provider) if provider else _provider_of(model)


def _provider_of(model: str) -> str:
    """Return the provider a model name implies (its prefix, else litellm's map), remembered per model."""
    provider = _PROVIDERS.get(model)
    if provider is None:
        if "/" in model:
            provider = model.split("/", 1)[0]
        else:
            info = model_info(model, None)
            found = info.get("litellm_provider") if info else None
            provider = found if isinstance(found, str) else "unknown"
        if len(_PROVIDERS) < 10_000:
            _PROVIDERS[model] = provider
    return provider


_PROVIDERS: dict[str, str] = {}


def _check_track_types(model: object, *counts: object) -> None:
    """Raise the TypeError that names track()'s bad argument."""
    if not isinstance(model, str) or not model:
        raise TypeError("model must be a non-empty str")
    for count, arg in zip(counts, _TRACK_COUNTS, strict=True):
        if type(count) is not int:
            raise TypeError(f"{arg} must be an int, not {type(count).__name__}")


def _check_track_counts(*counts: int) -> None:
    """Raise the ValueError that names track()'s bad count."""
    for count, arg in zip(counts, _TRACK_COUNTS, strict=True):
        if count < 0:
            raise ValueError(f"{arg} must not be negative, got {count}")
    prompt, completion, cache_read, cache_write, reasoning = counts
    if cache_read + cache_write > prompt:
        raise ValueError(
            f"prompt_tokens ({prompt}) is less than cache_read_tokens + cache_write_tokens ({cache_read + cache_write})"
        )
    raise ValueError(f"completion_tokens ({completion}) is less than reasoning_tokens ({reasoning})")


_TRACK_COUNTS = ("prompt_tokens", "completion_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")


def _litellm_tier_cost(model: str, provider: str, usage: Usage) -> int | None:
    """litellm's cost of a call above a pricing tier tokencost does not model (rounded at 1e-12 USD)."""
    try:
        prompt, completion = litellm.cost_per_token(
            model=model,
            custom_llm_provider=provider,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cache_read_input_tokens=usage.cache_read,
            cache_creation_input_tokens=usage.cache_write,
        )
    except Exception:  # litellm cannot price it either: the event keeps the base price
        return None
    return _response_cost_units(Decimal(str(prompt)) + Decimal(str(completion)))


def _response_cost_units(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return None
    amount = value if isinstance(value, Decimal) else Decimal(str(value))
    return to_units(amount) if amount.is_finite() and amount > 0 else None


def _when(value: float | str | None, name: str) -> float | None:
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return None if value is None else float(value)
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{name} must be epoch seconds or ISO-8601 text, got {value!r}") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.timezone.utc)
        return parsed.timestamp()
    raise TypeError(f"{name} must be epoch seconds or ISO-8601 text")


def _discovery_sources(cache_dir: Path, api_key: str | None) -> list[PriceSource]:
    try:
        from tokencost.pricing.linkup import discovery_sources
    except ImportError:
        return []
    return list(discovery_sources(cache_dir, api_key))

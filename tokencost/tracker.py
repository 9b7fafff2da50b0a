"""``CostTracker``: the face users hold. It prices every litellm call exactly, keeps the ledger, and refuses
calls once a budget is spent.

The work is done by its parts, each in a module named for it: ``recording`` prices and commits events,
``enforcement`` admits or refuses calls (strict reservations included), ``litellm_calls`` follows litellm calls
from set-up to their event, ``_litellm_glue`` holds the process-wide litellm hooks, ``exit_summary`` prints the
summary at exit; the litellm hooks it inherits live in ``litellm_hooks``. docs/litellm.md has the litellm facts
behind them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar, cast

from tokencost._litellm_glue import drain_litellm_pool, register, sync_litellm_budget, unregister
from tokencost.budgets import Budget, budget_lines
from tokencost.context import SCOPE
from tokencost.engine import Engine, as_budgets, check_alert_at, check_seconds, open_store, price_sources
from tokencost.events import Event
from tokencost.litellm_hooks import LitellmHooks
from tokencost.metadata import call_metadata
from tokencost.money import from_units, parse_amount
from tokencost.pricing import PriceChain, PriceSource
from tokencost.providers import provider_of
from tokencost.scoped import ACTIVE_BUDGETS
from tokencost.stores import Store, Totals
from tokencost.track_args import check_track_counts, read_timestamp, track_usage
from tokencost.usage import Usage
from tokencost.when import parse_when

if TYPE_CHECKING:
    from tokencost.budget_line import BudgetLine
    from tokencost.reports import Summary
    from tokencost.response_cache import CacheStats
    from tokencost.typing import Money, OnStoreError, ReportWindow
    from tokencost.webhooks import Webhook

__all__ = ["CostTracker"]

_C = TypeVar("_C")

# A reservation of a strict budget expires after this long without settling (a crashed worker).
_RESERVATION_TTL_S = 900.0
_ZERO = 0  # the default of track()'s other dimensions, compared by identity on its fast path
# The bound on one store round trip before on_store_error applies (admission reads a counter or two).
_STORE_TIMEOUT_S = 0.5


class CostTracker(LitellmHooks):
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
        sources: your own price sources (objects with a ``name`` and ``lookup(model, provider) -> Price | None``,
            see ``tokencost.pricing.PriceSource``), asked after ``prices=`` and before litellm's map.
        alert_at: budget fractions (e.g. ``(0.5, 0.8, 1.0)``) at which ``on_alert`` is called and
            ``alert_webhook`` is posted to.
        on_alert: ``fn(scope, fraction, spent, limit)``, once per threshold per scope and window.
        alert_webhook: an ``http(s)://`` URL (or a ``tokencost.webhooks.Webhook`` for its options) that each
            alert is posted to as JSON (Slack's ``{"text": ...}`` for a ``hooks.slack.com`` URL), from a thread
            of its own: never blocking a call; bounded timeout and retries; failures logged once, never raised.
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
        budget: Money | None = None,
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
        sources: Iterable[PriceSource] = (),
        alert_at: Sequence[float] = (),
        on_alert: Callable[[str, float, Decimal, Decimal], None] | None = None,
        alert_webhook: str | Webhook | None = None,
        on_store_error: OnStoreError = "allow",
        clock: Callable[[], float] | None = None,
        reservation_ttl: float = _RESERVATION_TTL_S,
        store_timeout: float | None = _STORE_TIMEOUT_S,
    ) -> None:
        super().__init__()
        if not isinstance(name, str) or not name:
            raise ValueError("name must be a non-empty str")
        if on_store_error not in ("allow", "refuse"):
            raise ValueError(f"on_store_error must be 'allow' or 'refuse', got {on_store_error!r}")
        ttl = check_seconds(reservation_ttl, "reservation_ttl")
        self.store_timeout = None if store_timeout is None else check_seconds(store_timeout, "store_timeout")
        alerts = check_alert_at(alert_at)
        webhook = None
        if alert_webhook is not None:
            from tokencost.webhooks import as_webhook  # only a tracker that posts alerts imports webhooks

            webhook = as_webhook(alert_webhook)
        if webhook is not None and not alerts:
            raise ValueError("alert_webhook needs alert_at: the budget fractions at which to post, such as (0.8,)")
        # A unique public attribute: litellm de-duplicates loggers by class and public attributes.
        self.tracker_id = uuid.uuid4().hex
        self.name = name
        self.print_summary = bool(print_summary)
        self.on_budget_exceeded = on_budget_exceeded
        self._limit = parse_amount(budget, "budget")
        self._budgets = as_budgets(budget, budgets)
        self._clock = clock or time.time
        self.store = open_store(store, self.store_timeout, clock)
        # False turns discovery off even when LINKUP_API_KEY is set (a server facing untrusted model names).
        if linkup_api_key is True or not isinstance(linkup_api_key, (str, bool, type(None))):
            raise TypeError("linkup_api_key must be a str, None or False")
        linkup_key = None if linkup_api_key is False else (linkup_api_key or os.environ.get("LINKUP_API_KEY") or None)
        self.engine = Engine(
            self.store,
            name,
            self._budgets,
            self._clock,
            price_sources(prices, sources, price_cache_dir, linkup_key, self._clock),
            owner=self,
            on_crossed=self._on_crossed,
            alert_at=alerts,
            on_alert=on_alert,
            alert_webhook=webhook,
            raise_on_budget=bool(raise_on_budget),
            on_store_error=on_store_error,
            reservation_ttl=ttl,
            limit=self._limit,
            id_prefix=f"t{self.tracker_id[:12]}",
        )
        # The parts (internal: their names may change). They share the ledger; none reaches into another.
        self.ledger, self.recorder = self.engine.ledger, self.engine.recorder
        self.enforcer, self.calls = self.engine.enforcer, self.engine.calls
        self._id_prefix, self._sequence = self.engine.id_prefix, self.engine.sequence
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
    def cache_stats(self) -> CacheStats:
        """Response caching: ``hits`` and ``saved`` (USD) of the ledger (litellm's cache and the wrapped clients'),
        ``misses`` of the wrapped clients' caches in this process."""
        from tokencost.response_cache import cache_stats

        return cache_stats(self)

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
        """Return recorded events, oldest first, of ``[since, until)``: epoch seconds, ISO-8601 text, ``"7d"``,
        ``"yesterday"``... (``tokencost.when``); a date alone as ``until`` includes that whole day."""
        start, stop = self._bound(since, "since"), self._bound(until, "until")
        self.calls.await_returned()
        return cast(
            list[Event],
            self.ledger.safe("events", lambda: self.store.events(self.name, start, stop, model, limit), default=[]),
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
        self.calls.await_returned()
        groups = self.ledger.safe("aggregate", lambda: self.store.aggregate(self.name, key), default=[])
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
        self.calls.await_returned()
        return cast(
            "list[BudgetLine]",
            self.ledger.safe(
                "counters", lambda: budget_lines(self.store, self.name, self._budgets, self._clock()), default=[]
            ),
        )

    def summary(self, window: ReportWindow | None = None) -> Summary:
        """Return a rich renderable summary (also plain data): totals, per model, budgets, unpriced, savings.

        ``window`` is None (everything), ``"day"`` or ``"month"`` (the current calendar window, UTC).
        """
        from tokencost.reports import build_summary

        self.calls.await_returned()
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
        return export_events(self.store, self.name, os.fspath(path), fmt, since=self._bound(since, "since"))

    # -- methods ---------------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget every recorded call and budget counter of this ledger (calls are let through again)."""
        self.calls.await_returned()
        self.ledger.safe("reset", lambda: self.store.reset(self.name))
        self.recorder.reset()
        sync_litellm_budget()
        from tokencost.response_cache import reset_stats

        reset_stats(self)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every call that has returned is recorded and the store made it durable.

        Returns ``False`` when ``timeout`` (seconds) ran out first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        drain_litellm_pool(timeout)
        return self.engine.flush(None if deadline is None else max(0.0, deadline - time.monotonic()))

    async def aflush(self, timeout: float | None = None) -> bool:
        """Flush from async code: also drains litellm's async logging worker of this event loop."""
        try:
            from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER

            await asyncio.wait_for(GLOBAL_LOGGING_WORKER.flush(), timeout)
        except Exception as exc:
            self.ledger.warn("aflush", "tokencost: could not drain litellm's async logging worker: %s", exc)
        return await asyncio.to_thread(self.flush, timeout)

    def close(self) -> None:
        """Stop tracking, flush and close the store, give queued alerts up to 5 s to reach the webhook; return
        litellm to the state this tracker found.

        The tracker leaves every litellm callback list; once no tracker is left, tokencost's pre-call rule, its
        filter on the ``LiteLLM`` logger and its patches of litellm's logging executor and worker are removed,
        and ``litellm.max_budget`` / ``_current_cost`` get back the values they had before a spent ``budget=``
        was mirrored there. A closed tracker never comes back into litellm's lists.
        """
        if self.closed:
            return
        self.engine.stop()
        try:
            unregister(self)
        except Exception as exc:
            self.ledger.bug("close", exc)
        self.engine.close()

    @property
    def prices(self) -> PriceChain:
        """The price chain every call is priced through (first source that knows the model wins)."""
        return self.recorder.prices

    @prices.setter
    def prices(self, chain: PriceChain) -> None:
        if not isinstance(chain, PriceChain):
            raise TypeError(f"prices must be a PriceChain, not {type(chain).__name__}")
        self.recorder.use_prices(chain)

    # -- settings that may change after construction (held by the part that uses them) ----------------------------
    @property
    def raise_on_budget(self) -> bool:
        """Refuse calls once a budget is spent (else budgets are tracked and reported only)."""
        return self.enforcer.raise_on_budget

    @raise_on_budget.setter
    def raise_on_budget(self, value: bool) -> None:
        self.enforcer.raise_on_budget = bool(value)

    @property
    def on_store_error(self) -> OnStoreError:
        """``"allow"`` or ``"refuse"`` calls while the store cannot be checked."""
        return self.enforcer.on_store_error

    @on_store_error.setter
    def on_store_error(self, value: OnStoreError) -> None:
        if value not in ("allow", "refuse"):
            raise ValueError(f"on_store_error must be 'allow' or 'refuse', got {value!r}")
        self.enforcer.on_store_error = value

    @property
    def reservation_ttl(self) -> float:
        """Seconds a strict reservation of a call that never settles is held."""
        return self.enforcer.reservation_ttl

    @property
    def on_alert(self) -> Callable[[str, float, Decimal, Decimal], None] | None:
        """``fn(scope, fraction, spent, limit)``, called once per threshold per scope and window."""
        return self.recorder.on_alert

    @on_alert.setter
    def on_alert(self, fn: Callable[[str, float, Decimal, Decimal], None] | None) -> None:
        self.recorder.on_alert = fn

    @property
    def alert_webhook(self) -> Webhook | None:
        """The webhook alerts are posted to (its ``host``, ``delivered`` and ``failed`` counts), or None."""
        return self.recorder.webhook

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called: the tracker records and refuses nothing more."""
        return self.calls.closed

    def release_reservations(self, older_than: float | None = None) -> int:
        """Drop the strict reservations held on this ledger for longer than ``older_than`` seconds.

        A reservation is held while its call is in flight; one left by a worker that crashed expires after
        ``reservation_ttl`` on its own. ``older_than=None`` uses ``reservation_ttl``; ``0`` drops every open
        reservation (only when no call is in flight anywhere). Returns how many were dropped.
        """
        return self.enforcer.release_reservations(older_than)

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
        *,
        audio_input_tokens: int = 0,
        audio_output_tokens: int = 0,
        cache_write_1h_tokens: int = 0,
        image_input_tokens: int = 0,
        service_tier: str | None = None,
        web_search_requests: int = 0,
        timestamp: float | dt.datetime | None = None,
    ) -> Event:
        """Record a call made outside litellm and return the recorded ``Event`` (it reads like a ``history``
        entry too: ``event["cost"] == event.cost``). ``tokencost.track_args`` says what each argument means.

        Counts follow OpenAI's convention: ``prompt_tokens`` includes the cache reads and writes and the audio
        and image input tokens, ``completion_tokens`` the reasoning and audio output tokens;
        ``cache_write_1h_tokens`` is the 1-hour part of ``cache_write_tokens``. ``service_tier``: ``"flex"``,
        ``"priority"``, ``"batch"`` or None (standard). ``timestamp``: the call's time (epoch seconds or a
        ``datetime``), for dated prices and the event's time.

        Example: ``tracker.track("gpt-4o", 10_000, 500, cache_read_tokens=8_000).cost == Decimal("0.02")``

        Raises:
            TypeError: for a model that is not a str, counts that are not ints, a bad tier or timestamp type.
            ValueError: for negative counts, parts larger than the whole, an unknown service tier.
        """
        # The common call, checked inline (track_usage() is its plain reference: tests compare the two). The other
        # dimensions are left out: each is the int 0 object itself (``is``: a 0.0 or False takes track_usage()).
        if (
            type(prompt_tokens) is type(completion_tokens) is type(cache_read_tokens) is int
            and type(cache_write_tokens) is type(reasoning_tokens) is int
            and type(model) is str  # a str subclass takes the slow check, which accepts it
            and model
            and service_tier is None  # the other dimensions: checked and split by track_usage()
            and audio_input_tokens is audio_output_tokens is cache_write_1h_tokens is _ZERO
            and image_input_tokens is web_search_requests is _ZERO
        ):
            uncached = prompt_tokens - cache_read_tokens - cache_write_tokens
            visible = completion_tokens - reasoning_tokens
            if uncached < 0 or visible < 0 or cache_read_tokens < 0 or cache_write_tokens < 0 or reasoning_tokens < 0:
                check_track_counts(
                    prompt_tokens, completion_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens
                )
            usage = Usage(uncached, cache_read_tokens, cache_write_tokens, visible, reasoning_tokens)
        else:
            usage = track_usage(
                model, prompt_tokens, completion_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens,
                audio_input_tokens, audio_output_tokens, cache_write_1h_tokens, image_input_tokens,
                web_search_requests, service_tier,
            )  # fmt: skip
        if provider is not None and not isinstance(provider, str):
            raise TypeError("provider must be a str or None")
        if metadata is not None and not isinstance(metadata, Mapping):
            raise TypeError("metadata must be a mapping or None")
        when = None if timestamp is None else read_timestamp(timestamp)
        scope = SCOPE.get()
        # record_usage(), one layer less (this is the hot path of code that records many calls).
        event = self.recorder.price_event(
            f"{self._id_prefix}-{next(self._sequence)}",
            model,
            provider or provider_of(model),
            usage,
            call_metadata(scope, metadata) if metadata or scope else {},
            when,  # positional: cheaper than a keyword
        )
        return self.recorder.commit(event, ACTIVE_BUDGETS.get(), None)

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
        """Price and record normalized usage (``None`` records the call unpriced with ``reason``).

        The building block of ``track``, ``track_response`` and the SDK wrappers. ``timestamp``: the call's
        time (epoch seconds or a ``datetime``; default now), for dated prices and the event's time.
        """
        return self.engine.record_usage(
            model, usage, provider=provider, metadata=metadata, call_id=call_id, reason=reason, status=status,
            admission=admission, timestamp=timestamp,
        )  # fmt: skip

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

    def wrap_openai(
        self, client: _C, *, provider: str = "openai", estimate_missing: bool = False, cache: Any = None
    ) -> _C:
        """Return ``client`` (an ``openai.OpenAI`` or ``AsyncOpenAI``) with every call priced and budgeted.

        ``cache``: ``"memory"``, ``"disk"``, a folder path or a litellm ``Cache`` answers identical calls for free.
        """
        from tokencost.wrappers import wrap_openai

        return wrap_openai(self, client, provider=provider, estimate_missing=estimate_missing, cache=cache)

    def wrap_anthropic(
        self, client: _C, *, provider: str = "anthropic", estimate_missing: bool = False, cache: Any = None
    ) -> _C:
        """Return ``client`` (an ``anthropic.Anthropic`` or ``AsyncAnthropic``) with every call priced and budgeted.

        ``cache`` works as in ``wrap_openai``.
        """
        from tokencost.wrappers import wrap_anthropic

        return wrap_anthropic(self, client, provider=provider, estimate_missing=estimate_missing, cache=cache)

    def estimate_cost(self, model: str, messages: Any = None, max_tokens: int | None = None) -> Decimal | None:
        """Estimate a call's cost in USD before making it: prompt counted by litellm's token counter, plus
        ``max_tokens`` at the output price (the worst case). None when no source prices the model.
        """
        if not isinstance(model, str) or not model:
            raise TypeError("model must be a non-empty str")
        units = self.enforcer.estimate_units(model, provider_of(model), messages, max_tokens)
        return None if units is None else from_units(units[0])

    def can_afford(self, model: str, messages: Any = None, max_tokens: int | None = None) -> bool:
        """Answer, without sending anything, whether a call this size fits every budget that applies now.

        Counts what is spent and what calls in flight hold (strict reservations); ``max_tokens`` None counts
        the prompt alone.
        """
        return self.enforcer.can_afford(model, provider_of(model), messages, max_tokens)

    # -- internals -------------------------------------------------------------------------------------------
    def _bound(self, value: object, name: str) -> float | None:
        """Read a ``since``/``until`` argument with the one time parser, relative times on this tracker's clock."""
        if value is not None and not isinstance(value, (int, float, str, dt.date)):
            raise TypeError(f"{name} must be epoch seconds, a datetime or text, not {type(value).__name__}")
        return parse_when(value, name, end=name == "until", now=self._clock())

    def _on_crossed(self) -> None:
        """A budget scope was crossed: mirror a spent ``budget=`` into litellm, tell the user once."""
        sync_litellm_budget()
        if self.on_budget_exceeded is not None:
            self.ledger.call_user("on_budget_exceeded", self.on_budget_exceeded, self)

    def _totals(self) -> Totals:
        return self.engine.totals()

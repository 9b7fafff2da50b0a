"""Recording: price a call's usage through the price chain, commit the event, charge its budgets, reprice later.

Every entry point ends here (``track()``, ``track_response()``, the SDK wrappers, litellm's events). An event no
real call can produce is recorded unpriced with the reason; a call whose price lookup is still running is
recorded ``pending`` and repriced when the price arrives; a strict budget keeps the worst case of a call whose
cost is unknown.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tokencost.enforcement import Admission
from tokencost.events import Event
from tokencost.ledger import Ledger
from tokencost.money import from_units, to_units
from tokencost.pricing import Price, PriceChain
from tokencost.stores import Check
from tokencost.stores.base import plausible_event
from tokencost.usage import Usage

if TYPE_CHECKING:
    from tokencost.scoped import ScopedBudget
    from tokencost.webhooks import Webhook

__all__ = ["Recorder"]

# How long a strict budget holds the worst case of a call whose cost is unknown: past any budget window.
UNKNOWN_HOLD_S = 10 * 366 * 86_400.0


class Recorder:
    """Price and commit events of one ledger; notice budget crossings and alert thresholds.

    Args:
        ledger: the tracker's ledger and budgets.
        prices: the price chain (its listener reprices pending events).
        on_crossed: called once each time a budget scope is crossed.
        alert_at: budget fractions at which ``on_alert(scope, fraction, spent, limit)`` is called and
            ``webhook`` is sent the alert (queued: its own thread posts it).
        owner: the tracker whose ``budget()`` blocks are charged (blocks naming another tracker are not).
    """

    def __init__(
        self,
        ledger: Ledger,
        prices: PriceChain,
        on_crossed: Callable[[], None],
        *,
        alert_at: tuple[float, ...] = (),
        on_alert: Callable[[str, float, Decimal, Decimal], None] | None = None,
        webhook: Webhook | None = None,
        owner: object = None,
    ) -> None:
        self.ledger = ledger
        self.on_crossed = on_crossed
        self.alert_at = alert_at
        self.on_alert = on_alert
        self.webhook = webhook
        self.owner = owner
        self._lock = threading.Lock()  # guards _awaiting, _crossed, _alerted
        self._awaiting: dict[tuple[str, str], list[tuple[str, tuple[str, ...], tuple[ScopedBudget, ...]]]] = {}
        self._crossed: set[str] = set()
        self._alerted: set[tuple[str, float]] = set()
        self.use_prices(prices)

    def use_prices(self, prices: PriceChain) -> None:
        """Price through ``prices`` from now on (and reprice pending calls when it finds a price)."""
        self.prices = prices
        prices.add_listener(self.reprice)

    def reset(self) -> None:
        """Forget crossings, alerts and calls waiting for a price (the ledger was reset)."""
        with self._lock:
            self._crossed.clear()
            self._alerted.clear()
            self._awaiting.clear()

    def lookup(self, model: str, provider: str | None, at: float | None = None) -> Price | None:
        """The price of a model (at the time ``at``, default now), or None (a failing source is logged once)."""
        try:
            return self.prices.lookup(model, provider, at)
        except Exception as exc:
            self.ledger.warn(f"source:{model}", "tokencost: a price source failed for %s: %s", model, exc)
            return None

    # -- pricing ----------------------------------------------------------------------------------------------
    def price_event(
        self,
        call_id: str,
        model: str,
        provider: str,
        usage: Usage | None,
        metadata: dict[str, Any],
        timestamp: float | None = None,
        *,
        response_cost: Any = None,
        cache_hit: bool = False,
        status: str = "ok",
        reason: str | None = None,
    ) -> Event:
        """Return the event of one call, priced from its usage (``None`` usage: unpriced with ``reason``).

        ``timestamp``: when the call was made (epoch seconds; default now): the event's time, and the time a
        dated price (genai-prices) is read at.
        """
        now = self.ledger.clock() if timestamp is None else timestamp
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
        if usage.billed_units is not None and not cache_hit:
            # The provider's own bill (OpenRouter's usage.cost): what the call cost, whatever a price list says.
            return Event(
                call_id, now, model, provider, usage, usage.billed_units, "provider", None, 0, metadata, status,
                reason, breakdown={"total": usage.billed_units},
            )  # fmt: skip
        try:  # self.lookup(), inlined: this is every call's path
            price = self.prices.lookup(model, provider, timestamp)
        except Exception:
            price = self.lookup(model, provider, timestamp)  # logs the failing source once
        if price is not None and not cache_hit:
            billed = price.for_call(usage)
            if isinstance(billed, str):
                # The call has a dimension our price has no figure for: never bill it at the base price.
                return self._unmodeled(call_id, now, model, provider, usage, metadata, status, billed, response_cost)
            price = billed
            tier = price.tier_above_tokens
            if tier is not None and usage.prompt_tokens > tier:
                if price.above_tier is not None:
                    price = price.above_tier  # a long prompt: the whole call is billed at the tier's prices
                else:
                    # Several tiers tokencost does not model: litellm's own figure.
                    tier_cost = response_cost_units(response_cost) or _litellm_tier_cost(model, provider, usage)
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
            hit_price = price.for_call(usage) if price is not None else None
            saved = hit_price.cost_units(usage) if isinstance(hit_price, Price) else 0
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
        litellm_cost = response_cost_units(response_cost)
        if litellm_cost is not None:
            # Pricing tokencost does not model (per-image or per-second prices): litellm's own figure.
            return Event(
                call_id, now, model, provider, usage, litellm_cost, "response_cost", None, 0, metadata, status,
                reason="priced by litellm (no per-token price known)", breakdown={"total": litellm_cost},
            )  # fmt: skip
        pending = self.prices.is_pending(model, provider)
        self.ledger.warn(
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

    def _unmodeled(
        self,
        call_id: str,
        now: float,
        model: str,
        provider: str,
        usage: Usage,
        metadata: dict[str, Any],
        status: str,
        why: str,
        response_cost: Any,
    ) -> Event:
        """The event of a call our price cannot bill (``why``): litellm's ``response_cost``, else unpriced."""
        litellm_cost = response_cost_units(response_cost)
        if litellm_cost is not None:
            return Event(
                call_id, now, model, provider, usage, litellm_cost, "response_cost", None, 0, metadata, status,
                reason=f"priced by litellm ({why})", breakdown={"total": litellm_cost},
            )  # fmt: skip
        self.ledger.warn(
            f"unmodeled:{model}:{why}",
            "tokencost: cannot price calls of %r (%s) and litellm gave no cost; they are recorded unpriced",
            model,
            why,
        )
        return Event(
            call_id, now, model, provider, usage, None, metadata=metadata, status=status,
            reason=f"cannot price this call: {why}",
        )  # fmt: skip

    # -- committing -------------------------------------------------------------------------------------------
    def commit(self, event: Event, scoped: Sequence[ScopedBudget], admission: Admission | None) -> Event:
        """Record an event, charge its budgets and scoped blocks, and return it as recorded.

        An event no real call can produce (over ``MAX_TOKENS`` tokens in a bucket, an amount out of range) is
        recorded unpriced with the reason instead, so it never reaches a total or blocks a store.
        """
        ledger = self.ledger
        checked = plausible_event(event)
        if checked is not event:
            ledger.warn(f"implausible:{event.model}", "tokencost: %s (model %s)", checked.reason, event.model)
            event = checked
        charges = ledger.charges(event) if ledger.budgets else ()
        reservation = admission.reservation if admission is not None else None
        if admission is not None and reservation is not None and event.cost_units is None and event.status != "pending":
            event = self._hold_unknown(event, admission)
        try:
            counters = ledger.store.record(ledger.name, event, charges, reservation)
        except Exception as exc:
            ledger.warn("store-record", "tokencost: could not record a call in the store: %s", exc)
            counters = {}
        for block in scoped:
            if block.tracker is None or block.tracker is self.owner:
                block.charge(event.cost_units, event.tokens)
        if event.status == "pending":
            with self._lock:
                self._awaiting.setdefault((event.model, event.provider), []).append(
                    (event.call_id, charges, tuple(scoped))
                )
        if counters and (event.cost_units or event.tokens):
            self._check_crossings(event, counters)
        return event

    def _hold_unknown(self, event: Event, admission: Admission) -> Event:
        """Keep a strict budget's worst case for a call whose cost is unknown (a response without usage).

        A strict budget is never exceeded, so what the call may have cost stays held on its counters, as the
        reservation ``unknown-cost:<call id>`` (listed by ``tokencost reservations``; an operator who learns the
        real cost can release it), until the budget's window ends.
        """
        ledger = self.ledger
        keep = f"unknown-cost:{event.call_id}"
        checks = [Check(key) for key in admission.keys]
        units, tokens = admission.exact_worst()
        failed = ledger.safe(
            "reserve", lambda: ledger.store.reserve(ledger.name, keep, checks, units, tokens, UNKNOWN_HOLD_S), default=1
        )
        if failed is not None:
            return event
        note = f"strict budgets hold its worst case (${from_units(units)}) as reservation {keep}"
        return dataclasses.replace(event, reason=f"{event.reason}; {note}" if event.reason else note)

    def _check_crossings(self, event: Event, counters: Mapping[str, tuple[int, int]]) -> None:
        crossed = False
        cost = event.cost_units or 0
        for b in self.ledger.budgets:
            for value in b.values(event.model, event.metadata):
                key = b.counter_key(value, event.timestamp)
                if key not in counters:
                    continue
                units, tokens = counters[key]
                limit = b.limit_units
                over = (limit is not None and units >= limit) or (b.max_tokens is not None and tokens >= b.max_tokens)
                label = f"{key}#{b.limit_usd}:{b.max_tokens}" if over or self.alert_at else ""
                if over:
                    with self._lock:
                        first = label not in self._crossed
                        self._crossed.add(label)
                    crossed = crossed or first
                if limit and self.alert_at and (self.on_alert is not None or self.webhook is not None):
                    before = units - cost
                    for fraction in self.alert_at:
                        mark = fraction * limit
                        if before < mark <= units:
                            with self._lock:
                                if (label, fraction) in self._alerted:
                                    continue
                                self._alerted.add((label, fraction))
                            self._alert(b.label(value), fraction, from_units(units), b.limit_usd)
        if crossed:
            self.on_crossed()

    def _alert(self, scope: str, fraction: float, spent: Decimal, limit: Decimal | None) -> None:
        """Tell ``on_alert`` and queue the alert for the webhook (outside the lock; neither may raise here)."""
        if limit is None:
            return
        if self.on_alert is not None:
            self.ledger.call_user("on_alert", self.on_alert, scope, fraction, spent, limit)
        webhook = self.webhook
        if webhook is not None:
            try:
                webhook.alert(self.ledger.name, scope, fraction, spent, limit, self.ledger.clock())
            except Exception as exc:
                self.ledger.bug("alert webhook", exc)

    # -- repricing --------------------------------------------------------------------------------------------
    def reprice(self, model: str, provider: str | None, price: Price | None, reason: str | None) -> None:
        """Reprice the calls recorded while a price lookup for ``model`` was running (the chain's listener)."""
        with self._lock:
            waiting = [
                item
                for key, items in list(self._awaiting.items())
                if key[0] == model and (provider is None or key[1] == provider)
                for item in self._awaiting.pop(key)
            ]
        if price is None or not waiting:
            return
        ledger = self.ledger
        wanted = {call_id for call_id, _, _ in waiting}
        events = ledger.safe("events", lambda: ledger.store.events(ledger.name), default=[])
        usage_of = {e.call_id: e.usage for e in events if e.call_id in wanted}
        for call_id, charges, scoped in waiting:
            usage = usage_of.get(call_id)
            if usage is None:
                continue
            billed = price.for_call(usage)
            if isinstance(billed, str):
                continue  # the price lacks a dimension of this call: it stays unpriced
            cost = billed.cost_units(usage)
            try:
                done = ledger.store.update_cost(ledger.name, call_id, cost, billed, charges)
            except Exception as exc:
                ledger.warn("store:update_cost", "tokencost: could not reprice a call: %s", exc)
                continue
            if done:
                for block in scoped:
                    block.charge(cost, 0)


def response_cost_units(value: Any) -> int | None:
    """litellm's ``response_cost`` (a float) as pico-dollars, or None when it is missing, zero or not a number.

    ``value`` may be a function of no arguments that gives it, asked only when the figure is needed (litellm
    1.98 sets ``response_cost`` after tokencost records a sync call; it is then computed from the response).
    """
    if callable(value):
        try:
            value = value()
        except Exception:  # litellm cannot price it either
            return None
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return None
    amount = value if isinstance(value, Decimal) else Decimal(str(value))
    return to_units(amount) if amount.is_finite() and amount > 0 else None


def _litellm_tier_cost(model: str, provider: str, usage: Usage) -> int | None:
    """litellm's cost of a call above a pricing tier tokencost does not model (rounded at 1e-12 USD)."""
    import litellm

    try:
        prompt, completion = litellm.cost_per_token(
            model=model,
            custom_llm_provider=provider,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cache_read_input_tokens=usage.cache_read,
            cache_creation_input_tokens=usage.cache_write,
            service_tier=usage.service_tier,
        )
    except Exception:  # litellm cannot price it either: the event keeps the base price
        return None
    return response_cost_units(Decimal(str(prompt)) + Decimal(str(completion)))

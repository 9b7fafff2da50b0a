"""Admission: check every budget a call falls in before it is sent, and hold a strict budget's worst case.

One admit path serves every entry point (litellm's hooks, the SDK wrappers) and ``can_afford``. A refusal is
always a ``BudgetExceededError``; a store that cannot be checked under ``on_store_error="refuse"`` raises its
subclass ``StoreUnavailableError``. Store calls go through a circuit breaker, so a store that is down costs one
``store_timeout``, not one per call.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from tokencost._budget_error import StoreUnavailableError
from tokencost.breaker import CircuitBreaker
from tokencost.budgets import Budget, counter_checks
from tokencost.context import current_scope
from tokencost.errors import BudgetExceededError
from tokencost.ledger import Ledger
from tokencost.metadata import call_metadata
from tokencost.money import from_units, to_units
from tokencost.pricing import Price
from tokencost.pricing.litellm_map import model_info
from tokencost.providers import provider_of, split_model
from tokencost.scoped import active_budgets
from tokencost.stores import Check
from tokencost.usage import read_field

if TYPE_CHECKING:
    from tokencost.typing import OnStoreError
    from tokencost.worst_case import WorstCase, WorstCaseRequest

__all__ = ["Admission", "Enforcer"]

_T = TypeVar("_T")


@dataclass(eq=False)
class Admission:
    """A call let through the budgets; ``reservation`` is held on the store under strict budgets."""

    reservation: str | None = None
    created: float = field(default_factory=time.monotonic)
    worst_units: int | None = None  # what the reservation holds (kept when the call's cost is unknown)
    worst_tokens: int = 0
    keys: tuple[str, ...] = ()  # the strict budgets' counters it is held on
    # When the reservation holds the quick bound of the prompt: the exact worst case, counted only when needed.
    count_exactly: Callable[[], WorstCase] | None = None

    def exact_worst(self) -> tuple[int, int]:
        """The call's worst case counted exactly (pico-dollars, tokens), to keep when its cost is unknown."""
        if self.count_exactly is not None:
            try:
                exact = self.count_exactly()
                return exact.units or 0, exact.tokens
            except Exception:  # the bound held is a worst case too
                pass
        return self.worst_units or 0, self.worst_tokens


class Enforcer:
    """Refuse calls whose budgets are spent; reserve, settle and release strict budgets' worst cases.

    Args:
        ledger: the tracker's ledger and budgets.
        lookup: the price of ``(model, provider)``, or None.
        raise_on_budget: refuse at all (else budgets are only tracked).
        on_store_error: ``"allow"`` or ``"refuse"`` calls while the store cannot be checked.
        reservation_ttl: seconds a reservation of a call that never settles is held.
        limit: the tracker-wide ``budget=``, named by ``StoreUnavailableError``.
    """

    def __init__(
        self,
        ledger: Ledger,
        lookup: Callable[[str, str | None], Price | None],
        *,
        raise_on_budget: bool,
        on_store_error: OnStoreError,
        reservation_ttl: float,
        limit: Decimal | None,
    ) -> None:
        self.ledger = ledger
        self.lookup = lookup
        # Waits until the calling thread's earlier calls are recorded (set by the tracker: they count first).
        self.await_returned: Callable[[], None] = lambda: None
        self.raise_on_budget = raise_on_budget
        self.on_store_error = on_store_error
        self.reservation_ttl = reservation_ttl
        self.limit = limit
        self.closed = False
        self.owner: object = None  # the tracker whose budget() blocks apply (blocks naming another are skipped)
        self.breaker = CircuitBreaker(clock=ledger.clock)
        self._lock = threading.Lock()  # guards _admissions
        self._admissions: dict[str, Admission] = {}
        # Reservation ids: one random prefix per enforcer and a counter. Unique across trackers and processes
        # sharing a store, and no os.urandom per call (it lets go of the GIL: the caller then waits for
        # litellm's logging thread, about 0.3 ms a call in bench_tracker.py).
        self._reservation_prefix = uuid.uuid4().hex
        self._reservation_numbers = itertools.count(1)

    # -- admission ------------------------------------------------------------------------------------------
    def idle(self) -> bool:
        """Whether no budget can refuse a call now: no ledger budget enforced and no ``budget()`` block open."""
        return self.closed or ((not self.raise_on_budget or not self.ledger.budgets) and not active_budgets())

    def admit_kwargs(self, kwargs: Mapping[str, Any], args: Sequence[Any] = ()) -> None:
        """Admit a call from its litellm kwargs (raises ``BudgetExceededError`` to refuse it)."""
        if self.idle():  # nothing to check: the call's arguments are not read
            return
        try:
            call_id = kwargs.get("litellm_call_id")
            model = kwargs.get("model") or (args[0] if args else "")
            messages = kwargs.get("messages") or (args[1] if len(args) > 1 else None)
            params = kwargs.get("litellm_params")
            raw_meta = kwargs.get("metadata") or read_field(params, "metadata") or kwargs.get("litellm_metadata")
            metadata = call_metadata(current_scope(), raw_meta, kwargs.get("user"))
            model, provider = split_model(str(model), kwargs.get("custom_llm_provider"))
            max_tokens = kwargs.get("max_tokens") or kwargs.get("max_completion_tokens")
            request = None
            if any(b.strict for b in self.ledger.budgets):  # only a strict budget reserves the worst case
                from tokencost.worst_case import WorstCaseRequest

                request = WorstCaseRequest.from_kwargs(kwargs)
        except Exception as exc:
            self.ledger.bug("admit", exc)
            call_id, model, messages, metadata, provider, max_tokens = None, "", None, current_scope(), None, None
            request = None
        self.admit(
            str(model), provider, metadata, call_id=call_id, messages=messages, max_tokens=max_tokens, request=request
        )

    def check_deployment(self, deployment: Mapping[str, Any]) -> None:
        """Refuse a sync Router call (litellm's ``pre_call_check``) whose tracker-wide or ``scope()`` budget is spent.

        Only a check, nothing reserved: litellm admits the call again, with its arguments and call id, when it
        sets it up.
        """
        params = deployment.get("litellm_params") if isinstance(deployment, Mapping) else None
        model = str((params.get("model") if isinstance(params, Mapping) else getattr(params, "model", None)) or "")
        self.admit(model, provider_of(model), current_scope(), call_id=None, reserve=False)

    def admit(
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
    ) -> Admission | None:
        """Check every budget that applies to this call; reserve under strict budgets. Raise to refuse.

        ``reserve=False`` only checks (a hook that cannot tie a reservation to the call, such as the Router's
        ``pre_call_check``: the call is admitted again, with its arguments, when litellm sets it up).
        """
        if self.closed:
            return None
        self.await_returned()  # the thread's earlier calls count before this one is checked
        if call_id is not None:
            with self._lock:
                if call_id in self._admissions:
                    return self._admissions[call_id]
        for scoped in active_budgets():
            if scoped.tracker is None or scoped.tracker is self.owner:
                scoped.check()
        ledger = self.ledger
        if not self.raise_on_budget or not ledger.budgets:
            return None
        checks = counter_checks(ledger.budgets, model, metadata, ledger.clock())
        if not checks:
            return None
        try:
            counters = self.breaker.call(lambda: ledger.store.counters(ledger.name, list(checks)))
        except Exception as exc:
            self._store_down(exc)
            return None
        for key, (b, value) in checks.items():
            units, tokens, reserved = counters.get(key, (0, 0, 0))
            if (b.limit_units is not None and units >= b.limit_units) or (
                b.max_tokens is not None and tokens >= b.max_tokens
            ):
                raise _refusal(b, value, units, tokens, reserved)
        # A money budget that refuses unknown costs refuses a model no source prices (token limits need no price).
        refusing = [(key, b, v) for key, (b, v) in checks.items() if b.unpriced == "refuse" and b.limit_usd is not None]
        if refusing and self.lookup(model, provider) is None:
            key, b, value = refusing[0]
            units, tokens, reserved = counters.get(key, (0, 0, 0))
            detail = f"the budget refuses calls of unknown cost (unpriced='refuse'), and no source prices {model!r}"
            raise _refusal(b, value, units, tokens, reserved, detail)
        strict = {key: (b, value) for key, (b, value) in checks.items() if b.strict}
        if not strict or not reserve:
            return None
        from tokencost.worst_case import WorstCaseRequest  # only strict budgets need it

        request = request or WorstCaseRequest()
        # A small plain-text prompt is first bounded by its size (no tokenizer run: most of a strict budget's cost
        # per call); only when that does not fit is it counted exactly, so a call is refused on the exact count.
        # The bound is used only while the budgets have room for QUICK_ROOM such calls: near a limit every call
        # reserves its exact count, so what a strict budget leaves unused at its end does not grow.
        quick: WorstCase | None = self.worst_case(model, provider, messages, max_tokens, request, quick=True)
        if quick is not None and not all(_roomy(b, counters.get(k, (0, 0, 0)), quick) for k, (b, _) in strict.items()):
            quick = None
        reservation = f"{self._reservation_prefix}-{next(self._reservation_numbers)}"
        worst = quick or self.worst_case(model, provider, messages, max_tokens, request)
        failed = self._reserve(reservation, strict, worst)
        if isinstance(failed, Check) and quick is not None:
            exact = self.worst_case(model, provider, messages, max_tokens, request)
            if exact != quick:
                worst, failed = exact, self._reserve(reservation, strict, exact)
        if failed is False:  # the store is down and calls are let through
            return None
        if failed is not None:
            b, value = strict[failed.key]
            state = ledger.safe("counters", lambda: ledger.store.counters(ledger.name, [failed.key]), default={})
            units, tokens, reserved = state.get(failed.key, (0, 0, 0))
            raise _refusal(b, value, units, tokens, reserved, worst.describe())
        exactly = None
        if quick is not None and worst is quick:

            def exactly() -> WorstCase:
                return self.worst_case(model, provider, messages, max_tokens, request)

        admission = Admission(
            reservation, worst_units=worst.units, worst_tokens=worst.tokens, keys=tuple(strict), count_exactly=exactly
        )
        if call_id is not None:
            with self._lock:
                self._admissions[call_id] = admission
        return admission

    def _reserve(
        self, reservation: str, strict: Mapping[str, tuple[Budget, str]], worst: WorstCase
    ) -> Check | Literal[False] | None:
        """Reserve ``worst`` under every strict budget: None when it fits, the check that failed, or False when
        the store is down and calls are let through (``_store_down`` raises when they are refused)."""
        ledger = self.ledger
        limits = [
            Check(key, b.limit_units if worst.units is not None else None, b.max_tokens)
            for key, (b, _) in strict.items()
        ]
        try:
            failed: Check | None = self.breaker.call(
                lambda: ledger.store.reserve(
                    ledger.name, reservation, limits, worst.units or 0, worst.tokens, self.reservation_ttl
                )
            )
        except Exception as exc:
            self._store_down(exc)
            return False
        return failed

    def take(self, call_id: str | None) -> Admission | None:
        """Return and forget the admission of a call that ended (its event settles the reservation)."""
        if not call_id:
            return None
        with self._lock:
            return self._admissions.pop(call_id, None)

    def release(self, admission: Admission | None) -> None:
        """Drop the reservation of a call that failed or was never sent."""
        if admission is not None and admission.reservation is not None:
            reservation, ledger = admission.reservation, self.ledger
            ledger.safe("release", lambda: ledger.store.release(ledger.name, reservation))

    def release_reservations(self, older_than: float | None = None) -> int:
        """Drop reservations held longer than ``older_than`` seconds (None: ``reservation_ttl``); return how many."""
        if older_than is not None and (
            isinstance(older_than, bool) or not isinstance(older_than, (int, float)) or older_than < 0
        ):
            raise ValueError(f"older_than must be a non-negative number of seconds, got {older_than!r}")
        age = self.reservation_ttl if older_than is None else float(older_than)
        ledger = self.ledger
        return int(ledger.safe("release_stale", lambda: ledger.store.release_stale(ledger.name, age), default=0))

    def total_spent(self) -> bool:
        """Whether the tracker-wide ``budget=`` is spent."""
        if self.limit is None:
            return False
        spent = self.recorded_usd()
        return spent is not None and to_units(spent) >= to_units(self.limit)

    def recorded_usd(self) -> Decimal | None:
        """What the ledger's recorded calls cost, read from the store as it is (None when it cannot be read).

        Unlike the tracker's views it waits for no call in flight: it is read while a call is being recorded.
        """
        ledger = self.ledger
        totals = ledger.safe("totals", lambda: ledger.store.totals(ledger.name))
        return None if totals is None else from_units(totals.cost_units)

    def _store_down(self, exc: BaseException) -> None:
        self.ledger.warn(
            "store-down",
            "tokencost: the store is unreachable (%s); calls are %s until it answers again",
            exc,
            "let through" if self.on_store_error == "allow" else "refused",
        )
        if self.on_store_error == "refuse":
            raise StoreUnavailableError(str(exc), self.limit) from None

    # -- sizes of calls ---------------------------------------------------------------------------------------
    def worst_case(
        self,
        model: str,
        provider: str | None,
        messages: Any,
        max_tokens: Any,
        request: WorstCaseRequest,
        *,
        quick: bool = False,
    ) -> WorstCase:
        """Return the most this call can be billed: every prompt part counted, ``n`` times ``max_tokens`` out.

        ``quick``: a small plain-text prompt is bounded by its size, never less than counted (see ``quick_bound``).
        """
        from tokencost.worst_case import WorstCase

        price = self.lookup(model, provider)
        prompt = request.prompt_tokens(model, messages, quick=quick)
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

    def estimate_units(
        self, model: str, provider: str | None, messages: Any, max_tokens: Any
    ) -> tuple[int, int] | None:
        """Return (pico-dollars, tokens) of a call: prompt as counted plus ``max_tokens`` (0 when not given)."""
        price = self.lookup(model, provider)
        if price is None:
            return None
        from tokencost.worst_case import count_prompt

        prompt = count_prompt(model, messages)
        output = max_tokens if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) else 0
        output = max(output, 0)
        out_price = max(price.per_token("output"), price.per_token("reasoning"))
        return to_units(prompt * price.input + output * out_price), prompt + output

    def can_afford(self, model: str, provider: str | None, messages: Any, max_tokens: Any) -> bool:
        """Answer, without sending anything, whether a call this size fits every budget that applies now."""
        estimate = self.estimate_units(model, provider, messages, max_tokens)
        for scoped in active_budgets():
            if scoped.exceeded:
                return False
            limit = scoped.max_cost_usd
            if limit is not None and estimate is not None and scoped.spent_units + estimate[0] > to_units(limit):
                return False
        ledger = self.ledger
        if not ledger.budgets:
            return True
        checks = counter_checks(ledger.budgets, model, current_scope(), ledger.clock())
        if not checks:
            return True
        counters = ledger.safe("counters", lambda: ledger.store.counters(ledger.name, list(checks)))
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


def _roomy(b: Budget, counter: tuple[int, int, int], worst: WorstCase) -> bool:
    """Whether ``b``'s counter (spent, tokens, reserved) has room for ``QUICK_ROOM`` calls of ``worst``."""
    from tokencost.worst_case import QUICK_ROOM

    units, tokens, reserved = counter
    if (
        b.limit_units is not None
        and worst.units is not None
        and units + reserved + QUICK_ROOM * worst.units > b.limit_units
    ):
        return False
    return b.max_tokens is None or tokens + QUICK_ROOM * worst.tokens <= b.max_tokens


def _refusal(
    b: Budget, value: str, units: int, tokens: int, reserved: int, detail: str | None = None
) -> BudgetExceededError:
    return BudgetExceededError(
        b.limit_usd,
        from_units(units),
        b.label(value),
        max_tokens=b.max_tokens,
        tokens=tokens,
        reserved=from_units(reserved),
        detail=detail,
    )

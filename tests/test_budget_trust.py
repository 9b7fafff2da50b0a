"""Budgets a user can trust: one count per call, reservations settled everywhere, every refusal the same error.

Each test drives real litellm against the loopback fake provider (or ``mock_response=``) and asserts on the
fake's request count where "nothing was sent" matters.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import litellm
import pytest

import tokencost
from tokencost import Budget, BudgetExceededError, CostTracker, StoreUnavailableError
from tokencost.errors import StoreError
from tokencost.stores import Check
from tokencost.stores.memory import MemoryStore
from tokencost.testing import FakeProvider

MESSAGES = [{"role": "user", "content": "hello"}]
TOTAL_KEY = "*=*|total=total"


def _kw(fake: FakeProvider, **extra: Any) -> dict[str, Any]:
    return {
        "model": "openai/gpt-4o",
        "messages": MESSAGES,
        "api_base": fake.openai_base,
        "api_key": "sk-fake",
        "max_retries": 0,
        **extra,
    }


@pytest.fixture
def two_cents(fake: FakeProvider) -> FakeProvider:
    """Every gpt-4o call costs exactly $0.02 (10,000 prompt of which 8,000 cached, 500 output)."""
    fake.set_openai_usage("gpt-4o", prompt_tokens=10_000, completion_tokens=500, cached_tokens=8_000)
    return fake


def _router(fake: FakeProvider, **options: Any) -> litellm.Router:
    deployment = {"model": "openai/gpt-4o", "api_base": fake.openai_base, "api_key": "sk-fake", "max_tokens": 100}
    return litellm.Router(
        model_list=[
            {"model_name": "main", "litellm_params": deployment},
            {"model_name": "backup", "litellm_params": deployment},
        ],
        **options,
    )


def _calls_until_refused(call: Any, most: int = 50) -> int:
    for made in range(most):
        try:
            call()
        except BudgetExceededError:
            return made
    raise AssertionError(f"no refusal after {most} calls")


# -- 1. budgets over the same scope count a call once ------------------------------------------------------
def test_budget_beside_a_strict_budget_counts_each_call_once(two_cents: FakeProvider) -> None:
    """The README's sample: budget=5 beside Budget(limit_usd=1, strict=True): both lines show the real spend."""
    tracker = CostTracker(budget=5, budgets=[Budget(limit_usd=1, strict=True)], print_summary=False)
    litellm.callbacks = [tracker]
    for _ in range(3):
        litellm.completion(**_kw(two_cents, max_tokens=100))
    assert tracker.total_cost == Decimal("0.06")
    assert [line.spent_usd for line in tracker.budget_lines()] == [Decimal("0.06"), Decimal("0.06")]
    assert tracker.remaining == Decimal("4.94")


def test_a_limit_refuses_after_its_real_spend_whatever_other_budgets_exist(two_cents: FakeProvider) -> None:
    """budget=$0.05 beside Budget(limit_usd=100): the 4th $0.02 call is refused, not the 3rd."""
    tracker = CostTracker(budget="0.05", budgets=[Budget(limit_usd=100)], print_summary=False)
    litellm.callbacks = [tracker]
    assert _calls_until_refused(lambda: litellm.completion(**_kw(two_cents))) == 3
    with pytest.raises(BudgetExceededError) as info:
        litellm.completion(**_kw(two_cents))
    assert str(info.value) == "budget 'total' spent: $0.06 of $0.05"


def test_money_and_token_budgets_per_user_and_day_count_once() -> None:
    """A per-user daily money budget beside a per-user daily token budget: each line counts each call once."""
    tracker = CostTracker(
        budgets=[
            Budget(limit_usd=10, per="user", window="day"),
            Budget(max_tokens=1_000_000, per="user", window="day"),
        ],
        print_summary=False,
    )
    litellm.callbacks = [tracker]
    with tokencost.scope(user="alice"):
        for _ in range(2):
            litellm.completion(model="gpt-4o", messages=MESSAGES, mock_response="ok")  # 10 + 20 tokens
    lines = tracker.budget_lines()
    assert [(line.label, line.tokens) for line in lines] == [("user=alice, day", 60), ("user=alice, day", 60)]
    assert {line.spent_usd for line in lines} == {tracker.total_cost}


def test_strict_budgets_sharing_a_counter_reserve_once(two_cents: FakeProvider) -> None:
    """Two strict budgets over one scope hold one reservation on their shared counter, not two."""
    store = _SpyStore()
    tracker = CostTracker(
        budgets=[Budget(limit_usd=1, strict=True), Budget(limit_usd=2, strict=True)], store=store, print_summary=False
    )
    litellm.callbacks = [tracker]
    litellm.completion(**_kw(two_cents, max_tokens=100))
    assert [[c.key for c in checks] for checks in store.reserved_checks] == [[TOTAL_KEY]]
    assert store.reserved_checks[0][0].limit_units == 10**12  # the tighter of the two limits


# -- 3. reservations are settled or released on every entry point ----------------------------------------
async def _drain(stream: Any) -> None:
    async for _ in stream:
        pass


async def _router_astream(router: litellm.Router) -> None:
    stream = await router.acompletion(
        model="main", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    await _drain(stream)


ROUTER_CALLS = {
    "router-completion": lambda r: r.completion(model="main", messages=MESSAGES),
    "router-acompletion": lambda r: asyncio.run(r.acompletion(model="main", messages=MESSAGES)),
    "router-stream": lambda r: list(
        r.completion(model="main", messages=MESSAGES, stream=True, stream_options={"include_usage": True})
    ),
    "router-astream": lambda r: asyncio.run(_router_astream(r)),
}


@pytest.mark.parametrize("entry", list(ROUTER_CALLS))
def test_strict_budget_through_the_router_settles_every_reservation(two_cents: FakeProvider, entry: str) -> None:
    """Ten Router calls under a strict $1 budget all go through and leave nothing reserved."""
    tracker = CostTracker(budgets=[Budget(limit_usd=1, strict=True)], print_summary=False)
    litellm.callbacks = [tracker]
    router = _router(two_cents)
    for _ in range(10):
        ROUTER_CALLS[entry](router)
    asyncio.run(tracker.aflush(10))
    assert tracker.request_count == 10
    (line,) = tracker.budget_lines()
    assert (line.spent_usd, line.reserved_usd) == (Decimal("0.20"), Decimal(0))


def test_router_retries_and_fallbacks_leave_nothing_reserved(two_cents: FakeProvider) -> None:
    """A retried call and a call that falls back to another model group each settle once."""
    tracker = CostTracker(budgets=[Budget(limit_usd=1, strict=True)], print_summary=False)
    litellm.callbacks = [tracker]
    router = _router(two_cents, num_retries=2, retry_after=0, fallbacks=[{"main": ["backup"]}])
    two_cents.fail_next(500)
    router.completion(model="main", messages=MESSAGES)  # retried
    two_cents.fail_next(500)
    two_cents.fail_next(500)
    two_cents.fail_next(500)
    router.completion(model="main", messages=MESSAGES)  # fails three times, then the fallback answers
    (line,) = tracker.budget_lines()
    assert line.reserved_usd == Decimal(0)
    assert line.spent_usd == tracker.total_cost == Decimal("0.04")


def test_a_failed_call_releases_its_reservation(two_cents: FakeProvider) -> None:
    """A call the provider rejects costs nothing and holds nothing afterwards (sync and async)."""
    tracker = CostTracker(budgets=[Budget(limit_usd=1, strict=True)], print_summary=False)
    litellm.callbacks = [tracker]
    two_cents.fail_next(400)
    with pytest.raises(litellm.BadRequestError):
        litellm.completion(**_kw(two_cents, max_tokens=100))
    two_cents.fail_next(400)
    with pytest.raises(litellm.BadRequestError):
        asyncio.run(litellm.acompletion(**_kw(two_cents, max_tokens=100)))
    tracker.flush(10)
    (line,) = tracker.budget_lines()
    assert (line.spent_usd, line.reserved_usd) == (Decimal(0), Decimal(0))


# -- 4. the worst case covers everything the provider can bill ---------------------------------------------
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": f"lookup_{i}",
            "description": "Look a record up by its identifier and return every field of it as JSON " * 3,
            "parameters": {
                "type": "object",
                "properties": {"id": {"type": "string", "description": "the record's identifier"}},
                "required": ["id"],
            },
        },
    }
    for i in range(8)
]


@pytest.mark.parametrize(("n", "tools"), [(4, None), (1, TOOLS)], ids=["n=4", "8 tools"])
def test_strict_budget_is_never_exceeded_by_honest_usage(fake: FakeProvider, n: int, tools: Any) -> None:
    """16 threads under a strict budget: honest usage (the prompt as the provider counts it, tool definitions
    included, and n choices of max_tokens each) never takes the spend past the limit."""
    prompt = litellm.token_counter(model="gpt-4o", messages=MESSAGES, tools=tools)
    fake.set_openai_usage("gpt-4o", prompt_tokens=prompt, completion_tokens=n * 200)
    per_call = Decimal(prompt) * Decimal("0.0000025") + Decimal(n * 200) * Decimal("0.00001")
    limit = (per_call * 10).quantize(Decimal("0.000001"))
    tracker = CostTracker(budgets=[Budget(limit_usd=limit, strict=True)], print_summary=False)
    litellm.callbacks = [tracker]
    extra: dict[str, Any] = {"max_tokens": 200, "n": n}
    if tools:
        extra["tools"] = tools

    def worker() -> None:
        for _ in range(20):
            try:
                litellm.completion(**_kw(fake, **extra))
            except BudgetExceededError:
                return

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    tracker.flush(10)
    assert tracker.request_count > 0
    assert tracker.total_cost <= limit
    assert tracker.total_cost == per_call * tracker.request_count


def test_refusal_without_max_tokens_says_passing_it_would_fit(fake: FakeProvider) -> None:
    """A strict budget too small for the model's whole output limit says what would let the call fit."""
    tracker = CostTracker(budgets=[Budget(limit_usd="0.01", strict=True)], print_summary=False)
    litellm.callbacks = [tracker]
    with pytest.raises(BudgetExceededError) as info:
        litellm.completion(**_kw(fake))
    assert fake.request_count() == 0
    assert "pass max_tokens" in str(info.value)
    assert "this call would reserve $0.16" in str(info.value)  # 16,384 output tokens of gpt-4o at $10/M
    litellm.completion(**_kw(fake, max_tokens=100))  # fits
    assert fake.request_count() == 1


# -- 5. every refusal is a BudgetExceededError -----------------------------------------------------------
class _SpyStore(MemoryStore):
    """A memory store that can be taken down and that remembers what was reserved."""

    def __init__(self) -> None:
        super().__init__("memory://")
        self.down = False
        self.reads = 0
        self.reserved_checks: list[list[Check]] = []
        self.ttls: list[float] = []

    def counters(self, ledger: str, keys: Sequence[str]) -> dict[str, tuple[int, int, int]]:
        self.reads += 1
        if self.down:
            raise StoreError("memory store: down for the test")
        return super().counters(ledger, keys)

    def reserve(
        self, ledger: str, reservation: str, checks: Sequence[Check], cost_units: int, tokens: int, ttl: float
    ) -> Check | None:
        self.reserved_checks.append(list(checks))
        self.ttls.append(ttl)
        return super().reserve(ledger, reservation, checks, cost_units, tokens, ttl)


def test_store_down_under_refuse_with_only_budgets_raises_budget_exceeded() -> None:
    """on_store_error="refuse" with budgets=[...] only: a StoreUnavailableError, caught as BudgetExceededError."""
    store = _SpyStore()
    tracker = CostTracker(budgets=[Budget(limit_usd=1)], store=store, on_store_error="refuse", print_summary=False)
    litellm.callbacks = [tracker]
    store.down = True
    with pytest.raises(BudgetExceededError) as info:
        litellm.completion(model="gpt-4o", messages=MESSAGES, mock_response="ok")
    assert isinstance(info.value, StoreUnavailableError)
    assert "store unavailable" in str(info.value)


def test_store_down_under_refuse_without_any_budget_lets_calls_through() -> None:
    """With no budget there is nothing to check: on_store_error="refuse" refuses nothing (documented)."""
    store = _SpyStore()
    tracker = CostTracker(store=store, on_store_error="refuse", print_summary=False)
    litellm.callbacks = [tracker]
    store.down = True
    litellm.completion(model="gpt-4o", messages=MESSAGES, mock_response="ok")
    store.down = False
    assert tracker.request_count == 1


def test_strict_token_budget_on_an_unpriced_model_counts_tokens_and_refuses_with_our_error(
    fake: FakeProvider,
) -> None:
    """A token-only strict budget needs no price: it reserves tokens, and refuses with BudgetExceededError."""
    fake.set_openai_usage("nosuch-model-7", prompt_tokens=600, completion_tokens=100)
    tracker = CostTracker(budgets=[Budget(max_tokens=1_000, strict=True)], print_summary=False)
    litellm.callbacks = [tracker]
    litellm.completion(**_kw(fake, model="openai/nosuch-model-7", max_tokens=100))
    assert tracker.unpriced_count == 1
    with pytest.raises(BudgetExceededError, match="tokens"):
        litellm.completion(**_kw(fake, model="openai/nosuch-model-7", max_tokens=400))
    assert fake.request_count() == 1


def test_strict_money_budget_refuses_an_unpriced_model_with_our_error(fake: FakeProvider) -> None:
    """A strict money budget cannot bound a call of unknown price: BudgetExceededError, nothing sent."""
    tracker = CostTracker(budgets=[Budget(limit_usd=1, strict=True)], print_summary=False)
    litellm.callbacks = [tracker]
    with pytest.raises(BudgetExceededError, match="no source prices"):
        litellm.completion(**_kw(fake, model="openai/nosuch-model-7", max_tokens=100))
    assert fake.request_count() == 0


# -- 6. reservations of crashed workers: visible, named in refusals, releasable ------------------------------
def test_reservations_are_shown_named_in_refusals_and_releasable(two_cents: FakeProvider) -> None:
    """A reservation left by a crashed worker shows in reserved_usd, is named apart from spend, and can go."""
    store = _SpyStore()
    tracker = CostTracker(
        budgets=[Budget(limit_usd="0.10", strict=True)], store=store, reservation_ttl=120, print_summary=False
    )
    litellm.callbacks = [tracker]
    litellm.completion(**_kw(two_cents, max_tokens=100))
    assert store.ttls == [120.0]
    # another worker reserved $0.07 and died
    assert store.reserve(tracker.name, "crashed", [Check(TOTAL_KEY, 10**11)], 7 * 10**10, 0, 900) is None
    (line,) = tracker.budget_lines()
    assert (line.spent_usd, line.reserved_usd) == (Decimal("0.02"), Decimal("0.07"))
    with pytest.raises(BudgetExceededError) as info:
        litellm.completion(**_kw(two_cents, max_tokens=1_000))
    err = info.value
    assert (err.total_cost, err.reserved) == (Decimal("0.02"), Decimal("0.07"))
    assert "spent: $0.02 (+ $0.07 reserved by calls in flight) of $0.10" in str(err)
    assert tracker.release_reservations(older_than=0) == 1
    assert tracker.budget_lines()[0].reserved_usd == Decimal(0)
    litellm.completion(**_kw(two_cents, max_tokens=1_000))
    assert tracker.total_cost == Decimal("0.04")


def test_bad_reservation_ttl_and_store_timeout_are_value_errors() -> None:
    for bad in (0, -1, "5", True):
        with pytest.raises(ValueError, match="reservation_ttl"):
            CostTracker(reservation_ttl=bad, print_summary=False)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="store_timeout"):
            CostTracker(store_timeout=bad, print_summary=False)  # type: ignore[arg-type]


# -- 8. a response without usage is unknown, not $0 ----------------------------------------------------------
@pytest.mark.parametrize(
    "usage",
    [None, {}, {"prompt_tokens": None, "completion_tokens": None, "total_tokens": 0}],
    ids=["null", "empty", "none-counts"],
)
def test_a_response_without_usage_is_recorded_unpriced_with_a_reason(
    fake: FakeProvider, usage: Any, caplog: pytest.LogCaptureFixture
) -> None:
    fake.set_raw_usage("gpt-4o", usage)
    tracker = CostTracker(print_summary=False)
    litellm.callbacks = [tracker]
    with caplog.at_level(logging.WARNING, logger="tokencost"):
        for _ in range(3):
            litellm.completion(**_kw(fake))
    (event, *_) = tracker.events()
    assert tracker.request_count == 3 and tracker.unpriced_count == 3
    assert event.cost is None and event.reason and "usage" in event.reason
    assert len([r for r in caplog.records if "usage" in r.getMessage()]) == 1


# -- 9. a store that is down is not waited on by every call --------------------------------------------------
def test_a_failing_store_is_asked_once_then_skipped_until_it_answers_a_probe() -> None:
    """After one failure, later budget checks fail fast (no store round trip) until the cooldown ends."""
    now = [1_800_000_000.0]
    store = _SpyStore()
    tracker = CostTracker(budgets=[Budget(limit_usd=1)], store=store, clock=lambda: now[0], print_summary=False)
    litellm.callbacks = [tracker]
    store.down = True
    for _ in range(5):
        litellm.completion(model="gpt-4o", messages=MESSAGES, mock_response="ok")  # let through (allow)
    assert store.reads == 1
    store.down = False
    now[0] += 60
    litellm.completion(model="gpt-4o", messages=MESSAGES, mock_response="ok")
    litellm.completion(model="gpt-4o", messages=MESSAGES, mock_response="ok")
    assert store.reads == 3  # the probe and the next call: the store answers again
    assert tracker.request_count == 7


# -- 11. the non-strict overshoot bound: the calls in flight when the budget is crossed -----------------------
def test_non_strict_overshoot_is_bounded_by_the_calls_in_flight(two_cents: FakeProvider) -> None:
    """20 asyncio tasks: spend passes the limit by at most one call per task in flight, then all are refused."""
    two_cents.set_delay(0.05)
    tracker = CostTracker(budget="0.10", print_summary=False)
    litellm.callbacks = [tracker]
    refused = 0

    async def task() -> None:
        nonlocal refused
        for _ in range(10):
            try:
                await litellm.acompletion(**_kw(two_cents))
            except BudgetExceededError:
                refused += 1
                return

    async def main() -> None:
        await asyncio.gather(*(task() for _ in range(20)))

    asyncio.run(main())
    assert refused == 20  # every task ends refused
    assert Decimal("0.10") <= tracker.total_cost <= Decimal("0.10") + 20 * Decimal("0.02")
    sent = two_cents.request_count()
    with pytest.raises(BudgetExceededError):
        litellm.completion(**_kw(two_cents))
    assert two_cents.request_count() == sent


def test_reservations_command_lists_and_releases_stale_reservations(tmp_path: Any) -> None:
    """`tokencost reservations` shows what is held on a SQLite ledger and `--release` drops the stale ones."""
    from click.testing import CliRunner

    from tokencost.cli import main
    from tokencost.stores import store_from_url

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    store = store_from_url(url)
    assert store.reserve("default", "crashed-worker", [Check(TOTAL_KEY, 10**12)], 25 * 10**10, 40, 900) is None
    store.close()
    listed = CliRunner().invoke(main, ["reservations", "--store", url, "--json"])
    assert listed.exit_code == 0, listed.output
    (row,) = json.loads(listed.output)["reservations"]
    assert (row["id"], row["reserved"], row["tokens"], row["counters"]) == (
        "crashed-worker",
        "0.25",
        40,
        [TOTAL_KEY],
    )
    kept = CliRunner().invoke(main, ["reservations", "--store", url, "--release", "--json"])
    assert json.loads(kept.output)["released"] == 0  # younger than the default 900 s
    gone = CliRunner().invoke(main, ["reservations", "--store", url, "--release", "--older-than", "0"])
    assert gone.exit_code == 0 and "released 1 reservations" in gone.output and "No open reservations." in gone.output


def test_a_strict_budget_keeps_the_worst_case_of_a_call_without_usage(fake: FakeProvider) -> None:
    """A call of unknown cost under a strict budget: its worst case stays held, so the limit still holds."""
    fake.set_raw_usage("gpt-4o", None)
    tracker = CostTracker(budgets=[Budget(limit_usd="0.005", strict=True)], print_summary=False)
    litellm.callbacks = [tracker]
    litellm.completion(**_kw(fake, max_tokens=300))  # worst case: 8 prompt tokens + 300 output = $0.00302
    (event,) = tracker.events()
    assert event.cost is None and event.reason is not None and "worst case" in event.reason
    (line,) = tracker.budget_lines()
    assert (line.spent_usd, line.reserved_usd) == (Decimal(0), Decimal("0.00302"))
    with pytest.raises(BudgetExceededError, match="reserved"):
        litellm.completion(**_kw(fake, max_tokens=300))
    assert fake.request_count() == 1


def test_a_hung_redis_costs_one_store_timeout_not_one_per_call(silent_server: str) -> None:
    """A Redis that accepts and never answers: the first budget check gives up after store_timeout, the next
    calls skip the store (circuit open) and go through under on_store_error="allow"; nothing raises."""
    tracker = CostTracker(budget=1, store=silent_server, store_timeout=0.2, print_summary=False)
    litellm.callbacks = [tracker]
    asked: list[int] = []
    counters = tracker.store.counters

    def counting(ledger: str, keys: Sequence[str]) -> dict[str, tuple[int, int, int]]:
        asked.append(1)
        return counters(ledger, keys)

    tracker.store.counters = counting  # type: ignore[method-assign]
    for _ in range(5):
        assert litellm.completion(model="gpt-4o", messages=MESSAGES, mock_response="ok").choices
    assert len(asked) == 1
    litellm.logging_callback_manager.remove_callback_from_all_lists(tracker, require_self=False)

"""Budgets refuse calls before any request is sent, on every entry point, per scope and window."""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import litellm
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tokencost
from tokencost import Budget, BudgetExceededError, CostTracker
from tokencost.testing import FakeProvider

MESSAGES = [{"role": "user", "content": "hello"}]


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
    """Every gpt-4o call costs exactly $0.02; every embedding call $0.02."""
    fake.set_openai_usage("gpt-4o", prompt_tokens=10_000, completion_tokens=500, cached_tokens=8_000)
    fake.set_openai_usage("text-embedding-3-small", prompt_tokens=1_000_000, completion_tokens=0)
    return fake


def _router(fake: FakeProvider) -> litellm.Router:
    return litellm.Router(
        model_list=[
            {
                "model_name": "main",
                "litellm_params": {"model": "openai/gpt-4o", "api_base": fake.openai_base, "api_key": "sk-fake"},
            }
        ],
        num_retries=2,
    )


async def _drain(stream: Any) -> None:
    async for _ in stream:
        pass


ENTRY_POINTS: dict[str, Callable[[FakeProvider], Any]] = {
    "completion": lambda f: litellm.completion(**_kw(f)),
    "completion-stream": lambda f: list(litellm.completion(**_kw(f, stream=True))),
    "acompletion": lambda f: asyncio.run(litellm.acompletion(**_kw(f))),
    "acompletion-stream": lambda f: asyncio.run(_drain_async(f)),
    "embedding": lambda f: litellm.embedding(
        model="openai/text-embedding-3-small", input=["x"], api_base=f.openai_base, api_key="sk-fake"
    ),
    "aembedding": lambda f: asyncio.run(
        litellm.aembedding(
            model="openai/text-embedding-3-small", input=["x"], api_base=f.openai_base, api_key="sk-fake"
        )
    ),
    "router-completion": lambda f: _router(f).completion(model="main", messages=MESSAGES),
    "router-stream": lambda f: list(_router(f).completion(model="main", messages=MESSAGES, stream=True)),
    "router-acompletion": lambda f: asyncio.run(_router(f).acompletion(model="main", messages=MESSAGES)),
}


async def _drain_async(fake: FakeProvider) -> None:
    await _drain(await litellm.acompletion(**_kw(fake, stream=True)))


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
def test_spent_budget_refuses_before_any_request(two_cents: FakeProvider, entry: str) -> None:
    """Once the budget is spent, every entry point raises a BudgetExceededError and sends nothing."""
    tracker = CostTracker(budget="0.02", print_summary=False)
    litellm.callbacks = [tracker]
    litellm.completion(**_kw(two_cents))  # the crossing call completes
    assert tracker.budget_exceeded
    sent = two_cents.request_count()
    with pytest.raises(litellm.BudgetExceededError):
        ENTRY_POINTS[entry](two_cents)
    assert two_cents.request_count() == sent
    assert tracker.request_count == 1


def test_crossing_call_completes_callback_fires_once_and_reset_reopens(two_cents: FakeProvider) -> None:
    """The call crossing the limit completes; on_budget_exceeded fires once; every later call is refused."""
    crossings: list[CostTracker] = []
    tracker = CostTracker(budget="0.03", on_budget_exceeded=crossings.append, print_summary=False)
    litellm.callbacks = [tracker]
    litellm.completion(**_kw(two_cents))
    assert not tracker.budget_exceeded
    litellm.completion(**_kw(two_cents))  # crosses: $0.04 of $0.03
    assert tracker.budget_exceeded and tracker.remaining == Decimal("0")
    for _ in range(3):
        with pytest.raises(BudgetExceededError) as info:
            litellm.completion(**_kw(two_cents))
    err = info.value
    assert (err.budget, err.total_cost, err.scope) == (Decimal("0.03"), Decimal("0.04"), "total")
    assert str(err) == "budget 'total' spent: $0.04 of $0.03"
    assert crossings == [tracker]
    tracker.reset()
    litellm.completion(**_kw(two_cents))
    assert tracker.total_cost == Decimal("0.02")
    tracker.close()


def test_router_does_not_retry_a_refusal(two_cents: FakeProvider) -> None:
    """A Router with retries refuses once, sending nothing (our error subclasses litellm's)."""
    tracker = CostTracker(budget="0.01", print_summary=False)
    litellm.callbacks = [tracker]
    litellm.completion(**_kw(two_cents))
    sent = two_cents.request_count()
    with pytest.raises(BudgetExceededError):
        _router(two_cents).completion(model="main", messages=MESSAGES)
    assert two_cents.request_count() == sent
    tracker.close()


def test_per_user_budget_refuses_alice_not_bob(two_cents: FakeProvider) -> None:
    """A per-user budget refuses the user who spent it (sync, via scope() or user=) and lets others through."""
    tracker = CostTracker(budgets=[Budget(limit_usd="0.02", per="user")], print_summary=False)
    litellm.callbacks = [tracker]
    with tokencost.scope(user="alice"):
        litellm.completion(**_kw(two_cents))
        with pytest.raises(BudgetExceededError, match="user=alice"):
            litellm.completion(**_kw(two_cents))
    with pytest.raises(BudgetExceededError):
        litellm.completion(**_kw(two_cents, user="alice"))
    with pytest.raises(BudgetExceededError):
        asyncio.run(litellm.acompletion(**_kw(two_cents, user="alice")))
    litellm.completion(**_kw(two_cents, user="bob"))
    assert tracker.cost_by("user") == {"alice": Decimal("0.02"), "bob": Decimal("0.02")}
    tracker.close()


def test_per_model_and_tag_budgets(two_cents: FakeProvider) -> None:
    """Per-model and per-tag budgets refuse only their own scope."""
    tracker = CostTracker(
        budgets=[Budget(limit_usd="0.02", per="model"), Budget(limit_usd="0.02", per="tag")], print_summary=False
    )
    litellm.callbacks = [tracker]
    litellm.completion(**_kw(two_cents, metadata={"tags": ["batch"]}))
    with pytest.raises(BudgetExceededError, match="model=gpt-4o"):
        litellm.completion(**_kw(two_cents))
    litellm.completion(model="gpt-4o-mini", messages=MESSAGES, mock_response="ok", metadata={"tags": ["web"]})
    with pytest.raises(BudgetExceededError, match="tag=batch"):
        litellm.completion(model="gpt-4o-mini", messages=MESSAGES, mock_response="ok", metadata={"tags": ["batch"]})
    tracker.close()


def test_daily_window_resets_at_midnight_in_its_time_zone() -> None:
    """A daily budget in Europe/Paris refuses until local midnight, then lets calls through (fake clock)."""
    now = [dt.datetime(2026, 11, 24, 22, 30, tzinfo=dt.timezone.utc).timestamp()]  # 23:30 in Paris
    tracker = CostTracker(
        budgets=[Budget(limit_usd="0.02", window="day", tz="Europe/Paris")], clock=lambda: now[0], print_summary=False
    )
    litellm.callbacks = [tracker]
    tracker.track(model="gpt-4o", prompt_tokens=10_000, completion_tokens=500, cache_read_tokens=8_000)
    with pytest.raises(BudgetExceededError, match="day"):
        litellm.completion(model="gpt-4o", messages=MESSAGES, mock_response="ok")
    now[0] += 45 * 60  # 00:15 in Paris, still 23:15 in UTC
    litellm.completion(model="gpt-4o", messages=MESSAGES, mock_response="ok")
    assert tracker.request_count == 2
    tracker.close()


def test_monthly_window() -> None:
    """A monthly budget counts the calendar month only."""
    now = [dt.datetime(2026, 11, 30, 12, tzinfo=dt.timezone.utc).timestamp()]
    tracker = CostTracker(budgets=[Budget(limit_usd=1, window="month")], clock=lambda: now[0], print_summary=False)
    litellm.callbacks = [tracker]
    tracker.track(model="gpt-4o", prompt_tokens=1_000_000, completion_tokens=0)  # $2.50
    with pytest.raises(BudgetExceededError, match="month"):
        litellm.completion(model="gpt-4o", messages=MESSAGES, mock_response="ok")
    now[0] += 86_400
    litellm.completion(model="gpt-4o", messages=MESSAGES, mock_response="ok")
    tracker.close()


def test_token_budget_refuses() -> None:
    """A max_tokens budget refuses once the tokens are used."""
    tracker = CostTracker(budgets=[Budget(max_tokens=100)], print_summary=False)
    litellm.callbacks = [tracker]
    tracker.track(model="gpt-4o", prompt_tokens=90, completion_tokens=20)
    with pytest.raises(BudgetExceededError, match="110 of 100 tokens"):
        litellm.completion(model="gpt-4o", messages=MESSAGES, mock_response="ok")
    tracker.close()


def test_scoped_budget_counts_only_calls_inside(tracker: CostTracker, two_cents: FakeProvider) -> None:
    """tokencost.budget() counts calls made inside (threads too), not outside; the next call inside is refused."""
    litellm.completion(**_kw(two_cents))  # outside: not counted
    with tokencost.budget(max_cost_usd="0.03") as block:
        litellm.completion(**_kw(two_cents))
        # Python threads do not inherit contextvars before 3.14: run the thread in the block's context.
        context = contextvars.copy_context()
        worker = threading.Thread(target=context.run, args=(lambda: litellm.completion(**_kw(two_cents)),))
        worker.start()
        worker.join()
        assert block.spent == Decimal("0.04")
        assert block.remaining == Decimal("0")
        with pytest.raises(BudgetExceededError, match="budget"):
            litellm.completion(**_kw(two_cents))
    litellm.completion(**_kw(two_cents))  # outside again: allowed
    assert tracker.request_count == 4


def test_nested_budgets_tightest_wins(tracker: CostTracker, two_cents: FakeProvider) -> None:
    """An inner tighter budget refuses while the outer one still has room."""
    with tokencost.budget(max_cost_usd=1) as outer:
        with tokencost.budget(max_cost_usd="0.01"):
            litellm.completion(**_kw(two_cents))
            with pytest.raises(BudgetExceededError):
                litellm.completion(**_kw(two_cents))
        litellm.completion(**_kw(two_cents))
    assert outer.spent == Decimal("0.04")


def test_budget_decorator_sync_and_async(tracker: CostTracker, two_cents: FakeProvider) -> None:
    """@tokencost.budget gives each call of the function a fresh block."""

    @tokencost.budget(max_cost_usd="0.02")
    def twice() -> None:
        litellm.completion(**_kw(two_cents))
        litellm.completion(**_kw(two_cents))

    @tokencost.budget(max_cost_usd="0.02")
    async def atwice() -> None:
        await litellm.acompletion(**_kw(two_cents))
        await litellm.acompletion(**_kw(two_cents))

    with pytest.raises(BudgetExceededError):
        twice()
    with pytest.raises(BudgetExceededError):
        asyncio.run(atwice())
    assert tracker.request_count == 2


def test_budget_needs_one_registered_tracker() -> None:
    """budget() without tracker= needs exactly one registered CostTracker."""
    first, second = CostTracker(print_summary=False), CostTracker(print_summary=False)
    litellm.callbacks = [first, second]
    with pytest.raises(ValueError, match="2 CostTrackers"), tokencost.budget(max_cost_usd=1):
        pass
    with tokencost.budget(max_cost_usd=1, tracker=first) as b:
        assert b.tracker is first
    first.close()
    second.close()


def test_estimate_and_can_afford(two_cents: FakeProvider) -> None:
    """estimate_cost counts the prompt with litellm's counter and max_tokens at the output price."""
    tracker = CostTracker(budget="0.05", print_summary=False)
    litellm.callbacks = [tracker]
    prompt = litellm.token_counter(model="gpt-4o", messages=MESSAGES)
    expected = (Decimal(prompt) * Decimal("2.5") + 1000 * Decimal(10)) / 1_000_000
    assert tracker.estimate_cost("gpt-4o", MESSAGES, max_tokens=1000) == expected
    assert tracker.estimate_cost("acme-unknown", MESSAGES) is None
    assert tracker.can_afford("gpt-4o", MESSAGES, max_tokens=1000)
    tracker.track(model="gpt-4o", prompt_tokens=10_000, completion_tokens=500, cache_read_tokens=8_000)
    tracker.track(model="gpt-4o", prompt_tokens=10_000, completion_tokens=500, cache_read_tokens=8_000)
    assert not tracker.can_afford("gpt-4o", MESSAGES, max_tokens=1000)  # $0.04 + ~$0.01 > $0.05
    assert tracker.can_afford("gpt-4o", MESSAGES, max_tokens=10)
    assert two_cents.request_count() == 0
    tracker.close()


def test_strict_budget_never_exceeded_by_racing_threads() -> None:
    """16 threads racing a strict $1.00 budget never spend more than $1.00 together."""
    tokencost.register_price("strict-race-model", input_per_mtok=1000, output_per_mtok=2000)
    tracker = CostTracker(budgets=[Budget(limit_usd=1, strict=True)], print_summary=False)
    litellm.callbacks = [tracker]
    refused = [0]
    lock = threading.Lock()

    def work() -> None:
        for _ in range(40):
            try:
                litellm.completion(
                    model="openai/strict-race-model", messages=MESSAGES, mock_response="x", max_tokens=30
                )
            except BudgetExceededError:
                with lock:
                    refused[0] += 1

    threads = [threading.Thread(target=work) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    tracker.flush(10)
    assert refused[0] > 0
    assert tracker.total_cost <= Decimal(1)
    worst = tracker.estimate_cost("strict-race-model", MESSAGES, max_tokens=30)
    assert worst is not None and tracker.total_cost > Decimal(1) - 16 * worst  # the budget was used, not wasted
    tracker.close()


def test_strict_budget_refuses_unpriced_models() -> None:
    """A strict budget refuses a model it cannot price, unless told to allow unpriced calls."""
    tracker = CostTracker(budgets=[Budget(limit_usd=1, strict=True)], print_summary=False)
    litellm.callbacks = [tracker]
    with pytest.raises(BudgetExceededError, match="no source prices"):
        litellm.completion(model="openai/acme-unknown-9", messages=MESSAGES, mock_response="x")
    tracker.close()
    allowing = CostTracker(budgets=[Budget(limit_usd=1, strict=True, unpriced="allow")], print_summary=False)
    litellm.callbacks = [allowing]
    litellm.completion(model="openai/acme-unknown-9", messages=MESSAGES, mock_response="x")
    assert allowing.unpriced_count == 1
    allowing.close()


def test_alerts_fire_once_per_threshold() -> None:
    """on_alert fires once for each threshold crossed, with scope, fraction, spent and limit."""
    alerts: list[tuple[str, float, Decimal, Decimal]] = []
    tracker = CostTracker(
        budget="0.10",
        alert_at=(0.5, 0.8, 1.0),
        on_alert=lambda *a: alerts.append(a),
        raise_on_budget=False,
        print_summary=False,
    )
    for _ in range(6):
        tracker.track(model="gpt-4o", prompt_tokens=10_000, completion_tokens=500, cache_read_tokens=8_000)
    assert [(a[0], a[1]) for a in alerts] == [("total", 0.5), ("total", 0.8), ("total", 1.0)]
    assert alerts[0][2:] == (Decimal("0.06"), Decimal("0.10"))
    tracker.close()


def test_raising_callbacks_never_break_the_call(two_cents: FakeProvider) -> None:
    """A budget callback that raises is logged and ignored; the user's call returns."""

    def boom(_: Any) -> None:
        raise RuntimeError("callback bug")

    tracker = CostTracker(budget="0.01", on_budget_exceeded=boom, print_summary=False)
    litellm.callbacks = [tracker]
    response = litellm.completion(**_kw(two_cents))
    assert response.choices
    assert tracker.budget_exceeded
    tracker.close()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"budget": -1},
        {"budget": "abc"},
        {"budget": float("nan")},
        {"budgets": [{"limit_usd": 1}]},
    ],
)
def test_bad_budget_arguments(kwargs: dict[str, Any]) -> None:
    """Bad budgets raise ValueError or TypeError at construction."""
    with pytest.raises((ValueError, TypeError)):
        CostTracker(print_summary=False, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"limit_usd": 1, "window": "week"}, "window"),
        ({"limit_usd": 1, "tz": "Mars/Olympus"}, "time zone"),
        ({"limit_usd": 1, "per": ""}, "per"),
        ({}, "limit_usd or max_tokens"),
        ({"limit_usd": 1, "unpriced": "maybe"}, "unpriced"),
        ({"max_tokens": -1}, "max_tokens"),
    ],
)
def test_bad_budget_values(kwargs: dict[str, Any], message: str) -> None:
    """Budget rejects unknown windows, zones, scopes and policies with a ValueError naming the argument."""
    with pytest.raises(ValueError, match=message):
        Budget(**kwargs)


ZONES = [
    "UTC",
    "Europe/Paris",
    "America/New_York",
    "Asia/Kathmandu",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "America/Santiago",
    "Asia/Tehran",
    "America/St_Johns",
    "Asia/Beirut",
    "Europe/Amsterdam",
]


@settings(max_examples=150, deadline=None)
@given(
    window=st.sampled_from(["day", "month", "total"]),
    tz=st.sampled_from(ZONES),
    days=st.lists(st.integers(-80 * 366, 40 * 366), min_size=1, max_size=4),  # days from 2000-01-01 (1920-2040)
    offsets=st.lists(st.floats(-1_800, 1_800), min_size=1, max_size=10),
)
def test_window_id_remembered_per_quarter_hour_answers_as_the_calendar_does(
    window: str, tz: str, days: list[int], offsets: list[float]
) -> None:
    from zoneinfo import ZoneInfo

    b = Budget(limit_usd=1, window=window, tz=tz)  # type: ignore[arg-type]
    for day in days:  # instants around a local midnight (a window's start), in the order drawn
        midnight = dt.datetime.combine(dt.date(2000, 1, 1) + dt.timedelta(days=day), dt.time(), ZoneInfo(tz))
        for offset in offsets:
            ts = midnight.timestamp() + offset
            assert b.window_id(ts) == b.window_id_at(ts), (window, tz, ts)


@pytest.mark.parametrize(
    ("tz", "moment"),
    [
        ("Europe/Paris", "2026-03-29T00:59:59.999+00:00"),  # the clock jumps from 02:00 to 03:00 at 01:00 UTC
        ("America/New_York", "2026-11-01T05:59:59+00:00"),  # the clock falls back from 02:00 to 01:00
        ("America/Santiago", "2026-09-06T03:59:59+00:00"),  # the clock jumps at local midnight
        ("Asia/Kathmandu", "2026-12-07T18:14:59.999+00:00"),  # +05:45: midnight at 18:15 UTC
        ("Europe/Amsterdam", "1930-06-01T22:40:28+00:00"),  # +01:19:32: midnight inside a quarter hour of UTC
    ],
)
def test_window_id_at_each_side_of_midnight_and_clock_changes(tz: str, moment: str) -> None:
    b = Budget(limit_usd=1, window="day", tz=tz)
    at = dt.datetime.fromisoformat(moment).timestamp()
    for ts in (at - 0.5, at, at + 0.001, at + 1, at - 0.5, at + 3600):
        assert b.window_id(ts) == b.window_id_at(ts)

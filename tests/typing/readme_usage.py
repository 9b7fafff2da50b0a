"""README-style use of the public API, type-checked by ``mypy --strict`` (tests/test_typing.py); never run.

Each block is what a user writes; ``assert_type`` pins the types the API promises (money is ``Decimal``). The
README's own ``python`` blocks are checked too, as written (tests/test_typing.py extracts them).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal
from typing import Any

import litellm
from rich.console import Console
from typing_extensions import assert_type

import tokencost
from tokencost import (
    Budget,
    BudgetExceededError,
    BudgetLine,
    CostTracker,
    Event,
    Price,
    ScopedBudget,
    StoreUnavailableError,
    Summary,
    Usage,
)
from tokencost.reports import SummaryRow, report
from tokencost.typing import Money, OnStoreError, Per, PriceSource, ReportWindow, Unpriced, Window

messages: list[dict[str, str]] = [{"role": "user", "content": "hi"}]


def alert_ops(spent: Decimal) -> None:
    print("over budget:", spent)


def on_alert(scope: str, fraction: float, spent: Decimal, limit: Decimal) -> None:
    print(f"{scope}: {fraction:.0%} ({spent} of {limit})")


# -- budgets: any amount goes in, a Decimal comes out ---------------------------------------------------------
daily_user = Budget(limit_usd="0.5", window="day", per="user")
assert_type(daily_user.limit_usd, Decimal | None)
assert_type(daily_user.window, Window)
assert_type(daily_user.per, Per | None)
assert_type(daily_user.unpriced, Unpriced | None)
budgets = [
    Budget(limit_usd=2),
    daily_user,
    Budget(limit_usd=2, per="user", window="day", tz="Europe/Paris"),
    Budget(limit_usd=50.0, per="model", window="month"),
    Budget(limit_usd=Decimal("1"), strict=True, unpriced="allow"),
    Budget(max_tokens=1_000_000, per="tag"),
    Budget(limit_usd=5, per="team"),  # any metadata key
]


def monthly(limit: Money, per: Per | None = None, window: Window = "month") -> Budget:
    return Budget(limit_usd=limit, per=per, window=window)


store_policy: OnStoreError = "refuse"

tracker = CostTracker(
    budget=5,
    budgets=budgets,
    on_budget_exceeded=lambda t: alert_ops(t.total_cost),
    raise_on_budget=True,
    print_summary=False,
    store="sqlite:///costs.db",
    prices={"acme-large-2": {"input_per_mtok": 4, "output_per_mtok": 12}},
    name="my-app",
    price_cache_dir="model_costs",
    linkup_api_key=False,
    alert_at=(0.5, 0.8, 1.0),
    on_alert=on_alert,
    on_store_error=store_policy,
    reservation_ttl=900.0,
    store_timeout=0.5,
)
litellm.callbacks = [tracker]

# -- calls, refusals ------------------------------------------------------------------------------------------
try:
    with tokencost.scope(user="alice", tags=["batch"], team="search") as metadata:
        assert_type(metadata, dict[str, Any])
        litellm.completion(model="gpt-4o", messages=messages, user="alice")
except StoreUnavailableError as exc:
    print("store down:", exc.detail)
except BudgetExceededError as exc:
    assert_type(exc.budget, Decimal | None)
    assert_type(exc.total_cost, Decimal)
    assert_type(exc.scope, str)
    assert_type(exc.reserved, Decimal)
    assert_type(exc.max_tokens, int | None)
    assert_type(exc.tokens, int | None)
    assert_type(exc.detail, str | None)
    print(exc)

# -- budget() as a context manager and as a decorator ---------------------------------------------------------
with tokencost.budget(max_cost_usd=0.5) as block:
    assert_type(block, ScopedBudget)
    litellm.completion(model="gpt-4o", messages=messages)
assert_type(block.spent, Decimal)
assert_type(block.remaining, Decimal | None)
assert_type(block.exceeded, bool)

with tokencost.budget(max_cost_usd="0.50", max_tokens=20_000, tracker=tracker):
    pass
with tokencost.budget(max_tokens=1_000):
    pass


@tokencost.budget(max_cost_usd=Decimal("0.10"))
def summarize(doc: str) -> str:
    reply = litellm.completion(model="gpt-4o-mini", messages=[{"role": "user", "content": doc}])
    return str(reply.choices[0].message.content)


assert_type(summarize("text"), str)


@tokencost.budget(max_cost_usd=1)
async def agent(task: str) -> int:
    await litellm.acompletion(model="gpt-4o", messages=[{"role": "user", "content": task}])
    return 1


assert_type(asyncio.run(agent("plan")), int)

# -- calls outside litellm ------------------------------------------------------------------------------------
event = tracker.track(model="gpt-4o", prompt_tokens=10_000, completion_tokens=500, cache_read_tokens=8_000)
assert_type(event, Event)
assert_type(event.cost, Decimal | None)
assert_type(event.priced, bool)
assert_type(event.usage, Usage)
recorded = tracker.track(
    model="claude-sonnet-4-5",
    prompt_tokens=10_100,
    completion_tokens=500,
    provider="anthropic",
    cache_read_tokens=8_000,
    cache_write_tokens=2_000,
    metadata={"user": "alice"},
)
dimensions = tracker.track(
    "gpt-audio",
    1_000,
    500,
    audio_input_tokens=800,
    audio_output_tokens=400,
    image_input_tokens=0,
    cache_write_1h_tokens=0,
    service_tier="flex",
    web_search_requests=0,
    timestamp=dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc),
)
assert_type(dimensions, Event)
assert_type(tracker.record_usage("gpt-4o", Usage(input=10), timestamp=1_764_547_200.0), Event)
response_event = tracker.track_response("openai", "gpt-4o", {"usage": {"prompt_tokens": 10, "completion_tokens": 2}})
assert_type(response_event, Event)

# -- views ----------------------------------------------------------------------------------------------------
assert_type(tracker.total_cost, Decimal)
assert_type(tracker.request_count, int)
assert_type(tracker.unpriced_count, int)
assert_type(tracker.saved_by_cache, Decimal)
assert_type(tracker.history, list[dict[str, Any]])
assert_type(tracker.cost_by_model, dict[str, Decimal])
assert_type(tracker.cost_by_provider, dict[str, Decimal])
assert_type(tracker.cost_by("user"), dict[str, Decimal])
assert_type(tracker.budget, Decimal | None)
assert_type(tracker.remaining, Decimal | None)
assert_type(tracker.budget_exceeded, bool)
assert_type(tracker.events(since="2026-11-01", until=1_800_000_000.0, model="gpt-4o", limit=10), list[Event])
assert_type(tracker.estimate_cost("gpt-4o", messages, max_tokens=512), Decimal | None)
assert_type(tracker.can_afford("gpt-4o", messages, max_tokens=512), bool)
for line in tracker.budget_lines():
    assert_type(line, BudgetLine)
    assert_type(line.spent_usd, Decimal)
    assert_type(line.remaining_usd, Decimal | None)
    assert_type(line.fraction, float | None)
    print(line.label, line.window, line.exceeded)
for entry in tracker.history:
    print(entry["cost"], entry["metadata"])

# -- summaries ------------------------------------------------------------------------------------------------
window: ReportWindow = "month"
live = tracker.summary(window=window)
assert_type(live, Summary)
print(live.total_usd, live.requests, live.unpriced, live.saved_by_cache_usd, live.prompt_tokens)
Console().print(tracker.summary())
ledger = report("sqlite:///costs.db", by="user", window="day")
assert_type(ledger, Summary)
assert_type(ledger.total_usd, Decimal)
for row in ledger.rows:
    assert_type(row, SummaryRow)
    assert_type(row.cost_usd, Decimal)
ledger_dict: dict[str, Any] = ledger.to_dict()

# -- prices ---------------------------------------------------------------------------------------------------
price = tokencost.register_price("acme-large-2", input_per_mtok=4, output_per_mtok=12, cache_read_per_mtok="0.4")
assert_type(price, Price)
tokencost.register_price("acme-small", input_per_mtok=Decimal("0.1"), output_per_mtok=0.4)


class TeamPrices:
    """A price source of one's own: a ``name`` and ``lookup``."""

    name = "team-sheet"

    def lookup(self, model: str, provider: str | None) -> Price | None:
        return None


source: PriceSource = TeamPrices()

# -- flush and close ------------------------------------------------------------------------------------------
assert_type(tracker.flush(timeout=5.0), bool)
assert_type(tracker.export_csv("costs.csv"), int)
tracker.reset()
tracker.close()

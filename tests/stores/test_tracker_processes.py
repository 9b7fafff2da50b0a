"""Trackers in many processes sharing one budget through a store: real litellm calls, real Redis and SQLite.

Each worker is its own interpreter with its own ``CostTracker`` registered in litellm, making mock completions
of a model priced at $0.05 a call, until its budget refuses it. Workers fork from a fork server that imported
litellm once, so twenty of them do not each pay for ``import litellm``.
"""

from __future__ import annotations

import multiprocessing
from decimal import Decimal
from multiprocessing.context import BaseContext
from typing import Any

import pytest

from tokencost.stores import store_from_url

from .test_store_processes import run_workers

pytestmark = pytest.mark.slow

LIMIT_UNITS = 10**12  # $1.00
CALL_UNITS = 5 * 10**10  # $0.05: 10 prompt tokens at $1,000/M + 20 output tokens at $2,000/M (litellm's mock usage)


@pytest.fixture(scope="module")
def ctx() -> BaseContext:
    """A fork server that has imported litellm and the tracker once."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(
        ["litellm", "tokencost.tracker", "tokencost.stores.redis", "tokencost.stores.sqlite"]
    )
    return context


def tracker_worker(url: str, strict: bool, barrier: Any, results: Any) -> None:
    """Call litellm through a tracker sharing a $1.00 budget until refused three times in a row."""
    try:
        import litellm

        import tokencost
        from tokencost import Budget, BudgetExceededError, CostTracker

        tokencost.register_price("race-model", input_per_mtok=1000, output_per_mtok=2000)
        tracker = CostTracker(store=url, name="race", budgets=[Budget(limit_usd=1, strict=strict)], print_summary=False)
        litellm.callbacks = [tracker]
        barrier.wait(timeout=120)
        done = refused = 0
        while refused < 3:
            try:
                litellm.completion(
                    model="openai/race-model",
                    messages=[{"role": "user", "content": "hi"}],
                    mock_response="ok",
                    max_tokens=30,
                )
                done += 1
                refused = 0
            except BudgetExceededError:
                refused += 1
        tracker.flush(60)
        tracker.close()
        results.put(done)
    except BaseException as exc:  # the parent reports it
        results.put(f"worker: {exc!r}")


def race(ctx: BaseContext, url: str, workers: int, strict: bool) -> int:
    """Run the workers; return how many calls they made together."""
    barrier = ctx.Barrier(workers)
    return sum(run_workers(ctx, tracker_worker, [(url, strict, barrier)] * workers))


def spent_units(url: str) -> tuple[int, int]:
    """Return (cost units, requests) recorded in the shared ledger."""
    store = store_from_url(url)
    try:
        totals = store.totals("race")
        return totals.cost_units, totals.requests
    finally:
        store.close()


def test_twenty_processes_never_overspend_a_strict_redis_budget(ctx: BaseContext, redis_server: str) -> None:
    """20 worker processes sharing a strict $1.00 budget through Redis spend at most $1.00 together."""
    calls = race(ctx, redis_server, 20, strict=True)
    units, requests = spent_units(redis_server)
    assert requests == calls
    assert units == calls * CALL_UNITS
    assert units <= LIMIT_UNITS
    assert units >= LIMIT_UNITS - 2 * CALL_UNITS  # refusals came from the limit, not from a failure


def test_eight_processes_never_overspend_a_strict_sqlite_budget(ctx: BaseContext, sqlite_url: str) -> None:
    """8 worker processes sharing a strict $1.00 budget through one SQLite file spend at most $1.00 together."""
    calls = race(ctx, sqlite_url, 8, strict=True)
    units, requests = spent_units(sqlite_url)
    assert requests == calls
    assert units <= LIMIT_UNITS
    assert units >= LIMIT_UNITS - 2 * CALL_UNITS


def test_non_strict_overshoot_is_at_most_one_call_per_worker(ctx: BaseContext, redis_server: str) -> None:
    """Without strict mode, 20 workers overshoot a shared $1.00 budget by at most one in-flight call each."""
    race(ctx, redis_server, 20, strict=False)
    units, _ = spent_units(redis_server)
    assert units >= LIMIT_UNITS
    assert Decimal(units - LIMIT_UNITS) <= 20 * CALL_UNITS

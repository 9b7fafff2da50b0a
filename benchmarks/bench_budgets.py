"""Budget benchmarks: the pre-call check's cost on mock completions, and the 16-thread strict race.

Run: python benchmarks/bench_budgets.py [--calls 3000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from decimal import Decimal

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm
from litellm.integrations.custom_logger import CustomLogger

import tokencost
from tokencost import Budget, BudgetExceededError, CostTracker

MESSAGES = [{"role": "user", "content": "hi"}]


class NoOp(CustomLogger):  # type: ignore[misc]
    """The baseline: a callback that does nothing."""


def _per_call(n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        litellm.completion(model="gpt-4o", messages=MESSAGES, mock_response="ok")
    return (time.perf_counter() - start) / n


def check_overhead(calls: int, rounds: int = 10) -> tuple[float, float]:
    """Median per-call time with a no-op logger vs a tracker with a per-user daily and a strict budget."""
    tracker = CostTracker(
        print_summary=False,
        budgets=[Budget(limit_usd=10**9, per="user", window="day"), Budget(limit_usd=10**9, strict=True)],
    )
    noop = NoOp()
    base, tracked = [], []
    with tokencost.scope(user="alice"):
        for _ in range(rounds):
            litellm.callbacks = [noop]
            base.append(_per_call(calls // rounds))
            litellm.callbacks = [tracker]
            tracked.append(_per_call(calls // rounds))
    litellm.callbacks = []
    tracker.close()
    return statistics.median(base), statistics.median(tracked)


def strict_race(threads: int = 16, calls: int = 60) -> tuple[Decimal, Decimal, int, int, Decimal]:
    """16 threads race a strict $1.00 budget; return (spent, limit, ok calls, refused, one worst case)."""
    tokencost.register_price("bench-strict-model", input_per_mtok=1000, output_per_mtok=2000)
    tracker = CostTracker(budgets=[Budget(limit_usd=1, strict=True)], print_summary=False)
    litellm.callbacks = [tracker]
    counts = {"ok": 0, "refused": 0}
    lock = threading.Lock()

    def work() -> None:
        for _ in range(calls):
            try:
                litellm.completion(
                    model="openai/bench-strict-model", messages=MESSAGES, mock_response="x", max_tokens=30
                )
                outcome = "ok"
            except BudgetExceededError:
                outcome = "refused"
            with lock:
                counts[outcome] += 1

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    tracker.flush(10)
    worst = tracker.estimate_cost("bench-strict-model", MESSAGES, max_tokens=30) or Decimal(0)
    spent = tracker.total_cost
    litellm.callbacks = []
    tracker.close()
    return spent, Decimal(1), counts["ok"], counts["refused"], worst


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=3000)
    args = parser.parse_args()
    _per_call(200)
    base, tracked = check_overhead(args.calls)
    print(
        f"pre-call checks (per-user day + strict): no-op {base * 1e6:.0f} us/call, tracker {tracked * 1e6:.0f} "
        f"us/call, ratio {tracked / base:.3f} (target <= 1.05)"
    )
    spent, limit, ok, refused, worst = strict_race()
    print(
        f"16-thread strict race: spent ${spent} of ${limit} ({ok} calls, {refused} refused); "
        f"unused ${limit - spent}, one call's worst case ${worst}"
    )


if __name__ == "__main__":
    main()

"""Core benchmarks: tracker overhead on mock completions, track() throughput, memory per event, import time.

Run: python benchmarks/bench_tracker.py [--calls 2000] [--events 1000000]
Ratios are measured side by side in one process, interleaved, so a noisy machine affects both sides alike.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm
import psutil
from litellm.integrations.custom_logger import CustomLogger

from tokencost import Budget, CostTracker

MESSAGES = [{"role": "user", "content": "hi"}]


class NoOp(CustomLogger):  # type: ignore[misc]
    """The baseline: a callback that does nothing."""

    def log_success_event(self, kwargs, response_obj, start_time, end_time):  # type: ignore[no-untyped-def]
        pass


def _per_call(n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        litellm.completion(model="gpt-4o", messages=MESSAGES, mock_response="ok")
    return (time.perf_counter() - start) / n


def overhead(calls: int, rounds: int = 10, store: str = "memory://", budgets: bool = False) -> tuple[float, float]:
    """Return median per-call seconds with the no-op logger and with a CostTracker, interleaved."""
    noop = NoOp()
    tracker = CostTracker(print_summary=False, store=store, budgets=[Budget(limit_usd=10**9)] if budgets else ())
    base, tracked = [], []
    for _ in range(rounds):
        litellm.callbacks = [noop]
        base.append(_per_call(calls // rounds))
        litellm.callbacks = [tracker]
        tracked.append(_per_call(calls // rounds))
        tracker.flush(10)
    litellm.callbacks = []
    tracker.close()
    return statistics.median(base), statistics.median(tracked)


def throughput(events: int) -> float:
    """Return track() calls per second (pricing + aggregation, no litellm)."""
    tracker = CostTracker(print_summary=False)
    start = time.perf_counter()
    for _ in range(events):
        tracker.track(model="gpt-4o", prompt_tokens=1000, completion_tokens=200, cache_read_tokens=500)
    rate = events / (time.perf_counter() - start)
    tracker.close()
    return rate


def memory(events: int) -> float:
    """Return bytes per event: RSS after ``events`` track() calls minus RSS after 10,000, full history kept."""
    tracker = CostTracker(print_summary=False)
    proc = psutil.Process()
    for _ in range(10_000):
        tracker.track(model="gpt-4o", prompt_tokens=1000, completion_tokens=200)
    gc.collect()
    before = proc.memory_info().rss
    for i in range(events - 10_000):
        tracker.track(model="gpt-4o", prompt_tokens=1000 + i % 7, completion_tokens=200)
    gc.collect()
    after = proc.memory_info().rss
    assert tracker.request_count == events
    tracker.close()
    return (after - before) / (events - 10_000)


def import_ms() -> tuple[float, float]:
    """Return (import litellm, tokencost on top of it) in ms from -X importtime, median of 5 runs.

    "On top" is ``from tokencost import CostTracker`` after ``import litellm``: the sum of the top-level
    tokencost modules' cumulative times (the package loads its modules on first use).
    """

    def measure(code: str, wanted: Callable[[str], bool]) -> float:
        out = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True).stderr
        total = 0
        for line in out.splitlines():
            parts = line.split("|")
            if len(parts) == 3 and wanted(parts[2].rstrip()):
                total += int(parts[1])
        return total / 1000

    lit = statistics.median(measure("import litellm", lambda name: name == " litellm") for _ in range(5))
    own = statistics.median(
        measure("import litellm; from tokencost import CostTracker", lambda name: name.startswith(" tokencost"))
        for _ in range(5)
    )
    return lit, own


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    _per_call(200)  # warm litellm up
    base, tracked = overhead(args.calls)
    print(
        f"overhead memory store:   no-op {base * 1e6:7.1f} us/call, tracker {tracked * 1e6:7.1f} us/call, "
        f"ratio {tracked / base:.3f} (target <= 1.05)"
    )
    base, tracked = overhead(args.calls, budgets=True)
    print(
        f"overhead with a budget:  no-op {base * 1e6:7.1f} us/call, tracker {tracked * 1e6:7.1f} us/call, "
        f"ratio {tracked / base:.3f} (target <= 1.05)"
    )
    if os.path.exists("tokencost/stores/sqlite.py"):
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            base, tracked = overhead(args.calls, store=f"sqlite:///{tmp}/bench.db")
        print(
            f"overhead sqlite store:   no-op {base * 1e6:7.1f} us/call, tracker {tracked * 1e6:7.1f} us/call, "
            f"ratio {tracked / base:.3f} (target <= 1.08)"
        )
    rate = throughput(min(args.events, 300_000))
    print(f"track() throughput:      {rate:,.0f} events/s (target >= 200,000)")
    per_event = memory(args.events)
    print(
        f"memory per event:        {per_event:.0f} bytes, {per_event * args.events / 1e6:.0f} MB per "
        f"{args.events:,} events (target <= 100 MB)"
    )
    lit, own = import_ms()
    print(f"import time:             litellm {lit:.0f} ms, tokencost on top {own:.1f} ms (target <= 30 ms)")


if __name__ == "__main__":
    main()

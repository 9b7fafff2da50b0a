"""Core benchmarks: tracker overhead on mock completions, track() throughput, memory per event, import time.

Run: python benchmarks/bench_tracker.py [--calls 3000] [--rounds 10] [--events 1000000]
Ratios are measured side by side in one process, interleaved, so a noisy machine affects both sides alike.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import itertools
import json
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import psutil
from bench_stores import start_redis
from overhead_rounds import Result, Side, interleave, noop_side, warm_up

import tokencost
from tokencost import Budget, CostTracker
from tokencost.events import Event
from tokencost.pricing import Price
from tokencost.usage import Usage

MESSAGES = [{"role": "user", "content": "hi"}]
HERE = Path(__file__).resolve().parent
THEIRS = "llm-tokencost==0.7.0"


class Counted(CostTracker):
    """A CostTracker that counts the success events litellm delivers to it (the isolation check reads it)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.delivered: set[str] = set()  # the call ids litellm delivered to it (late ones of other rounds too)
        self.delivered_after_close = 0  # a closed tracker still in litellm's lists would count here
        self.own_calls: set[str] = set()  # the calls of its own round (one may be delivered after its close)
        self.recorded_at_close = 0
        self._count_lock = threading.Lock()

    def log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        with self._count_lock:
            self.delivered.add(str(kwargs.get("litellm_call_id")))
            # The pool may still deliver one of its own round's calls after the round closed it; a call of
            # another round reaching it would mean it was not taken out of litellm's lists.
            if self.closed and kwargs.get("litellm_call_id") not in self.own_calls:
                self.delivered_after_close += 1
        super().log_success_event(kwargs, response_obj, start_time, end_time)


def tracker_side(name: str, store: Callable[[], str], budgets: bool = False) -> Side:
    """A tokencost side: a new tracker (and ledger) each round, current at return after every call."""

    def make() -> Counted:
        chosen = (
            [Budget(limit_usd=10**9, per="user", window="day"), Budget(limit_usd=10**9, strict=True)] if budgets else []
        )
        return Counted(print_summary=False, store=store(), budgets=chosen, name=f"bench-{uuid.uuid4().hex[:8]}")

    def close(tracker: Counted) -> None:
        # Every delivered event of its own calls is in the store, none lost. Sync calls are recorded in the
        # caller's thread when litellm hands them to its pool, so the pool's own delivery may still be on its way:
        # more recorded than delivered is the normal state at the end of a round; fewer would be an event lost.
        # (The pool also delivers late events of the previous round's calls to whichever logger is registered
        # then: a tracker ignores calls it never saw start, so those are not counted here.)
        recorded = tracker.recorded_at_close = tracker.request_count  # a closed store is not read again
        tracker.close()
        delivered = len(tracker.delivered & tracker.own_calls)
        if recorded < delivered:
            raise RuntimeError(f"{name}: {delivered} of its calls' events delivered, {recorded} recorded")

    def land(tracker: Counted, call_id: str) -> None:
        tracker.own_calls.add(call_id)
        tracker.calls.await_returned()  # what every view waits for

    return Side(
        name,
        make,
        lambda tracker, call_id: land(tracker, call_id),
        # Its events landed: recorded (in the caller's thread, before the call returns), plus any event litellm
        # still delivers to it after its round closed it (which would mean it was not taken out of the lists).
        lambda tracker: (
            (tracker.recorded_at_close if tracker.closed else tracker.request_count) + tracker.delivered_after_close
        ),
        close,
        (lambda: tokencost.scope(user="alice")) if budgets else contextlib.nullcontext,
    )


def theirs(calls: int, rounds: int, threads: int = 1) -> list[Result] | str:
    """Run ``llm-tokencost`` against its own no-op baseline, from a temporary virtual environment of its own."""
    with tempfile.TemporaryDirectory() as tmp:
        venv = Path(tmp) / "venv"
        # System site packages give it this machine's litellm; its own top-level tokencost comes first.
        subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
        python = venv / "bin" / "python"
        pip = [str(python), "-m", "pip", "install", "-q", "--no-deps", THEIRS]
        done = subprocess.run(pip, capture_output=True, text=True)
        if done.returncode != 0:
            return f"not measured: pip install {THEIRS} failed ({done.stderr.strip().splitlines()[-1:]})"
        script = Path(tmp) / "overhead_rounds.py"  # a copy, so no folder holding our tokencost is on its path
        shutil.copy(HERE / "overhead_rounds.py", script)
        command = [str(python), str(script), "--side", "llm-tokencost", "--calls", str(calls)]
        command += ["--rounds", str(rounds), "--threads", str(threads)]
        env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        env.pop("PYTHONPATH", None)
        out = subprocess.run(command, capture_output=True, text=True, cwd=tmp, env=env)
        if out.returncode != 0:
            return f"not measured: {out.stderr.strip().splitlines()[-1:]}"
        check = subprocess.run(
            [str(python), "-c", "import tokencost; print(tokencost.__version__, tokencost.__file__)"],
            capture_output=True, text=True, cwd=tmp, env=env,
        )  # fmt: skip
        if str(venv) not in check.stdout:
            return f"not measured: the venv imported {check.stdout.strip()}"
        return [Result(**r) for r in json.loads(out.stdout.strip().splitlines()[-1])]


def overhead(calls: int, rounds: int, with_redis: bool, with_theirs: bool) -> None:
    """Print each side's ratio to the no-op logger, from isolated interleaved rounds."""
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        sides = [
            noop_side(),
            tracker_side("tracker, memory store", lambda: "memory://"),
            tracker_side("tracker, 2 budgets", lambda: "memory://", budgets=True),
            tracker_side("tracker, SQLite store", lambda: f"sqlite:///{tmp}/bench.db"),
        ]
        if with_redis and shutil.which("redis-server"):
            server, url = start_redis(tmp)
            stack.callback(lambda: (server.terminate(), server.wait(10)))
            sides.append(tracker_side("tracker, Redis store", lambda: url))
        targets = {"memory": 1.05, "budgets": 1.08, "SQLite": 1.08, "Redis": 1.12}
        results = interleave(sides, calls, rounds)
        print(f"overhead, {rounds} interleaved rounds of {calls // rounds} calls, median (spread) of per-round ratios:")
        for r in results:
            target = next((t for key, t in targets.items() if key in r.name), None)
            print("  " + r.line() + (f" (target <= {target})" if target else ""))
        threaded = interleave(sides[:2], calls, rounds, threads=8)
        print("8 threads (throughput ratio: no-op calls/s over tracker calls/s):")
        for r in threaded:
            print("  " + r.line() + (" (target <= 1.10)" if r.name != "no-op" else ""))
    if with_theirs:
        got = theirs(calls, rounds)
        if isinstance(got, str):
            print(f"llm-tokencost: {got}")
        else:
            print(f"llm-tokencost 0.7.0, against its own no-op in a venv of its own, same run ({rounds} rounds):")
            for r in got:
                print("  " + r.line())


def throughput(events: int) -> float:
    """Return track() calls per second (pricing + aggregation, no litellm), on a new tracker."""
    tracker = CostTracker(print_summary=False)
    start = time.perf_counter()
    for _ in range(events):
        tracker.track(model="gpt-4o", prompt_tokens=1000, completion_tokens=200, cache_read_tokens=500)
    rate = events / (time.perf_counter() - start)
    tracker.close()
    return rate


def floor(events: int) -> float:
    """Return the calls per second of track()'s work written as one function with nothing around it.

    Per call, as track() does: a call with keyword arguments, the Usage, the price from a dict, its cost and
    saving, a call id, the Event, the kind from a dict, a lock, one packed row. Left out: argument checks, call
    layers, the scope and budget context, call id parsing, pending prices, budgets. What this machine's CPython
    does at best, to read track()'s figure against.
    """
    prices = {("gpt-4o", "openai"): Price.per_mtok("2.5", "10", cache_read="1.25", source="litellm")}
    kinds: dict[tuple[object, ...], int] = {}
    lock = threading.Lock()
    row = struct.Struct("=d2I7q")
    chunk = bytearray(row.size * events)
    offset = 0
    sequence = itertools.count(1)

    def record(model: str, prompt_tokens: int, completion_tokens: int, cache_read_tokens: int = 0) -> Event:
        nonlocal offset
        usage = Usage(prompt_tokens - cache_read_tokens, cache_read_tokens, 0, completion_tokens, 0)
        price = prices[model, "openai"]
        number = next(sequence)
        event = Event(
            f"t-{number}", time.time(), model, "openai", usage, price.cost_units(usage), price.source, price,
            price.saved_units(usage), {}, "ok", None,
        )  # fmt: skip
        key = (model, "openai", id(price), price.source, (), "ok", None)
        with lock:
            kind = kinds.get(key)
            if kind is None:
                kind = kinds[key] = len(kinds)
            row.pack_into(
                chunk, offset, event.timestamp, kind, number, event.cost_units, event.saved_units, usage.input,
                usage.cache_read, usage.cache_write, usage.output, usage.reasoning,
            )  # fmt: skip
            offset += row.size
        return event

    start = time.perf_counter()
    for _ in range(events):
        record(model="gpt-4o", prompt_tokens=1000, completion_tokens=200, cache_read_tokens=500)
    return events / (time.perf_counter() - start)


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

    # As users import it: from compiled bytecode (with PYTHONDONTWRITEBYTECODE set, every run would compile
    # every module from source, a third of the time measured). The first run writes the bytecode.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([sys.executable, "-c", "import litellm; from tokencost import CostTracker"], env=env, check=True)

    def measure(code: str, wanted: Callable[[str], bool]) -> float:
        command = [sys.executable, "-X", "importtime", "-c", code]
        out = subprocess.run(command, capture_output=True, text=True, env=env).stderr
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
    parser.add_argument("--calls", type=int, default=3000, help="mock completions per side, over all rounds")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--no-redis", action="store_true", help="skip the Redis side")
    parser.add_argument("--no-theirs", action="store_true", help="skip llm-tokencost (needs PyPI)")
    parser.add_argument("--overhead-only", action="store_true", help="only the mock completion rounds")
    parser.add_argument("--no-overhead", action="store_true", help="skip the mock completion rounds")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--memory-only", action="store_true", help="print bytes per event and exit")
    args = parser.parse_args()
    if args.memory_only:
        print(memory(args.events))
        return
    if not args.no_overhead:
        warm_up()
        overhead(args.calls, args.rounds, with_redis=not args.no_redis, with_theirs=not args.no_theirs)
    if args.overhead_only:
        return
    n = min(args.events, 200_000)
    rates = [(throughput(n), floor(n)) for _ in range(3)]  # interleaved, best of 3 each
    rate, best = max(r[0] for r in rates), max(r[1] for r in rates)
    print(
        f"track() throughput:      {rate:,.0f} events/s (target >= 200,000); its work as one function "
        f"{best:,.0f} events/s, track() at {rate / best:.0%} of it"
    )
    # In a process of its own: memory the runs above freed would be reused and hide the growth.
    child = [sys.executable, __file__, "--memory-only", "--events", str(args.events)]
    per_event = float(subprocess.run(child, capture_output=True, text=True, check=True).stdout.split()[-1])
    print(
        f"memory per event:        {per_event:.0f} bytes, {per_event * args.events / 1e6:.0f} MB per "
        f"{args.events:,} events (target <= 100 MB)"
    )
    lit, own = import_ms()
    print(f"import time:             litellm {lit:.0f} ms, tokencost on top {own:.1f} ms (target <= 30 ms)")


if __name__ == "__main__":
    main()

"""Benchmark the ledger stores: events/s, reserve+record latency, and a 20-process strict budget race.

Run::

    python benchmarks/bench_stores.py                 # starts a throwaway redis-server when one is on PATH
    python benchmarks/bench_stores.py --redis redis://127.0.0.1:6379/15 --events 500000

Measures, from one process:

* events/s through ``record()`` then ``flush()`` for memory://, sqlite:// and redis:// (best of ``--repeat``);
* the latency of one strict-budget call's store work, ``reserve()`` then ``record()`` (p50/p99), for SQLite
  and Redis;
* the strict race: ``--workers`` processes (default 20) reserve worst-case costs and record actual costs against
  one $1.00 limit through Redis (and 8 through one SQLite file); the table shows spent against the limit.

Targets (issue 5): memory >= 200,000 events/s, SQLite >= 100,000, Redis >= 30,000; spent never above the limit.
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from tokencost.events import Event
from tokencost.pricing import Price
from tokencost.stores import store_from_url
from tokencost.stores.base import Check
from tokencost.usage import Usage

LIMIT = 10**12  # $1.00 in pico-dollars
PRICE = Price.per_mtok("2.5", "10", cache_read="1.25", source="litellm")


def make_events(n: int) -> list[Event]:
    """Build ``n`` realistic events: UUID call ids, a few users and tags, cached prompt tokens."""
    rng = random.Random(7)
    out = []
    now = time.time()
    for i in range(n):
        usage = Usage(input=rng.randrange(100, 5000), cache_read=rng.randrange(0, 2000), output=rng.randrange(10, 800))
        out.append(
            Event(
                call_id=str(uuid.uuid4()),
                timestamp=now + i * 0.001,
                model="gpt-4o",
                provider="openai",
                usage=usage,
                cost_units=PRICE.cost_units(usage),
                price_source="litellm",
                price=PRICE,
                saved_units=PRICE.saved_units(usage),
                metadata={"user": f"user-{i % 50}", "tags": ["batch"] if i % 3 else ["chat", "eval"]},
            )
        )
    return out


def throughput(url: str, events: list[Event], repeat: int) -> float:
    """Return the best events/s of ``repeat`` runs recording ``events`` (two counters each) then flushing."""
    best = 0.0
    for run in range(repeat):
        # A fresh SQLite file each run: appending to a new ledger, not refilling pages a reset freed.
        store = store_from_url(url.replace(".db", f"-{run}.db") if url.startswith("sqlite") else url)
        ledger = f"bench-{run}-{uuid.uuid4().hex[:6]}"
        start = time.perf_counter()
        for event in events:
            store.record(ledger, event, ("total", "user=x"))
        store.flush()
        elapsed = time.perf_counter() - start
        assert store.totals(ledger).requests == len(events)
        store.reset(ledger)
        store.close()
        best = max(best, len(events) / elapsed)
    return best


def latency(url: str, calls: int) -> tuple[float, float]:
    """Return p50 and p99 in microseconds of reserve() then record() against a strict limit."""
    store = store_from_url(url)
    ledger = f"latency-{uuid.uuid4().hex[:6]}"
    check = Check("total", limit_units=10**18)
    event = make_events(1)[0]
    samples = []
    for i in range(calls):
        rid = f"r{i}"
        start = time.perf_counter()
        assert store.reserve(ledger, rid, [check], 10**10, 0, ttl=60) is None
        store.record(ledger, event, ("total",), reservation=rid)
        samples.append((time.perf_counter() - start) * 1e6)
    store.reset(ledger)
    store.close()
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


def race_worker(url: str, ledger: str, seed: int, barrier: Any, results: Any) -> None:
    """Reserve worst-case costs and record actual ones against $1.00 until refused five times in a row."""
    store = store_from_url(url)
    rng = random.Random(seed)
    check = Check("total", limit_units=LIMIT)
    usage = Usage(input=10)
    recorded = spent = refusals = 0
    barrier.wait(timeout=60)
    while refusals < 5:
        worst = rng.randrange(10**9, 3 * 10**10)
        rid = f"w{seed}-{recorded}-{refusals}"
        if store.reserve(ledger, rid, [check], worst, 0, ttl=60) is not None:
            refusals += 1
            continue
        refusals = 0
        actual = rng.randrange(worst // 2, worst + 1)
        store.record(ledger, Event(rid, time.time(), "m", "openai", usage, actual), ("total",), reservation=rid)
        recorded += 1
        spent += actual
    store.close()
    results.put((recorded, spent))


def race(url: str, workers: int) -> tuple[int, int, int, float]:
    """Run the strict race; return (calls, spent units by the store, spent by the workers, seconds)."""
    ctx = multiprocessing.get_context("forkserver")
    ledger = f"race-{uuid.uuid4().hex[:6]}"
    barrier = ctx.Barrier(workers)
    results = ctx.Queue()
    procs = [ctx.Process(target=race_worker, args=(url, ledger, s, barrier, results)) for s in range(workers)]
    start = time.perf_counter()
    for proc in procs:
        proc.start()
    outcomes = [results.get(timeout=300) for _ in procs]
    elapsed = time.perf_counter() - start
    for proc in procs:
        proc.join(timeout=30)
    store = store_from_url(url)
    totals = store.totals(ledger)
    store.reset(ledger)
    store.close()
    return totals.requests, totals.cost_units, sum(s for _, s in outcomes), elapsed


def free_port() -> int:
    """Return a free loopback TCP port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_redis(folder: str) -> tuple[subprocess.Popen[bytes], str]:
    """Start a throwaway redis-server without persistence; return it and its URL."""
    port = free_port()
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            folder,
        ],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start")


def main() -> None:
    """Run the benchmarks and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200_000, help="events per throughput run")
    parser.add_argument("--repeat", type=int, default=3, help="throughput runs per store (best is shown)")
    parser.add_argument("--calls", type=int, default=2000, help="reserve+record calls for the latency")
    parser.add_argument("--workers", type=int, default=20, help="processes in the Redis race")
    parser.add_argument("--redis", help="redis URL (default: start a throwaway redis-server)")
    args = parser.parse_args()
    multiprocessing.get_context("forkserver").set_forkserver_preload(
        ["tokencost.stores.sqlite", "tokencost.stores.redis"]
    )

    folder = tempfile.mkdtemp(prefix="tokencost-bench-")
    server = None
    redis_url = args.redis
    if redis_url is None and shutil.which("redis-server"):
        server, redis_url = start_redis(folder)
    sqlite_url = f"sqlite:///{Path(folder) / 'bench.db'}"
    rows: list[tuple[str, str, str]] = []
    try:
        events = make_events(args.events)
        # The benchmark holds every event at once (an application does not): keep the garbage collector from
        # walking them over and over, which would slow every store alike.
        gc.freeze()
        urls = [("memory", "memory://"), ("sqlite", sqlite_url)]
        if redis_url:
            urls.append(("redis", redis_url))
        for name, url in urls:
            rate = throughput(url, events, args.repeat)
            rows.append((name, "record + flush", f"{rate:,.0f} events/s"))
        for name, url in urls[1:]:
            p50, p99 = latency(url, args.calls)
            rows.append((name, "reserve + record", f"p50 {p50:,.0f} us, p99 {p99:,.0f} us"))
        calls, spent, reported, seconds = race(sqlite_url, 8)
        verdict = "OK" if spent <= LIMIT and spent == reported else "OVERSPENT"
        rows.append(
            (
                "sqlite",
                "8-process strict race",
                f"${spent / 1e12:.6f} of $1.00 in {calls} calls, {seconds:.1f} s: {verdict}",
            )
        )
        if redis_url:
            calls, spent, reported, seconds = race(redis_url, args.workers)
            verdict = "OK" if spent <= LIMIT and spent == reported else "OVERSPENT"
            rows.append(
                (
                    "redis",
                    f"{args.workers}-process strict race",
                    f"${spent / 1e12:.6f} of $1.00 in {calls} calls, {seconds:.1f} s: {verdict}",
                )
            )
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)

    width = [max(len(row[i]) for row in rows) for i in range(3)]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {args.events:,} events per run")
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, width, strict=True)))


if __name__ == "__main__":
    main()

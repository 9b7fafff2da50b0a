"""Benchmark ``tokencost report`` and ``tokencost export`` over a large SQLite ledger.

Builds a ledger of ``--events`` calls (default 1,000,000: 8 models, 200 users, tags, 30 days) by recording
through ``SQLiteStore``, then measures:

* ``build_summary`` in process (open the store, summarize by model with budgets, close): the report's own time;
* ``tokencost report`` as a real process: wall time, split into interpreter + imports and the command itself;
* ``export_events`` to CSV in process under ``tracemalloc``: time and peak traced memory;
* ``tokencost export --format csv`` as a real process: wall time and peak RSS (against an import-only baseline).

Run::

    LITELLM_LOCAL_MODEL_COST_MAP=True python benchmarks/bench_report.py --events 1000000 --db /tmp/bench.db

The ledger is reused when ``--db`` already holds ``--events`` calls (building it is the slow part).
"""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import argparse
import json
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from decimal import Decimal
from pathlib import Path

from tokencost.budgets import Budget, budget_lines, dump_budgets
from tokencost.events import Event
from tokencost.pricing.litellm_map import LitellmMapSource
from tokencost.reports import build_summary, export_events, open_store
from tokencost.stores import store_from_url
from tokencost.usage import Usage

LEDGER = "default"
MODELS = (
    "gpt-4o",
    "gpt-4o-mini",
    "o3",
    "claude-sonnet-4-5",
    "claude-haiku-4-5",
    "gemini/gemini-2.5-flash",
    "gpt-4.1-nano",
    "acme-unpriced",
)
DAYS = 30

# The child runs the command in process and reports its own timings and peak RSS (ru_maxrss, KiB on Linux).
CHILD = """
import json, resource, sys, time
t0 = time.perf_counter()
from tokencost.cli import main
t1 = time.perf_counter()
code = 0
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code or 0
t2 = time.perf_counter()
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"import_s": t1 - t0, "command_s": t2 - t1, "rss_kib": rss, "code": code}), file=sys.stderr)
"""


def build(url: str, n: int) -> float:
    """Record ``n`` events through the store; return the seconds it took."""
    source = LitellmMapSource()
    prices = {model: source.lookup(model, None) for model in MODELS}
    store = store_from_url(url)
    store.set_meta(LEDGER, "budgets", dump_budgets([Budget(limit_usd=50_000), Budget(limit_usd=5, per="user")]))
    start_ts = time.time() - DAYS * 86_400
    step = DAYS * 86_400 / n
    started = time.perf_counter()
    for i in range(n):
        model = MODELS[i % len(MODELS)]
        price = prices[model]
        usage = Usage(input=500 + i % 1_000, cache_read=(i % 7) * 256, output=50 + i % 400, reasoning=(i % 3) * 10)
        cost = None if price is None else price.cost_units(usage)
        store.record(
            LEDGER,
            Event(
                call_id=uuid.uuid4().hex,
                timestamp=start_ts + i * step,
                model=model,
                provider=model.split("/", 1)[0] if "/" in model else "openai",
                usage=usage,
                cost_units=cost,
                price_source=None if price is None else price.source,
                price=price,
                saved_units=0 if price is None else price.saved_units(usage),
                metadata={"user": f"user{i % 200}", "tags": ["bench", f"team{i % 5}"]},
                reason=None if price is not None else "no price known",
            ),
        )
    store.close()
    return time.perf_counter() - started


def child(args: list[str]) -> tuple[float, dict[str, float]]:
    """Run ``tokencost ARGS`` in a fresh interpreter; return wall seconds and the child's own measurements."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *args], capture_output=True, text=True, env={**os.environ, "COLUMNS": "100"}
    )
    wall = time.perf_counter() - started
    stats = json.loads(done.stderr.strip().splitlines()[-1])
    if stats["code"] not in (0, None):
        raise SystemExit(f"tokencost {' '.join(args)} failed: {done.stderr}")
    return wall, stats


def main() -> None:
    """Build (or reuse) the ledger and print the measurements."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--db", default=str(Path(tempfile.gettempdir()) / "tokencost-bench.db"))
    parser.add_argument("--repeat", type=int, default=3, help="in-process report runs (best is reported)")
    parser.add_argument("--no-export", action="store_true", help="measure the report only")
    args = parser.parse_args()
    url = f"sqlite:///{Path(args.db).resolve()}"

    have = 0
    if Path(args.db).exists():
        store = open_store(url)
        have = store.totals(LEDGER).requests
        store.close()
    if have != args.events:
        Path(args.db).unlink(missing_ok=True)
        seconds = build(url, args.events)
        print(f"built {args.events:,} events in {seconds:.1f} s ({args.events / seconds:,.0f} events/s)")
    size = Path(args.db).stat().st_size
    print(f"ledger: {args.db} ({size / 2**20:,.0f} MiB, {args.events:,} events)")

    # -- report, in process
    best = float("inf")
    for _ in range(args.repeat):
        started = time.perf_counter()
        store = open_store(url)
        summary = build_summary(store, LEDGER)
        store.close()
        best = min(best, time.perf_counter() - started)
    print(f"report in process (open + by model + budgets + close): best of {args.repeat}: {best:.3f} s")
    store = open_store(url)
    for label, step in (
        ("totals()", lambda: store.totals(LEDGER)),
        ("aggregate(model)", lambda: store.aggregate(LEDGER, "model")),
        ("budget_lines()", lambda: budget_lines(store, LEDGER, None)),
    ):
        started = time.perf_counter()
        step()
        print(f"  of which {label}: {time.perf_counter() - started:.3f} s")
    store.close()
    for by in ("provider", "day", "user", "tag"):
        started = time.perf_counter()
        store = open_store(url)
        build_summary(store, LEDGER, by=by)
        store.close()
        print(f"  --by {by}: {time.perf_counter() - started:.3f} s")
    started = time.perf_counter()
    store = open_store(url)
    build_summary(store, LEDGER, window="day")
    store.close()
    print(f"  --window day: {time.perf_counter() - started:.3f} s")

    # -- report, real process
    wall, stats = child(["report", "--store", url])
    print(
        f"tokencost report (process): wall {wall:.2f} s = imports {stats['import_s']:.2f} s "
        f"+ command {stats['command_s']:.3f} s (+ interpreter start)"
    )
    _, baseline = child(["--help"])
    if args.no_export:
        return

    # -- export, in process with tracemalloc
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "costs.csv"
        store = open_store(url)
        tracemalloc.start()
        started = time.perf_counter()
        count = export_events(store, LEDGER, out, "csv")
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        store.close()
        print(
            f"export CSV in process: {count:,} events in {seconds:.1f} s ({count / seconds:,.0f}/s, under "
            f"tracemalloc), peak traced memory {peak / 2**20:.1f} MiB, file {out.stat().st_size / 2**20:,.0f} MiB"
        )
        # Exactness at scale: the exported costs add up to the report's total.
        exported = Decimal(0)
        with out.open(encoding="utf-8") as f:
            header = f.readline().rstrip("\n").split(",")
            cost_at = header.index("cost")
            import csv

            for row in csv.reader(f):
                if row[cost_at]:
                    exported += Decimal(row[cost_at])
        print(f"  exported sum {exported} == report total {summary.total_usd}: {exported == summary.total_usd}")

        # -- export, real process
        wall, stats = child(["export", "--store", url, "--format", "csv", "-o", str(Path(tmp) / "cli.csv")])
        print(
            f"tokencost export --format csv (process): wall {wall:.1f} s, command {stats['command_s']:.1f} s, "
            f"peak RSS {stats['rss_kib'] / 1024:,.0f} MiB (import-only baseline {baseline['rss_kib'] / 1024:,.0f} MiB)"
        )


if __name__ == "__main__":
    main()

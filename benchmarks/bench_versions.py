"""Two checkouts side by side: track() throughput, track() into SQLite, the report command, import time.

Run: python benchmarks/bench_versions.py OLD_TREE NEW_TREE [--pairs 6]
(for example ``git worktree add /tmp/old 8f3b842`` for the code before the redesign). Each figure is measured in a
process of its own with the tree on ``PYTHONPATH``, old and new alternating, and printed per pair.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

# One tree's figures, run in a process of its own (this file's own code must not import tokencost).
FIGURES = r"""
import json, subprocess, sys, tempfile, time
import litellm  # noqa: F401  (loaded, as in a program that uses it)
from tokencost import CostTracker

def rate(count, fn):
    start = time.perf_counter()
    fn()
    return count / (time.perf_counter() - start)

folder = tempfile.mkdtemp()
out = {}
best = 0.0
for _ in range(3):
    tracker = CostTracker(print_summary=False, linkup_api_key=False, price_cache_dir=folder)
    tracker.track("gpt-4o", 1000, 100)
    def run(tracker=tracker):
        for _ in range(200_000):
            tracker.track("gpt-4o", 1000, 100)
    best = max(best, rate(200_000, run))
    tracker.close()
out["track, memory store (events/s)"] = round(best)
best = 0.0
for i in range(3):
    url = f"sqlite:///{folder}/ledger{i}.db"
    tracker = CostTracker(store=url, print_summary=False, linkup_api_key=False, price_cache_dir=folder)
    tracker.track("gpt-4o", 1000, 100)
    tracker.flush(60)
    def run(tracker=tracker):
        for _ in range(100_000):
            tracker.track("gpt-4o", 1000, 100)
        tracker.flush(120)
    best = max(best, rate(100_000, run))
    tracker.close()
out["track into SQLite, flushed (events/s)"] = round(best)
report = [sys.executable, "-m", "tokencost.cli", "report", "--store", f"sqlite:///{folder}/ledger0.db"]
times = []
for _ in range(3):
    start = time.perf_counter()
    subprocess.run(report, capture_output=True, check=True)
    times.append(time.perf_counter() - start)
out["tokencost report as a command (s)"] = round(min(times), 3)
print(json.dumps(out))
"""
IMPORT = "import litellm; from tokencost import CostTracker"


def environment(tree: str) -> dict[str, str]:
    # From compiled bytecode, as users import it (PYTHONDONTWRITEBYTECODE would compile every module each run).
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env.update(PYTHONPATH=tree, LITELLM_LOCAL_MODEL_COST_MAP="True")
    return env


def import_ms(tree: str, runs: int = 7) -> float:
    """``from tokencost import CostTracker`` on top of ``import litellm``, median of ``runs`` (-X importtime)."""
    env = environment(tree)
    # Not from the current directory: ``python -c`` puts it first on sys.path, and a checkout's own tokencost folder
    # there would be imported instead of ``tree``'s.
    with tempfile.TemporaryDirectory() as cwd:
        subprocess.run([sys.executable, "-c", IMPORT], env=env, cwd=cwd, check=True)  # writes the bytecode

        def one() -> float:
            command = [sys.executable, "-X", "importtime", "-c", IMPORT]
            err = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, check=True).stderr
            rows = [line.split("|") for line in err.splitlines()]
            return sum(int(row[1]) for row in rows if len(row) == 3 and row[2].rstrip().startswith(" tokencost")) / 1000

        return statistics.median(one() for _ in range(runs))


def figures(tree: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as cwd:  # no tokencost folder of the current directory on the path
        done = subprocess.run(
            [sys.executable, "-c", FIGURES], env=environment(tree), cwd=cwd, capture_output=True, text=True, check=True
        )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    result["import on top of litellm (ms)"] = import_ms(tree)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("old", help="the tree measured first in each pair")
    parser.add_argument("new", help="the tree measured second in each pair")
    parser.add_argument("--pairs", type=int, default=6)
    args = parser.parse_args()
    seen: dict[str, dict[str, list[float]]] = {args.old: {}, args.new: {}}
    for pair in range(args.pairs):
        for tree in (args.old, args.new):
            started = time.perf_counter()
            for name, value in figures(tree).items():
                seen[tree].setdefault(name, []).append(value)
            print(f"pair {pair + 1}: {tree} ({time.perf_counter() - started:.0f} s)", flush=True)
    for name in seen[args.old]:
        old, new = seen[args.old][name], seen[args.new][name]
        change = statistics.median(new) / statistics.median(old) - 1
        print(
            f"{name}: old {min(old):g}-{max(old):g} (median {statistics.median(old):g}), "
            f"new {min(new):g}-{max(new):g} (median {statistics.median(new):g}), {change:+.1%}"
        )


if __name__ == "__main__":
    main()

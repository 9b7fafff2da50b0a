"""Benchmark ``POST /track``: requests per second and latency percentiles from one client on loopback.

The server runs in its own process (``tokencost.server.serve``, uvicorn) over a SQLite ledger in a temporary
folder; one ``httpx.Client`` with keep-alive sends the calls one after another and times each.

Usage::

    python benchmarks/bench_server.py                    # 5,000 calls, SQLite store
    python benchmarks/bench_server.py -n 20000 --store memory://
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

TOKEN = "bench-token"
SERVER = """
import sys
from tokencost.server import serve
serve(sys.argv[1], port=int(sys.argv[2]), token=sys.argv[3], log_level="warning")
"""


def free_port() -> int:
    """Return a port that was free a moment ago on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Return the nearest-rank percentile of already sorted values."""
    index = max(0, min(len(sorted_values) - 1, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


def main() -> None:
    """Start the server, send the calls, print the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--requests", type=int, default=5_000, help="timed calls (default 5,000)")
    parser.add_argument("--warmup", type=int, default=300, help="untimed calls first (default 300)")
    parser.add_argument("--store", default=None, help="store URL (default: SQLite in a temporary folder)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        store = args.store or f"sqlite:///{Path(folder) / 'bench.db'}"
        port = free_port()
        env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        server = subprocess.Popen([sys.executable, "-c", SERVER, store, str(port), TOKEN], env=env)
        base = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as client:
                deadline = time.monotonic() + 60
                while True:
                    try:
                        if client.get("/health").status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit("the server did not start")
                    time.sleep(0.1)
                body = {
                    "model": "gpt-4o",
                    "prompt_tokens": 10_000,
                    "completion_tokens": 500,
                    "cache_read_tokens": 8_000,
                    "endpoint": "/v1/chat",
                    "user": "bench",
                    "tags": ["bench"],
                }
                for _ in range(args.warmup):
                    client.post("/track", json=body).raise_for_status()
                latencies: list[float] = []
                started = time.perf_counter()
                for _ in range(args.requests):
                    t0 = time.perf_counter()
                    response = client.post("/track", json=body)
                    latencies.append(time.perf_counter() - t0)
                    if response.status_code != 200:
                        raise SystemExit(f"POST /track answered {response.status_code}: {response.text}")
                elapsed = time.perf_counter() - started
                summary = client.get("/summary").json()
        finally:
            server.terminate()
            server.wait(timeout=30)

    latencies.sort()
    ms = [value * 1000 for value in latencies]
    expected = args.warmup + args.requests
    print(f"store: {store.split('://')[0]}  calls: {args.requests:,} (after {args.warmup} warm-up)  one client")
    print(f"throughput: {args.requests / elapsed:,.0f} requests/s")
    print(
        f"latency ms: p50 {percentile(ms, 0.50):.2f}  p90 {percentile(ms, 0.90):.2f}  "
        f"p99 {percentile(ms, 0.99):.2f}  max {ms[-1]:.2f}  mean {statistics.fmean(ms):.2f}"
    )
    print(f"ledger after the run: {summary['requests']:,} calls (expected {expected:,}), ${summary['total_cost']}")


if __name__ == "__main__":
    main()

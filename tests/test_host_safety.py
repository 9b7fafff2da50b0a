"""Never break the host program: a store that is down, a broken price source, and the summary at exit."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import textwrap
from decimal import Decimal

import litellm
import pytest

from tokencost import BudgetExceededError, CostTracker
from tokencost.pricing import Price, PriceChain

MESSAGES = [{"role": "user", "content": "hello"}]
DOWN = "redis://127.0.0.1:1/0"  # nothing listens on port 1


def test_store_down_allow_lets_calls_through(caplog: pytest.LogCaptureFixture) -> None:
    """With the store unreachable and on_store_error="allow", calls succeed and the failure is logged once."""
    caplog.set_level(logging.WARNING, logger="tokencost")
    tracker = CostTracker(store=DOWN, budget=1, print_summary=False)
    litellm.callbacks = [tracker]
    for _ in range(3):
        assert litellm.completion(model="gpt-4o", messages=MESSAGES, mock_response="ok").choices
    assert tracker.total_cost == Decimal("0.00")  # nothing could be read: no exception either
    store_lines = [r for r in caplog.records if "store" in r.getMessage()]
    assert store_lines
    assert len({r.getMessage() for r in store_lines}) == len(store_lines)  # each problem once
    tracker.close()


def test_store_down_refuse_refuses_calls() -> None:
    """With on_store_error="refuse", a budgeted call is refused while the store cannot be checked."""
    tracker = CostTracker(store=DOWN, budget=1, on_store_error="refuse", print_summary=False)
    litellm.callbacks = [tracker]
    with pytest.raises(BudgetExceededError, match="store unavailable"):
        litellm.completion(model="gpt-4o", messages=MESSAGES, mock_response="ok")
    tracker.close()


class BrokenSource:
    """A price source with a bug."""

    name = "broken"

    def lookup(self, model: str, provider: str | None) -> Price | None:
        raise RuntimeError("bug in a price source")


def test_a_bug_in_pricing_never_breaks_the_call(caplog: pytest.LogCaptureFixture) -> None:
    """A price source that raises: calls return; litellm's own cost is used, else the event is unpriced; one log."""
    caplog.set_level(logging.WARNING, logger="tokencost")
    tracker = CostTracker(print_summary=False)
    tracker.prices = PriceChain([BrokenSource()])
    litellm.callbacks = [tracker]
    for _ in range(2):
        assert litellm.completion(model="gpt-4o", messages=MESSAGES, mock_response="ok").choices
    tracker.track(model="gpt-4o", prompt_tokens=10, completion_tokens=5)
    assert tracker.request_count == 3
    calls = [e for e in tracker.history if e["completion_tokens"] == 20]  # litellm's mock usage
    (manual,) = [e for e in tracker.history if e["completion_tokens"] == 5]
    assert [e["price_source"] for e in calls] == ["response_cost", "response_cost"]
    assert calls[0]["cost"] == Decimal("0.000225")  # litellm's own figure for the mock call
    assert manual["priced"] is False
    assert tracker.unpriced_count == 1
    assert sum("price source failed" in r.getMessage() for r in caplog.records) == 1
    tracker.close()


SCRIPT = textwrap.dedent(
    """
    import os
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    import litellm
    from tokencost import CostTracker
    tracker = CostTracker(budget=1, print_summary={print_summary})
    litellm.callbacks = [tracker]
    litellm.completion(model="gpt-4o", messages=[{{"role": "user", "content": "hi"}}], mock_response="ok")
    tracker.track(model="acme-unknown-2", prompt_tokens=5, completion_tokens=5)
    print("done")
    """
)


@pytest.mark.parametrize("print_summary", [True, False])
def test_summary_prints_on_stderr_at_exit(print_summary: bool) -> None:
    """At interpreter exit the summary (total, models, budget, unpriced calls) goes to stderr, unless turned off."""
    env = {**os.environ, "COLUMNS": "120", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(print_summary=print_summary)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=True,
    )
    assert out.stdout.strip() == "done"
    if print_summary:
        assert "gpt-4o" in out.stderr
        assert "$0.000225" in out.stderr
        assert "unpriced" in out.stderr
        assert "Budgets" in out.stderr
    else:
        assert "gpt-4o" not in out.stderr


def test_litellm_worker_stop_finishes_trackers_once() -> None:
    """litellm's proxy stops its async logging worker at shutdown, then ends without atexit (uvicorn raises
    SIGTERM again): the store is flushed and the summary printed there, and not again at a normal exit."""
    script = textwrap.dedent(
        """
        import asyncio, os, sys
        os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
        from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER
        from tokencost import CostTracker
        tracker = CostTracker(store=sys.argv[1])
        tracker.track(model="gpt-4o", prompt_tokens=1_000, completion_tokens=100)
        asyncio.run(GLOBAL_LOGGING_WORKER.stop())
        print("stopped", file=sys.stderr, flush=True)
        if sys.argv[2] == "killed":  # ends like the proxy: no atexit
            os._exit(0)
        """
    )
    env = {**os.environ, "COLUMNS": "120", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    for ending in ("killed", "exit"):
        with tempfile.TemporaryDirectory() as folder:
            store = f"sqlite:///{folder}/ledger.db"
            out = subprocess.run(
                [sys.executable, "-c", script, store, ending], capture_output=True, text=True, timeout=120, env=env
            )
            assert out.returncode == 0, out.stderr
            assert out.stderr.count("tokencost · default") == 1, out.stderr
            assert out.stderr.index("tokencost · default") < out.stderr.index("stopped")
            reader = CostTracker(store=store, print_summary=False)
            assert reader.total_cost == Decimal("0.0035")  # flushed before the process ended
            reader.close()

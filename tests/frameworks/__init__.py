"""The agent frameworks, driven for real through litellm against the loopback fake (issue 18, item 3).

One module per framework (``conftest.py`` marks them all ``frameworks`` and skips or fails a module whose framework
is missing). Each proves, for its framework: every call is counted once at the exact cost of the usage the fake
returned, the totals are current when the framework's call returns, a spent budget refuses the next call with
tokencost's ``BudgetExceededError`` reaching the caller (as the framework wraps it) before any request is sent,
and the exit summary is printed once.

Helpers shared by those modules live here (``from . import MODEL, call_cost``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from concurrent.futures import Future
from decimal import Decimal
from pathlib import Path

import litellm

from tokencost import BudgetExceededError, CostTracker
from tokencost.money import format_usd
from tokencost.testing import FakeProvider

# The model every framework test calls, as sent to the fake ("openai/" + MODEL through litellm).
MODEL = "gpt-4o-mini"
# The usage the fake reports for every call of MODEL: some of the prompt read from the provider's cache.
PROMPT_TOKENS = 1_200
CACHED_TOKENS = 400
COMPLETION_TOKENS = 300

ROOT = Path(__file__).resolve().parents[2]


def _price(name: str) -> Decimal:
    return Decimal(str(litellm.model_cost[MODEL][name]))


def call_cost() -> Decimal:
    """What one call of MODEL with the fake's usage costs at litellm's map prices (derived, never hard-coded)."""
    uncached = PROMPT_TOKENS - CACHED_TOKENS
    return (
        uncached * _price("input_cost_per_token")
        + CACHED_TOKENS * _price("cache_read_input_token_cost")
        + COMPLETION_TOKENS * _price("output_cost_per_token")
    )


def chat_requests(fake: FakeProvider) -> int:
    """How many chat completion requests the fake has received."""
    return fake.request_count("/v1/chat/completions")


def assert_each_call_once(tracker: CostTracker, fake: FakeProvider, calls: int) -> None:
    """The fake got ``calls`` chat requests and the tracker, read right away (no flush), recorded each once at its
    exact cost from the usage the fake returned (not an estimate)."""
    assert chat_requests(fake) == calls
    assert (tracker.request_count, tracker.total_cost) == (calls, call_cost() * calls)
    recorded = [(e["model"], e["cost"], e["cache_read_tokens"], e["status"], e["reason"]) for e in tracker.history]
    assert recorded == [(MODEL, call_cost(), CACHED_TOKENS, "ok", None)] * calls


def budget_error_in(exc: BaseException) -> BudgetExceededError | None:
    """tokencost's refusal in ``exc`` or the chain of exceptions it was raised from (``__cause__`` /
    ``__context__``), as a caller finds it through a framework's own wrapping; None when it is not there."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, BudgetExceededError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


SCRIPT_PRELUDE = f"""
import os
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
import litellm
from tokencost import CostTracker
from tokencost.testing import FakeProvider, Reply, ToolCall

MODEL = {MODEL!r}
fake = FakeProvider().start()
fake.set_openai_usage(
    MODEL, prompt_tokens={PROMPT_TOKENS}, completion_tokens={COMPLETION_TOKENS}, cached_tokens={CACHED_TOKENS}
)
tracker = CostTracker(budget=1, linkup_api_key=False)  # prints the summary at exit
litellm.callbacks = [tracker]
"""


# The exit-summary run of each test module (by its __name__), started at once by conftest's ``exit_runs``.
ExitRuns = dict[str, "Future[subprocess.CompletedProcess[str]]"]


def run_to_exit(body: str) -> subprocess.CompletedProcess[str]:
    """Run ``body`` in a fresh interpreter after :data:`SCRIPT_PRELUDE` (a fake named ``fake``, a tracker printing
    its summary at exit registered in litellm); return the finished process (exit status 0 asserted)."""
    env = {
        **os.environ,
        "COLUMNS": "120",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "OPENAI_AGENTS_DISABLE_TRACING": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    script = SCRIPT_PRELUDE + textwrap.dedent(body)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=100, env=env, cwd=ROOT, check=False
    )
    assert done.returncode == 0, done.stderr
    return done


def assert_one_summary(stderr: str, calls: int) -> None:
    """The exit summary is on stderr exactly once, and its total row counts ``calls`` calls at their exact cost."""
    titles = [line for line in stderr.splitlines() if line.startswith("tokencost · ")]
    assert len(titles) == 1, stderr
    totals = [line.split() for line in stderr.splitlines() if line.split()[:1] == ["total"]]
    money = format_usd(call_cost() * calls)
    assert [str(calls), money] in [[row[1], row[5]] for row in totals if len(row) > 5], stderr

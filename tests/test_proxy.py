"""The litellm proxy recipe (examples/proxy/), run for real: ``litellm --config config.yaml`` in its own process.

One proxy process, driven over HTTP against the loopback fake provider: every proxied request is recorded once
with its exact cost in the SQLite ledger, a spent budget answers litellm's own budget error (``budget_exceeded``)
without a request upstream or an ERROR log line, and SIGTERM leaves the ledger complete with the summary printed
once. Skipped locally when the proxy's dependencies are missing (``pip install -e '.[proxy]'``); failing under
``CI=true``.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import httpx
import litellm
import pytest

import tokencost
from tokencost import CostTracker
from tokencost.testing import FakeProvider

pytestmark = pytest.mark.proxy

RECIPE = Path(__file__).resolve().parent.parent / "examples" / "proxy"
CHAT_PATH = "/v1/chat/completions"
MODEL = "gpt-4o-mini"  # config.yaml's model_name, and the model its deployment sends upstream
PROMPT, COMPLETION = 1_000, 200  # the usage the fake reports for every call
CALLS = 3  # calls admitted before the budget is spent
STARTUP_S = 45.0


def _call_cost() -> Decimal:
    """What one call costs at litellm's map prices (exact decimals)."""
    price = litellm.model_cost[MODEL]
    return PROMPT * Decimal(str(price["input_cost_per_token"])) + COMPLETION * Decimal(
        str(price["output_cost_per_token"])
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _litellm_cli() -> list[str]:
    """The ``litellm`` command of this interpreter's environment."""
    found = shutil.which("litellm", path=os.path.dirname(sys.executable)) or shutil.which("litellm")
    return [found] if found else [sys.executable, "-m", "litellm.proxy.proxy_cli"]


def _missing_dependency(stderr: str) -> None:
    """Skip (locally) or fail (under CI=true) when the proxy exited for want of a module."""
    missing = re.search(r"No module named '([^']+)'", stderr)
    if missing is None:
        return
    reason = f"the litellm proxy cannot start: {missing.group(0)} (pip install -e '.[proxy]')"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason + "; CI=true requires it")
    pytest.skip(reason)


def _wait_until_up(proc: subprocess.Popen[str], url: str, stderr_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            stderr = stderr_path.read_text()
            _missing_dependency(stderr)
            pytest.fail(f"the proxy exited ({proc.returncode}) before answering:\n{stderr[-3000:]}")
        try:
            if httpx.get(f"{url}/health/liveliness", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    pytest.fail(f"the proxy did not answer within {STARTUP_S:.0f} s:\n{stderr_path.read_text()[-3000:]}")


def test_proxy_records_each_call_once_refuses_with_litellm_budget_error_and_flushes_on_sigterm(
    fake: FakeProvider, tmp_path: Path
) -> None:
    cost = _call_cost()
    budget = CALLS * cost - cost / 2  # the CALLS-th call is admitted, and spends the budget
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    fake.set_openai_usage(MODEL, prompt_tokens=PROMPT, completion_tokens=COMPLETION)
    master_key = "sk-" + secrets.token_hex(32)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(Path(tokencost.__file__).parent.parent), os.environ.get("PYTHONPATH", "")]),
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_MASTER_KEY": master_key,
        "OPENAI_API_KEY": "sk-fake",
        "OPENAI_API_BASE": fake.openai_base,
        "TOKENCOST_STORE": ledger,
        "TOKENCOST_BUDGET": str(budget),
    }
    stdout_path, stderr_path = tmp_path / "proxy.out", tmp_path / "proxy.err"
    with stdout_path.open("w") as out, stderr_path.open("w") as err:
        proc = subprocess.Popen(
            [*_litellm_cli(), "--config", str(RECIPE / "config.yaml"), "--host", "127.0.0.1", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=err,
            text=True,
        )
    try:
        _wait_until_up(proc, url, stderr_path)
        headers = {"Authorization": f"Bearer {master_key}"}
        body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            # 1. Every proxied call is answered and goes upstream once.
            for made in range(1, CALLS + 1):
                answer = client.post("/v1/chat/completions", json=body)
                assert answer.status_code == 200, answer.text
                assert fake.request_count(CHAT_PATH) == made
            # 2. The budget is spent: refused with litellm's budget error, nothing sent upstream.
            for _ in range(2):
                refused = client.post("/v1/chat/completions", json=body)
                assert refused.status_code == litellm.budget_exceeded_status_code, refused.text
                error = refused.json()["error"]
                assert error["type"] == "budget_exceeded"
                assert error["message"].startswith("budget 'total' spent:")
            assert fake.request_count(CHAT_PATH) == CALLS
        # 3. SIGTERM: the proxy shuts down, the ledger is flushed and the summary printed once.
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = stdout_path.read_text() + stderr_path.read_text()
    assert [line for line in log.splitlines() if "ERROR" in line] == []  # no log line per refusal
    assert log.count("tokencost · default") == 1, log[-3000:]

    reader = CostTracker(store=ledger, print_summary=False)
    try:
        events = reader.events()
        assert len(events) == CALLS
        assert [event.cost for event in events] == [cost] * CALLS
        assert {(event.model, event.provider) for event in events} == {(MODEL, "openai")}
        assert len({event.call_id for event in events}) == CALLS
        assert reader.total_cost == CALLS * cost
    finally:
        reader.close()

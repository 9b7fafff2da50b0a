"""Shared fixtures: the loopback fake provider, a registered tracker, and a clean litellm between tests."""

from __future__ import annotations

import os

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import contextlib
import socket
import threading
from collections.abc import Iterator

import litellm
import pytest

from tokencost import CostTracker
from tokencost.testing import FakeProvider


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeProvider]:
    """One loopback fake provider for the session."""
    with FakeProvider() as server:
        yield server


@pytest.fixture
def fake(fake_server: FakeProvider) -> FakeProvider:
    """The fake provider with its recorded requests and configured usage cleared."""
    fake_server.reset()
    return fake_server


@pytest.fixture(autouse=True)
def clean_litellm() -> Iterator[None]:
    """Leave litellm's global callback and budget state as each test found it."""
    yield
    for name in (
        "callbacks",
        "success_callback",
        "_async_success_callback",
        "failure_callback",
        "_async_failure_callback",
        "input_callback",
    ):
        for cb in list(getattr(litellm, name, [])):
            if isinstance(cb, CostTracker):
                cb.close()
    litellm.callbacks = []
    litellm.max_budget = 0.0
    litellm._current_cost = 0
    litellm.cache = None


@pytest.fixture
def tracker() -> Iterator[CostTracker]:
    """A memory-store tracker registered in litellm, closed after the test."""
    t = CostTracker(print_summary=False)
    litellm.callbacks = [t]
    yield t
    t.close()


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A loopback listener that accepts connections and reads what is sent, never answering."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            conn.settimeout(0.1)
            held.append(conn)
            for c in list(held):
                with contextlib.suppress(OSError):
                    c.recv(65536)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    stop.set()
    thread.join(5)
    for c in held:
        c.close()
    listener.close()

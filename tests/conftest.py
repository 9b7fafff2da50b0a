"""Shared fixtures: the loopback fake provider, a registered tracker, and a clean litellm between tests."""

from __future__ import annotations

import os

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

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

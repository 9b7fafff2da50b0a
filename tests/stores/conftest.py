"""Store fixtures: ``ALL_STORES`` and a ``store`` fixture over memory, SQLite (in tmp_path) and Redis.

Redis runs as a real ``redis-server`` started by pytest-redis on a free loopback port. Without the binary the
Redis cases skip locally and fail under ``CI=true``.
"""

from __future__ import annotations

import os

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from pytest_redis import factories

from tokencost.stores.base import Store
from tokencost.stores.memory import MemoryStore
from tokencost.stores.redis import RedisStore
from tokencost.stores.sqlite import SQLiteStore

IN_CI = os.environ.get("CI", "").lower() == "true"

# The server every Redis test shares (each test starts from a flushed db 0).
redis_proc = factories.redis_proc(port=None)
# A server of its own for the outage test, which stops and restarts it.
redis_outage_proc = factories.redis_proc(port=None, save="3600 1")

ALL_STORES = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("redis", marks=pytest.mark.redis, id="redis"),
]


def require_redis_server() -> None:
    """Skip (locally) or fail (under CI=true) when there is no redis-server binary."""
    if shutil.which("redis-server") is None:
        message = "redis-server is not on PATH (Debian: apt-get install redis-server)"
        if IN_CI:
            pytest.fail(message + "; CI=true requires it")
        pytest.skip(message)


def redis_url(proc: Any, db: int = 0) -> str:
    """Return the URL of a pytest-redis server."""
    return f"redis://{proc.host}:{proc.port}/{db}"


@pytest.fixture
def redis_server(request: pytest.FixtureRequest) -> str:
    """Start (once) the shared redis-server and return the URL of its db 0, flushed."""
    require_redis_server()
    proc = request.getfixturevalue("redis_proc")
    url = redis_url(proc)
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """Return the URL of a fresh SQLite ledger file in tmp_path."""
    return f"sqlite:///{tmp_path}/ledger.db"


def open_store(kind: str, request: pytest.FixtureRequest, tmp_path: Path, **options: Any) -> Store:
    """Open a store of ``kind`` ("memory", "sqlite" or "redis"), fresh unless opened before in this test."""
    if kind == "memory":
        return MemoryStore(**options)
    if kind == "sqlite":
        return SQLiteStore(f"sqlite:///{tmp_path}/ledger.db", **options)
    return RedisStore(request.getfixturevalue("redis_server"), **options)


class FakeClock:
    """A clock tests move by hand: ``clock()`` is the time, ``clock.advance(s)`` moves it."""

    def __init__(self, now: float = 1_764_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    """A clock at 2025-11-24T16:00:00Z that moves only when told."""
    return FakeClock()


@pytest.fixture(params=ALL_STORES)
def clocked_store(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Iterator[Store]:
    """Each backend in turn, empty, keeping reservation times by ``clock``."""
    opened = open_store(request.param, request, tmp_path, clock=clock)
    yield opened
    opened.close()


@pytest.fixture(params=ALL_STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """Each backend in turn, empty."""
    opened = open_store(request.param, request, tmp_path)
    yield opened
    opened.close()

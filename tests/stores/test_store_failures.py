"""What the write-behind stores do when something fails: one event that cannot be written, a file that is
locked or read-only, a server that is not there or never answers, and how much a SIGKILL can lose."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

import tokencost.stores.redis as redis_module
import tokencost.stores.sqlite as sqlite_module
from tokencost.errors import StoreError
from tokencost.events import Event
from tokencost.stores import store_from_url
from tokencost.stores.base import Check, Store
from tokencost.stores.redis import RedisStore
from tokencost.stores.sqlite import Batch, Queued, SQLiteStore, WriteBehind
from tokencost.usage import Usage

from . import T0, make_event
from .conftest import redis_url, require_redis_server

LEDGER = "app"
WRITE_BEHIND = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("redis", marks=pytest.mark.redis, id="redis"),
]


def open_kind(kind: str, request: pytest.FixtureRequest, tmp_path: Path, **options: Any) -> Store:
    if kind == "sqlite":
        return SQLiteStore(f"sqlite:///{tmp_path}/ledger.db", **options)
    return RedisStore(request.getfixturevalue("redis_server"), **options)


def poison(monkeypatch: pytest.MonkeyPatch, kind: str, bad: Callable[[Event], bool]) -> None:
    """Make the store's event codec fail for the events ``bad`` picks (as an encoding bug would)."""
    if kind == "sqlite":
        # SQLite encodes an event's metadata with metadata_to_json: fail on the bad event's metadata.
        original_metadata = sqlite_module.metadata_to_json
        marked: dict[int, bool] = {}

        def write_rows(self: Any, conn: Any, batch: Batch) -> Any:
            for item in batch.items:
                marked[id(item.event.metadata)] = bad(item.event)
            return original_write_rows(self, conn, batch)

        def metadata_to_json(metadata: Any) -> str:
            if marked.get(id(metadata)):
                raise TypeError("Object of type Widget is not JSON serializable")
            return original_metadata(metadata)

        original_write_rows = sqlite_module._Database.write_rows
        monkeypatch.setattr(sqlite_module._Database, "write_rows", write_rows)
        monkeypatch.setattr(sqlite_module, "metadata_to_json", metadata_to_json)
    else:
        original_encode = redis_module._encode_event

        def encode(event: Event, pkey: str | None) -> str:
            if bad(event):
                raise TypeError("Object of type Widget is not JSON serializable")
            return original_encode(event, pkey)

        monkeypatch.setattr(redis_module, "_encode_event", encode)


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "tokencost" and r.levelno >= logging.ERROR]


@pytest.mark.parametrize("kind", WRITE_BEHIND)
def test_one_unwritable_event_does_not_block_its_batch(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    """One event the codec cannot encode, in a batch of 2,000: the other 1,999 are written, the bad one is kept
    unpriced with the reason, the log says so once, and flush() reports success."""
    store = open_kind(kind, request, tmp_path)
    poison(monkeypatch, kind, lambda event: bool(event.metadata.get("poison")))
    events = [
        make_event(f"e{i}", cost_units=10, metadata={"user": "u", "poison": True} if i == 1234 else {"user": "u"})
        for i in range(2000)
    ]
    try:
        with caplog.at_level(logging.WARNING, logger="tokencost"):
            for event in events:
                store.record(LEDGER, event, ("total",))
            assert store.flush(30) is True
        assert len(errors(caplog)) == 1 and "e1234" in errors(caplog)[0]
        back = store.events(LEDGER)
        assert [e.call_id for e in back] == [e.call_id for e in events]
        bad = back[1234]
        assert bad.cost_units is None and bad.metadata == {}
        assert (bad.reason or "").startswith("not written as recorded: TypeError")
        assert all(e.cost_units == 10 for i, e in enumerate(back) if i != 1234)
        totals = store.totals(LEDGER)
        assert (totals.requests, totals.cost_units, totals.unpriced) == (2000, 19_990, 1)
        assert store.counters(LEDGER, ["total"])["total"][0] == 19_990
        # The ledger goes on: later events and reserve() (which writes the queue in its own step) work.
        store.record(LEDGER, make_event("late", cost_units=5, metadata={"poison": True}), ("total",))
        assert store.reserve(LEDGER, "r1", [Check("total", limit_units=10**9)], 1, 0, ttl=60) is None
        assert store.events(LEDGER, limit=1)[0].reason.startswith("not written as recorded")  # type: ignore[union-attr]
    finally:
        store.close()


@pytest.mark.parametrize("kind", WRITE_BEHIND)
def test_an_event_that_cannot_be_written_at_all_is_dropped_and_flush_says_so(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    """When even the event's plain copy fails (the codec fails for its call id), it is dropped with a logged
    reason, the others are written, and that flush() returns False (the next one True)."""
    store = open_kind(kind, request, tmp_path)
    if kind == "sqlite":
        original = sqlite_module._Database.write_rows

        def write_rows(self: Any, conn: Any, batch: Batch) -> Any:
            if any(item.event.call_id == "e7" for item in batch.items):
                raise sqlite3.IntegrityError("CHECK constraint failed: call_id")
            return original(self, conn, batch)

        monkeypatch.setattr(sqlite_module._Database, "write_rows", write_rows)
    else:
        poison(monkeypatch, kind, lambda event: event.call_id == "e7")
    try:
        with caplog.at_level(logging.WARNING, logger="tokencost"):
            for i in range(2000):
                store.record(LEDGER, make_event(f"e{i}", cost_units=1), ("total",))
            assert store.flush(30) is False
        assert store.flush(30) is True
        logged = errors(caplog)
        assert len(logged) == 2 and "dropped" in logged[1] and "e7" in logged[1]
        assert [e.call_id for e in store.events(LEDGER)] == [f"e{i}" for i in range(2000) if i != 7]
        assert store.totals(LEDGER).cost_units == 1999
    finally:
        store.close()


# -- opening: locked, read-only, unreachable --------------------------------------------------------------------


def wait_for_flush(store: Store, timeout: float = 20.0) -> bool:
    """flush() until it succeeds (the store retries opening with backoff); raise its last error at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return store.flush(10)
        except StoreError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_a_locked_file_opens_later(tmp_path: Path, caplog: Any) -> None:
    """A file another connection holds with BEGIN EXCLUSIVE: the store constructs, queues, raises StoreError on
    reads, logs once, and writes the events once the lock is gone."""
    path = tmp_path / "ledger.db"
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("CREATE TABLE other (x)")
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with caplog.at_level(logging.WARNING, logger="tokencost"):
            store = SQLiteStore(f"sqlite:///{path}", busy_timeout=0.1)
            for i in range(3):
                with contextlib.suppress(StoreError):  # "queued": the tracker logs it and goes on
                    store.record(LEDGER, make_event(f"e{i}", cost_units=5), ("total",))
            with pytest.raises(StoreError, match="locked"):
                store.totals(LEDGER)
            with pytest.raises(StoreError):
                store.flush(5)
        assert sum("written once it opens" in r.getMessage() for r in caplog.records) == 1
        blocker.execute("ROLLBACK")
        blocker.close()
        assert wait_for_flush(store)
        assert [e.call_id for e in store.events(LEDGER)] == ["e0", "e1", "e2"]
        assert store.counters(LEDGER, ["total"])["total"][0] == 15
        store.close()
    finally:
        blocker.close()


def test_a_read_only_file_is_written_once_writable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ledger file that is read-only (root ignores file modes, so the connection is opened read-only, as SQLite
    does for a file without write permission): the store constructs and reads; writes wait until it is writable."""
    path = tmp_path / "ledger.db"
    url = f"sqlite:///{path}"
    first = SQLiteStore(url)
    first.record(LEDGER, make_event("before", cost_units=1), ("total",))
    first.close()
    read_only = True
    connect = sqlite_module._connect

    def connect_maybe_read_only(file: str, timeout: float) -> sqlite3.Connection:
        if read_only:
            return sqlite3.connect(
                f"file:{file}?mode=ro", uri=True, timeout=timeout, isolation_level=None, check_same_thread=False
            )
        return connect(file, timeout)

    monkeypatch.setattr(sqlite_module, "_connect", connect_maybe_read_only)
    store = SQLiteStore(url)
    try:
        assert store.totals(LEDGER).requests == 1
        with contextlib.suppress(StoreError):
            store.record(LEDGER, make_event("during", cost_units=2), ("total",))
        with pytest.raises(StoreError, match="readonly"):
            store.flush(5)
        read_only = False
        assert wait_for_flush(store)
        assert [e.call_id for e in store.events(LEDGER)] == ["before", "during"]
    finally:
        store.close()


def test_a_folder_that_cannot_be_written_yet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A new ledger whose file cannot be created yet (read-only folder): constructs, then writes once it can."""
    blocked = True
    connect = sqlite_module._connect

    def connect_or_fail(file: str, timeout: float) -> sqlite3.Connection:
        if blocked:
            raise sqlite3.OperationalError("unable to open database file")
        return connect(file, timeout)

    monkeypatch.setattr(sqlite_module, "_connect", connect_or_fail)
    store = SQLiteStore(f"sqlite:///{tmp_path}/new/ledger.db")
    try:
        with contextlib.suppress(StoreError):
            store.record(LEDGER, make_event("e1", cost_units=3), ("total",))
        with pytest.raises(StoreError, match="unable to open"):
            store.events(LEDGER)
        blocked = False
        assert wait_for_flush(store)
        assert store.totals(LEDGER).cost_units == 3
    finally:
        store.close()


@pytest.mark.redis
def test_a_redis_server_that_is_not_up_yet(request: pytest.FixtureRequest) -> None:
    """A store built while its server is down constructs, queues, and writes the events once it is up."""
    require_redis_server()
    proc = request.getfixturevalue("redis_outage_proc")
    url = redis_url(proc, db=2)
    redis.Redis.from_url(url).flushdb()
    proc.stop()
    try:
        store = store_from_url(url, timeout=0.5)
        with contextlib.suppress(StoreError):
            store.record(LEDGER, make_event("e1", cost_units=4), ("total",))
        with pytest.raises(StoreError):
            store.totals(LEDGER)
        proc.start()
        assert wait_for_flush(store)
        assert [e.call_id for e in store.events(LEDGER)] == ["e1"]
        store.close()
    finally:
        if not proc.running():
            proc.start()


# -- a server that accepts connections and never answers ---------------------------------------------------------


def test_a_redis_server_that_never_answers_raises_within_the_timeout(silent_server: str) -> None:
    """With timeout=, a read, reserve() and flush() against a server that never answers raise StoreError
    instead of hanging."""
    store = store_from_url(silent_server, timeout=0.2)
    outcome: list[Any] = []

    def calls() -> None:
        for call in (
            lambda: store.totals(LEDGER),
            lambda: store.reserve(LEDGER, "r1", [Check("total", limit_units=5)], 1, 0, ttl=60),
            lambda: store.counters(LEDGER, ["total"]),
        ):
            try:
                call()
                outcome.append("answered")
            except StoreError as exc:
                outcome.append(exc)

    worker = threading.Thread(target=calls, daemon=True)
    worker.start()
    worker.join(60)  # a liveness bound, far above 2 x 0.2 s per call: not a measurement
    assert not worker.is_alive(), "a call hung on a server that never answers"
    assert len(outcome) == 3 and all(isinstance(o, StoreError) for o in outcome)
    assert "Timeout" in str(outcome[0]) or "timed out" in str(outcome[0])
    with contextlib.suppress(StoreError):
        store.close()


def test_sqlite_timeout_bounds_the_wait_for_a_lock(tmp_path: Path) -> None:
    """store_from_url(..., timeout=) is SQLite's wait for another connection's lock in reserve()."""
    url = f"sqlite:///{tmp_path}/ledger.db"
    store = store_from_url(url, timeout=0.1)
    blocker = sqlite3.connect(tmp_path / "ledger.db", isolation_level=None)
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        with pytest.raises(StoreError, match=r"busy_timeout=0.1 s"):
            store.reserve(LEDGER, "r1", [Check("total", limit_units=100)], 1, 0, ttl=60)
    finally:
        blocker.close()
        store.close()


# -- the SIGKILL bound: what is not written yet --------------------------------------------------------------------


def test_at_most_two_batches_wait_however_many_threads_record() -> None:
    """While a batch is being written (slowly), recording threads fill at most one more batch and then wait:
    never more than 2 x batch_size events unwritten (what a SIGKILL can lose), with 4 threads."""
    batch_size = 50
    release = threading.Event()
    seen: list[int] = []

    def write(batch: Batch) -> dict[tuple[str, str], tuple[int, int]]:
        seen.append(len(batch.items))
        release.wait(30)
        return {}

    batcher = WriteBehind("test", write, lambda ledger, keys: {}, batch_size=batch_size, max_delay=60, max_queue=10_000)
    started = [0] * 4
    returned = [0] * 4

    def recorder(n: int) -> None:
        for i in range(300):
            started[n] += 1
            event = Event(f"t{n}-{i}", T0, "m", "openai", Usage(input=1), 1)
            batcher.add(tuple.__new__(Queued, (LEDGER, event, (), None)))
            returned[n] += 1

    threads = [threading.Thread(target=recorder, args=(n,), daemon=True) for n in range(4)]
    for thread in threads:
        thread.start()
    # Wait until every thread is inside add() (blocked behind the slow write) and nothing moves any more.
    deadline = time.monotonic() + 20
    last = None
    while time.monotonic() < deadline:
        state = (tuple(started), tuple(returned), batcher.pending())
        if all(s - r == 1 for s, r in zip(state[0], state[1], strict=True)) and state == last:
            break
        last = state
        time.sleep(0.1)
    pending = batcher.pending()
    release.set()
    for thread in threads:
        thread.join(30)
    assert pending <= 2 * batch_size
    assert pending >= batch_size  # the writer really was behind
    assert batcher.drain(10)
    assert batcher.pending() == 0 and sum(seen) == 1200
    batcher.close()

"""SQLiteStore's own behaviour: the file format, reopening, locking, bad paths and threads."""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType

import pytest

from tokencost.errors import StoreError
from tokencost.events import Event
from tokencost.stores import store_from_url
from tokencost.stores.base import Check, Group, join_sums
from tokencost.stores.sqlite import DIMENSIONS, SQLiteStore
from tokencost.stores.sqlite_schema import SCHEMA_VERSION
from tokencost.usage import Usage

from . import DAY, GPT4O, SONNET, T0, make_event


def test_store_from_url_builds_sqlite_store_and_creates_folders(tmp_path: Path) -> None:
    """sqlite:////abs/path.db opens (creating missing folders) a SQLiteStore on that file."""
    path = tmp_path / "deep" / "er" / "costs.db"
    store = store_from_url(f"sqlite:///{path}")
    try:
        assert isinstance(store, SQLiteStore)
        assert store.path == str(path)
        assert path.exists()
    finally:
        store.close()


def test_relative_url_is_relative_to_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """sqlite:///data/costs.db names data/costs.db under the current directory."""
    monkeypatch.chdir(tmp_path)
    store = SQLiteStore("sqlite:///data/costs.db")
    store.close()
    assert (tmp_path / "data" / "costs.db").exists()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///", "sqlite:/x.db", "sqlite:///x.db?timeout=3"])
def test_malformed_urls_raise_value_error(url: str) -> None:
    """A URL without a path, or with a query string, is refused with ValueError."""
    with pytest.raises(ValueError, match="SQLite store URL"):
        SQLiteStore(url)


def test_file_is_wal_and_money_is_integer(sqlite_url: str, tmp_path: Path) -> None:
    """The file uses WAL, and costs and counters are stored as INTEGER, never REAL."""
    store = SQLiteStore(sqlite_url)
    store.record("app", make_event("e1", cost_units=20_000_000_000), ("total",))
    store.close()
    conn = sqlite3.connect(tmp_path / "ledger.db")
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA page_size").fetchone()[0] == 16384
        assert conn.execute("SELECT typeof(cost), cost FROM events").fetchall() == [("integer", 20_000_000_000)]
        assert conn.execute("SELECT typeof(units) FROM counters").fetchone()[0] == "integer"
        assert conn.execute("SELECT typeof(cost) FROM totals").fetchone()[0] == "integer"
    finally:
        conn.close()


def test_a_new_store_object_sees_the_same_state(sqlite_url: str) -> None:
    """Reopening the file shows the same totals, events, groups, counters, reservations and meta."""
    first = SQLiteStore(sqlite_url)
    for i in range(5):
        first.record("app", make_event(f"e{i}", metadata={"user": "alice"}, timestamp=T0 + i), ("total",))
    assert first.reserve("app", "r1", [Check("total", limit_units=10**13)], 123, 0, ttl=600) is None
    first.set_meta("app", "budgets", "[]")
    expected = (first.totals("app"), first.events("app"), first.aggregate("app", "user"))
    first.close()

    second = SQLiteStore(sqlite_url)
    try:
        assert (second.totals("app"), second.events("app"), second.aggregate("app", "user")) == expected
        assert second.counters("app", ["total"])["total"] == (expected[0].cost_units, 5 * 1250, 123)
        assert second.get_meta("app", "budgets") == "[]"
    finally:
        second.close()


def test_close_writes_queued_events(sqlite_url: str) -> None:
    """close() writes what record() queued; a second close() does nothing."""
    store = SQLiteStore(sqlite_url, max_delay=60)  # the background writer would wait a minute
    for i in range(100):
        store.record("app", make_event(f"e{i}"), ())
    store.close()
    store.close()
    reopened = SQLiteStore(sqlite_url)
    try:
        assert reopened.totals("app").requests == 100
    finally:
        reopened.close()


def test_reads_in_the_same_process_see_queued_events(sqlite_url: str, tmp_path: Path) -> None:
    """Before the batch is written, totals and counters of the recording store already include the event."""
    store = SQLiteStore(sqlite_url, max_delay=60)
    try:
        assert store.reserve("app", "r1", [Check("total", limit_units=10**13)], 500, 0, ttl=600) is None
        store.record("app", make_event("e1", cost_units=400), ("total",), reservation="r1")
        conn = sqlite3.connect(tmp_path / "ledger.db")
        committed = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        conn.close()
        assert committed == 0  # still queued
        assert store.totals("app").cost_units == 400
        # The queued event's reservation no longer counts, even though its row is still in the file.
        assert store.counters("app", ["total"])["total"] == (400, 1250, 0)
    finally:
        store.close()


def test_the_recording_thread_writes_each_full_batch(sqlite_url: str, tmp_path: Path) -> None:
    """A full batch is written by the thread that fills it, so at most one batch is ever waiting."""
    store = SQLiteStore(sqlite_url, batch_size=100, max_delay=60)
    try:
        for i in range(250):
            store.record("app", make_event(f"e{i}"), ("total",))
        conn = sqlite3.connect(tmp_path / "ledger.db")
        committed = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        conn.close()
        assert committed == 200
        assert store.totals("app").requests == 250
    finally:
        store.close()


def test_closed_store_refuses_calls(sqlite_url: str) -> None:
    """After close(), methods raise StoreError saying the store is closed."""
    store = SQLiteStore(sqlite_url)
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.totals("app")
    with pytest.raises(StoreError, match="closed"):
        store.record("app", make_event("e1"), ())


def test_locked_database_raises_store_error_and_keeps_events(sqlite_url: str, tmp_path: Path) -> None:
    """A write lock held past busy_timeout gives a StoreError naming the lock; queued events survive it."""
    store = SQLiteStore(sqlite_url, busy_timeout=0.2)
    blocker = sqlite3.connect(tmp_path / "ledger.db", isolation_level=None)
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        with pytest.raises(StoreError, match=r"database is locked .*busy_timeout=0.2"):
            store.reserve("app", "r1", [Check("total", limit_units=100)], 1, 0, ttl=60)
        store.record("app", make_event("e1", cost_units=9), ("total",))
        with pytest.raises(StoreError, match="locked"):
            store.flush()
        with pytest.raises(StoreError, match="queued"):
            store.record("app", make_event("e2", cost_units=1), ("total",))
        blocker.execute("ROLLBACK")
        assert store.flush()
        assert store.totals("app").cost_units == 10
        assert [e.call_id for e in store.events("app")] == ["e1", "e2"]
    finally:
        blocker.close()
        store.close()


def test_corrupt_file_raises_store_error(tmp_path: Path) -> None:
    """A file that is not a SQLite database opens as a store that is down: reads raise a StoreError saying so."""
    path = tmp_path / "costs.db"
    path.write_bytes(b"this is not a database, just some text " * 200)
    store = SQLiteStore(f"sqlite:///{path}")
    try:
        with pytest.raises(StoreError, match=r"cannot open .*costs\.db.*not a database"):
            store.totals("app")
    finally:
        store.close()


def test_unwritable_path_raises_store_error(tmp_path: Path) -> None:
    """A path whose folder cannot be created (a file is in the way): reads raise StoreError naming the path."""
    (tmp_path / "afile").write_text("x")
    store = SQLiteStore(f"sqlite:///{tmp_path}/afile/costs.db")
    with pytest.raises(StoreError, match=r"cannot open .*afile/costs\.db"):
        store.events("app")
    store.close()


def test_newer_schema_is_refused(sqlite_url: str, tmp_path: Path) -> None:
    """A file written by a newer tokencost (higher schema version) is refused, not misread."""
    SQLiteStore(sqlite_url).close()
    conn = sqlite3.connect(tmp_path / "ledger.db")
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    store = SQLiteStore(sqlite_url)
    with pytest.raises(StoreError, match="schema version 99"):
        store.totals("app")
    store.close()


def test_threads_share_one_store(sqlite_url: str) -> None:
    """Eight threads recording and reading at once lose nothing and count exactly."""
    store = SQLiteStore(sqlite_url, batch_size=50)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(300):
                store.record("app", make_event(f"t{n}-{i}", cost_units=7), ("total",))
                if i % 50 == 0:
                    store.totals("app")
                    store.counters("app", ["total"])
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    try:
        assert not errors
        assert store.totals("app").cost_units == 8 * 300 * 7
        assert store.counters("app", ["total"])["total"][0] == 8 * 300 * 7
        assert len(store.events("app")) == 2400
    finally:
        store.close()


def test_two_store_objects_share_counters(sqlite_url: str) -> None:
    """Two stores on one file (as two processes would) see each other's flushed charges and reservations."""
    a, b = SQLiteStore(sqlite_url, max_delay=60), SQLiteStore(sqlite_url, max_delay=60)
    try:
        limit = [Check("total", limit_units=1000)]
        a.record("app", make_event("e1", cost_units=600), ("total",))
        a.flush()
        assert b.reserve("app", "r1", limit, 401, 0, ttl=60) == limit[0]
        assert b.reserve("app", "r1", limit, 400, 0, ttl=60) is None
        assert a.reserve("app", "r2", limit, 1, 0, ttl=60) == limit[0]
        assert a.counters("app", ["total"])["total"] == (600, 1250, 400)
    finally:
        a.close()
        b.close()


def test_a_queued_settlement_keeps_its_reservation_visible(sqlite_url: str) -> None:
    """Until a settled event is written, other processes still see its reservation: the limit always holds."""
    a, b = SQLiteStore(sqlite_url, max_delay=60), SQLiteStore(sqlite_url, max_delay=60)
    try:
        limit = [Check("total", limit_units=1000)]
        assert a.reserve("app", "ra", limit, 700, 0, ttl=60) is None
        a.record("app", make_event("e1", cost_units=650), ("total",), reservation="ra")  # queued in a
        assert b.reserve("app", "rb", limit, 301, 0, ttl=60) == limit[0]  # sees a's 700 still held
        a.flush()
        assert b.reserve("app", "rb", limit, 350, 0, ttl=60) is None  # now sees 650 spent, nothing held
        assert b.counters("app", ["total"])["total"] == (650, 1250, 350)
    finally:
        a.close()
        b.close()


# -- the groups table: running sums per model, provider, user, tag, day, status and price_source ------------------
MIDNIGHT = T0 + 8 * 3600  # 2025-11-25T00:00:00Z
_SUMS = "requests, cost, unpriced, saved, input, cache_read, cache_write, output, reasoning"


class UserKey:
    """A metadata key that is not a str but reads as "user"."""

    def __str__(self) -> str:
        return "user"


def odd_events() -> list[Event]:
    """Events whose groups are easy to get wrong: odd metadata values, timestamps at midnight, unpriced ones."""
    events = [
        make_event("e1", metadata={"user": "alice", "tags": ["a", "b", "a"]}),
        make_event("e2", metadata={"user": "bob", "tags": ("x",)}, timestamp=MIDNIGHT - 0.0004),  # SQLite: next day
        make_event("e3", metadata={"user": "bob", "tags": ["x"]}, timestamp=MIDNIGHT - 0.0006),
        make_event("e4", metadata={"user": 7, "tags": []}, timestamp=MIDNIGHT),
        make_event("e5", metadata={"user": True, "tags": [1, "1", True, None, "(none)", 2.5, {"k": 1}]}),
        make_event("e6", metadata={"user": 1.5, "tags": "solo"}, timestamp=int(MIDNIGHT) + 5),
        make_event("e7", metadata={"user": "nul\x00byte", "tags": ["t\x00x"]}),
        make_event("e8", metadata={"user": float("nan"), "tags": ["nan"]}),  # encoded through plain_json
        make_event("e9", metadata={"user": {"id": 3}, "tags": None, "team": "search"}),
        make_event("e10", metadata={"user": 2**70}),
        make_event("e11", metadata={}, model="claude-sonnet-4-5", provider="anthropic", price=SONNET),
        make_event("e12", metadata={"user": "zoë", "tags": ["ünï"]}, timestamp=MIDNIGHT + DAY - 0.0004),
        make_event("e13", metadata={"user": Decimal("1.5")}),  # kept as its str
        make_event("e14", metadata=MappingProxyType({"user": "carol", "tags": ["m"]})),
        # A key JSON cannot hold: plain_json keeps it as its str, which then overwrites "user".
        make_event("e16", metadata={"user": "dan", UserKey(): "erin", "tags": ([1],)}),
        make_event("p1", price=None, status="pending", reason="price lookup", metadata={"user": False, "tags": [3]}),
        make_event("p2", price=None, status="pending", reason="price lookup", model="acme", metadata={"user": "alice"}),
    ]
    events.append(
        Event("e15", MIDNIGHT + 60, "gpt-4o", "openai", Usage(input=10), 5, price_source=None, metadata={"user": ""})
    )
    return events


def group_table(path: Path, ledger: str) -> dict[tuple[str, str], tuple[int, ...]]:
    """Return the groups table's rows of ``ledger``: (dim, key) -> sums."""
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            f"SELECT dim, key, {_SUMS}, cost_m, saved_m FROM groups WHERE ledger = ?", (ledger,)
        ).fetchall()
    finally:
        conn.close()
    return {(dim, key): tuple(join_sums(sums)) for dim, key, *sums in rows}


def full_group_by(store: SQLiteStore, ledger: str) -> dict[str, list[Group]]:
    """Group every event of ``ledger`` with SQL over the events table (a bound on the time takes that path)."""
    return {dim: store.aggregate(ledger, dim, since=-math.inf) for dim in DIMENSIONS}


def assert_groups_match(store: SQLiteStore, path: Path, ledger: str) -> None:
    """Assert that the groups table, and aggregate() reading it, equal a full GROUP BY over the events."""
    expected = full_group_by(store, ledger)
    table = group_table(path, ledger)
    assert table == {
        (dim, g.key): (
            g.requests,
            g.cost_units,
            g.unpriced,
            g.saved_units,
            g.input_tokens,
            g.cache_read_tokens,
            g.cache_write_tokens,
            g.output_tokens,
            g.reasoning_tokens,
        )
        for dim, groups in expected.items()
        for g in groups
    }
    assert {dim: store.aggregate(ledger, dim) for dim in DIMENSIONS} == expected


def test_groups_table_equals_a_full_group_by(sqlite_url: str, tmp_path: Path) -> None:
    """The groups table equals GROUP BY over the events after records, update_cost, reset and reopening."""
    path = tmp_path / "ledger.db"
    store = SQLiteStore(sqlite_url, batch_size=5)  # several batches, some written by the recording thread
    for event in odd_events():
        store.record("app", event, ("total",))
    store.record("other", make_event("o1", metadata={"user": "olga", "tags": ["a"]}))
    store.flush()
    groups = full_group_by(store, "app")
    assert [g.key for g in groups["day"]] == ["2025-11-24", "2025-11-25", "2025-11-26"]
    assert {g.key: g.requests for g in groups["day"]} == {"2025-11-24": 13, "2025-11-25": 4, "2025-11-26": 1}
    assert {g.key: g.requests for g in groups["tag"]}["x"] == 2
    users = {g.key for g in groups["user"]}
    assert users >= {"alice", "bob", "7", "True", "False", "1.5", "zoë", "carol", "nan", "erin"}
    assert "dan" not in users
    assert_groups_match(store, path, "app")

    # A late price moves the event from its status and price_source groups to "ok" and the price's source.
    assert store.update_cost("app", "p1", 123_456, GPT4O, ("total",))
    assert store.update_cost("app", "p2", 7, SONNET)
    assert_groups_match(store, path, "app")
    assert {g.key: g.requests for g in store.aggregate("app", "status")} == {"ok": 18}
    assert ("status", "pending") not in group_table(path, "app")  # emptied groups are deleted

    store.reset("app")
    assert group_table(path, "app") == {}
    assert store.aggregate("app", "model") == []
    assert_groups_match(store, path, "other")

    for event in odd_events()[:6]:
        store.record("app", event, ("total",))
    store.close()
    reopened = SQLiteStore(sqlite_url)
    try:
        assert_groups_match(reopened, path, "app")
        assert_groups_match(reopened, path, "other")
        reopened.record("app", make_event("n1", metadata={"user": "alice"}))
        assert_groups_match(reopened, path, "app")  # aggregate() writes queued events first
    finally:
        reopened.close()


def test_a_schema_1_file_is_upgraded(sqlite_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A file of the first layout (no groups table) gets one, summed from its events, when opened."""
    path = tmp_path / "ledger.db"
    store = SQLiteStore(sqlite_url)
    for event in odd_events():
        store.record("app", event)
    store.record("other", make_event("o1", metadata={"user": "olga"}))
    store.close()
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE groups")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()

    with caplog.at_level(logging.WARNING, logger="tokencost"):
        store = SQLiteStore(sqlite_url)
    try:
        assert "upgrading" in caplog.text
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        conn.close()
        assert_groups_match(store, path, "app")
        assert_groups_match(store, path, "other")
        assert sum(g.requests for g in store.aggregate("app", "model")) == len(odd_events())
    finally:
        store.close()


def test_events_written_without_groups_are_summed_again(
    sqlite_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Events a schema-1 tokencost adds (it had the file open before the upgrade) are noticed and summed in."""
    path = tmp_path / "ledger.db"
    store = SQLiteStore(sqlite_url)
    try:
        for event in odd_events():
            store.record("app", event)
        store.flush()
        # What a schema-1 writer does: the event and the totals, not the groups.
        conn = sqlite3.connect(path)
        columns = (
            "ledger, call_id, ts, model, provider, cost, saved, input, cache_read, cache_write, output, reasoning,"
            " audio_in, audio_out, image, price_source, price_id, breakdown, metadata, status, reason"
        )
        copied = columns.replace("model,", "'old-writer-model',", 1)
        conn.execute(f"INSERT INTO events ({columns}) SELECT {copied} FROM events WHERE call_id = 'e1'")
        conn.execute(
            "UPDATE totals SET requests = requests + 1, cost = cost + (SELECT cost FROM events WHERE call_id = 'e1')"
            " WHERE ledger = 'app'"
        )
        conn.commit()
        conn.close()
        with caplog.at_level(logging.WARNING, logger="tokencost"):
            by_model = {g.key: g.requests for g in store.aggregate("app", "model")}
        assert "do not add up" in caplog.text
        assert by_model["old-writer-model"] == 1
        assert_groups_match(store, path, "app")
    finally:
        store.close()


def downgrade_to_schema_2(path: Path) -> None:
    """Turn a file into what a schema-2 tokencost left: no spans, an index on (ledger, ts) instead."""
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE spans")
    conn.execute("CREATE INDEX events_ledger_ts ON events (ledger, ts)")
    conn.execute("PRAGMA user_version = 2")
    conn.commit()
    conn.close()


def test_a_schema_2_file_is_upgraded(sqlite_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A schema-2 file gets spans in place of its (ledger, ts) index, and windowed reads find every event."""
    path = tmp_path / "ledger.db"
    store = SQLiteStore(sqlite_url)
    for i in range(6):
        store.record("app", make_event(f"a{i}", timestamp=T0 + i * DAY))
        store.record("other", make_event(f"o{i}", timestamp=T0 + i * DAY))
    store.close()
    downgrade_to_schema_2(path)

    with caplog.at_level(logging.WARNING, logger="tokencost"):
        store = SQLiteStore(sqlite_url)
    try:
        assert "upgrading" in caplog.text
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'events_ledger_ts'").fetchall() == []
        conn.close()
        window = store.events("app", since=T0 + 2 * DAY, until=T0 + 4 * DAY)
        assert [e.call_id for e in window] == ["a2", "a3"]
        assert [e.call_id for e in store.events("other")] == [f"o{i}" for i in range(6)]
    finally:
        store.close()


def test_events_an_older_writer_adds_without_spans_are_read(sqlite_url: str, tmp_path: Path) -> None:
    """Events written by a schema-2 tokencost that had the file open before the upgrade (no spans) are found by
    windowed reads, and the next batch this store writes covers them."""
    path = tmp_path / "ledger.db"
    store = SQLiteStore(sqlite_url)
    try:
        store.record("app", make_event("mine-1", timestamp=T0))
        store.flush()
        # What a schema-2 writer does: the event and its sums, no span.
        conn = sqlite3.connect(path)
        columns = (
            "ledger, call_id, ts, model, provider, cost, saved, input, cache_read, cache_write, output, reasoning,"
            " audio_in, audio_out, image, price_source, price_id, breakdown, metadata, status, reason"
        )
        copied = columns.replace("call_id, ts,", f"'old-1', {T0 + DAY},", 1)
        conn.execute(f"INSERT INTO events ({columns}) SELECT {copied} FROM events WHERE call_id = 'mine-1'")
        conn.commit()
        conn.close()
        assert [e.call_id for e in store.events("app", since=T0 + DAY / 2)] == ["old-1"]
        assert [g.requests for g in store.aggregate("app", "model", since=T0 - 1)] == [2]
        store.record("app", make_event("mine-2", timestamp=T0 + 2 * DAY))
        store.flush()
        conn = sqlite3.connect(path)
        covered = conn.execute("SELECT max(last_seq) FROM spans").fetchone()[0]
        newest = conn.execute("SELECT max(seq) FROM events").fetchone()[0]
        conn.close()
        assert covered == newest
        assert [e.call_id for e in store.events("app", since=T0 + DAY / 2)] == ["old-1", "mine-2"]
    finally:
        store.close()


def test_windows_over_interleaved_ledgers_and_unordered_times(sqlite_url: str) -> None:
    """Time windows and ledgers read right when batches mix ledgers and timestamps go back and forth."""
    store = SQLiteStore(sqlite_url, batch_size=7)
    times = [T0 + ((i * 37) % 50) * 3600.0 for i in range(120)]  # 50 hours, out of order
    try:
        for i, ts in enumerate(times):
            store.record("ab"[i % 2], make_event(f"e{i}", timestamp=ts))
        since, until = T0 + 10 * 3600, T0 + 20 * 3600
        for ledger in "ab":
            expected = [f"e{i}" for i, ts in enumerate(times) if "ab"[i % 2] == ledger and since <= ts < until]
            assert [e.call_id for e in store.events(ledger, since=since, until=until)] == expected
            (group,) = store.aggregate(ledger, "model", since=since, until=until)
            assert group.requests == len(expected)
        store.reset("a")
        assert store.events("a", since=since) == []
        assert len(store.events("b", since=since, until=until)) == len(
            [i for i, ts in enumerate(times) if i % 2 and since <= ts < until]
        )
    finally:
        store.close()


def test_a_schema_3_file_gets_the_micro_dollar_columns(sqlite_url: str, tmp_path: Path) -> None:
    """A schema-3 file (money sums in one INTEGER column) is upgraded in place: its sums read the same, and then
    grow past 2^63 pico-dollars exactly."""
    path = tmp_path / "ledger.db"
    store = SQLiteStore(sqlite_url)
    store.record("app", make_event("e1", cost_units=5 * 10**18), ("total",))
    assert store.reserve("app", "r1", [Check("total")], 7, 0, ttl=600) is None
    store.close()
    conn = sqlite3.connect(path)
    for table, column in [
        ("totals", "cost_m"),
        ("totals", "saved_m"),
        ("groups", "cost_m"),
        ("groups", "saved_m"),
        ("counters", "units_m"),
        ("reservations", "units_m"),
        ("reservations", "created_at"),
    ]:
        micro = {"cost_m": "cost", "saved_m": "saved", "units_m": "units"}.get(column)
        if micro is not None:  # what a schema-3 file holds: the whole amount in the one column
            conn.execute(f"UPDATE {table} SET {micro} = {micro} + {column} * 1000000")
        conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    conn.execute("PRAGMA user_version = 3")
    conn.commit()
    conn.close()

    store = SQLiteStore(sqlite_url)
    try:
        assert store.totals("app").cost_units == 5 * 10**18
        assert store.counters("app", ["total"])["total"] == (5 * 10**18, 1250, 7)
        store.record("app", make_event("e2", cost_units=5 * 10**18), ("total",))
        assert store.totals("app").cost_units == 10**19
        assert store.aggregate("app", "model")[0].cost_units == 10**19
        assert store.counters("app", ["total"])["total"][0] == 10**19
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        conn.close()
    finally:
        store.close()


def test_a_schema_5_file_gets_the_cached_audio_column(sqlite_url: str, tmp_path: Path) -> None:
    """A schema-5 file (no cache_read_audio column: cached audio was counted in cache_read) is upgraded in place:
    its events, totals and groups read the same, with no cached audio; new events record theirs, a pending old
    event is repriced."""
    path = tmp_path / "ledger.db"
    store = SQLiteStore(sqlite_url)
    old = make_event("e1", usage=Usage(input=400, cache_read=1_200, audio_in=400, output=300))
    pending = make_event("p1", price=None, status="pending", usage=Usage(input=10, cache_read=5, output=1))
    store.record("app", old, ("total",))
    store.record("app", pending, ("total",))
    store.close()
    conn = sqlite3.connect(path)
    conn.execute("ALTER TABLE events DROP COLUMN cache_read_audio")
    conn.execute("PRAGMA user_version = 5")
    conn.commit()
    conn.close()

    store = SQLiteStore(sqlite_url)
    try:
        assert store.events("app") == [old, pending]
        assert store.totals("app").cache_read_tokens == 1_205
        new = make_event("e2", usage=Usage(input=400, cache_read=800, cache_read_audio=400, output=300))
        store.record("app", new, ("total",))
        assert store.update_cost("app", "p1", GPT4O.cost_units(pending.usage), GPT4O, ("total",))
        back = store.events("app")
        assert [e.usage for e in back] == [old.usage, pending.usage, new.usage]
        assert store.totals("app").cache_read_tokens == 1_205 + 1_200
        assert store.aggregate("app", "model")[0].cache_read_tokens == 1_205 + 1_200
        assert store.counters("app", ["total"])["total"][1] == 2_300 + 16 + 1_900
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        conn.close()
    finally:
        store.close()

"""RedisStore's own behaviour: key layout, integer money, Lua scripts, trimming, outages and the missing extra."""

from __future__ import annotations

import importlib.resources
import json
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from tokencost.errors import MissingExtraError, StoreError
from tokencost.stores import store_from_url
from tokencost.stores.base import Check
from tokencost.stores.redis import RedisStore
from tokencost.usage import Usage

from . import make_event
from .conftest import redis_url, require_redis_server

pytestmark = pytest.mark.redis


@pytest.fixture
def client(redis_server: str) -> Iterator[Any]:
    """A plain redis-py client on the test's (flushed) database."""
    plain = redis.Redis.from_url(redis_server, decode_responses=True)
    yield plain
    plain.close()


@pytest.fixture
def rstore(redis_server: str) -> Iterator[RedisStore]:
    """A RedisStore on the test's (flushed) database."""
    store = RedisStore(redis_server)
    yield store
    store.close()


def test_store_from_url_builds_redis_store(redis_server: str) -> None:
    """redis://host:port/db builds a RedisStore; its repr shows the server, never a password."""
    store = store_from_url(redis_server.replace("redis://", "redis://user:s3cret@"))
    try:
        assert isinstance(store, RedisStore)
        assert "s3cret" not in repr(store)
        assert "127.0.0.1" in repr(store)
    finally:
        store.close()


def test_missing_redis_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without redis-py installed, opening a Redis store raises MissingExtraError naming the redis extra."""
    monkeypatch.setitem(sys.modules, "redis", None)  # makes `import redis` fail
    with pytest.raises(MissingExtraError, match=r"pip install -e '\.\[redis\]'"):
        RedisStore("redis://127.0.0.1:1/0")


def test_keys_live_under_the_ledger_hash_tag_with_integer_money(rstore: RedisStore, client: Any) -> None:
    """Every key of a ledger is under tokencost:{ledger}: and money is kept as integer text."""
    rstore.record("app", make_event("e1", cost_units=20_000_000_000, metadata={"user": "alice"}), ("total",))
    rstore.set_meta("app", "budgets", "[]")
    assert rstore.flush(10)
    keys = set(client.keys("*"))
    assert keys
    assert all(key.startswith("tokencost:{app}:") for key in keys)
    assert {"tokencost:{app}:totals", "tokencost:{app}:events", "tokencost:{app}:agg:user"} <= keys
    # Money sums are two integer fields: whole micro-dollars (_m, m:) and the pico-dollars below them.
    rstore.record("app", make_event("e2", cost_units=1_000_007), ("total",))
    assert rstore.flush(10)
    assert client.hget("tokencost:{app}:totals", "cost_m") == "20001"
    assert client.hget("tokencost:{app}:totals", "cost") == "7"
    assert client.hget("tokencost:{app}:counters", "m:total") == "20001"
    assert client.hget("tokencost:{app}:counters", "u:total") == "7"
    assert client.hget("tokencost:{app}:agg:user", "9:alice") == "20000"
    assert client.hget("tokencost:{app}:agg:user", "1:alice") is None


def test_events_an_older_tokencost_wrote_read_back(rstore: RedisStore, client: Any) -> None:
    """An event's usage written by an older tokencost (eight values, or twelve without cached audio) reads back
    with the buckets it did not know at zero."""
    usage = Usage(input=100, cache_read=1_200, audio_in=400, output=300, cache_write_1h=6, web_search_requests=2)
    rstore.record("app", make_event("e1", usage=usage))
    assert rstore.flush(10)
    stream = "tokencost:{app}:events"
    [(entry_id, fields)] = client.xrange(stream)
    raw = json.loads(fields["e"])
    assert raw[6][-1] == 0  # this tokencost writes cached audio last
    client.xdel(stream, entry_id)
    for call_id, values in (("twelve", raw[6][:12]), ("eight", raw[6][:8])):
        client.xadd(stream, {"e": json.dumps([call_id, *raw[1:6], values, *raw[7:]])})
    back = {e.call_id: e.usage for e in rstore.events("app")}
    assert back == {"twelve": usage, "eight": Usage(input=100, cache_read=1_200, audio_in=400, output=300)}


def test_reserve_compares_amounts_beyond_2_to_53_exactly(rstore: RedisStore) -> None:
    """Lua compares sums above 2^53 pico-dollars exactly: one unit over the limit is refused."""
    spent = 2**53 + 1  # not representable as a double
    rstore.record("app", make_event("e1", cost_units=spent), ("total",))
    check = Check("total", limit_units=spent + 2)
    assert rstore.reserve("app", "r1", [check], 2, 0, ttl=60) is None
    assert rstore.reserve("app", "r2", [check], 1, 0, ttl=60) == check
    rstore.release("app", "r1")
    assert rstore.reserve("app", "r3", [check], 3, 0, ttl=60) == check
    assert rstore.reserve("app", "r4", [check], 2, 0, ttl=60) is None
    assert rstore.counters("app", ["total"])["total"] == (spent, 1250, 2)


def test_event_log_is_trimmed_but_sums_stay_exact(redis_server: str, client: Any) -> None:
    """The stream keeps about max_events entries; totals and group sums still count every event."""
    store = RedisStore(redis_server, max_events=100)
    try:
        for i in range(1000):
            store.record("app", make_event(f"e{i}", cost_units=3, metadata={"user": f"u{i % 3}"}), ())
        assert store.totals("app").requests == 1000
        assert client.xlen("tokencost:{app}:events") < 300
        assert sum(g.requests for g in store.aggregate("app", "user")) == 1000
        assert len(store.events("app")) < 300
        assert store.events("app", limit=1)[0].call_id == "e999"
    finally:
        store.close()


def test_scripts_are_reloaded_after_the_server_forgets_them(rstore: RedisStore, client: Any) -> None:
    """SCRIPT FLUSH (or a restart) does not break the store: scripts are loaded again on NOSCRIPT."""
    assert rstore.reserve("app", "r1", [Check("total", limit_units=10)], 5, 0, ttl=60) is None
    client.script_flush()
    rstore.record("app", make_event("e1", cost_units=1), ("total",), reservation="r1")
    assert rstore.flush(10)
    assert rstore.counters("app", ["total"])["total"] == (1, 1250, 0)


def _record_script() -> str:
    lua = importlib.resources.files("tokencost.stores").joinpath("lua")
    return lua.joinpath("common.lua").read_text() + "\n" + lua.joinpath("record.lua").read_text()


def test_record_script_applies_a_retried_batch_once(client: Any) -> None:
    """The same writer and sequence number sent twice (a retry after a lost reply) is applied once."""
    prefix = "tokencost:{app}:"
    names = ["totals", "counters", "held", "res", "resexp", "events", "unpriced", "prices", "writers"]
    dims = ["model", "provider", "user", "tag", "day", "status", "price_source"]
    keys = [prefix + n for n in names] + [f"{prefix}agg:{d}" for d in dims]
    zero = ["0"] * 9
    header = {
        "d": [],
        "t": ["1", "20000000000", *zero[2:]],
        "c": [["total", "20000000000", "10"]],
        "a": [[1, "gpt-4o", ["1", "20000000000", *zero[2:]]]],
        "u": [],
        "p": [],
    }
    event = json.dumps(
        ["c1", 1.0, "gpt-4o", "openai", 20000000000, 0, [10, 0, 0, 0, 0, 0, 0, 0], None, None, None, {}, "ok", None]
    )
    script = client.register_script(_record_script())
    args = [1000, "writer-1", 7, json.dumps(header), event]
    assert script(keys=keys, args=args) == ["20000000000", "10"]
    assert script(keys=keys, args=args) == ["20000000000", "10"]  # the retry: nothing added
    assert script(keys=keys, args=[1000, "writer-1", 8, json.dumps(header), event]) == ["40000000000", "20"]
    assert client.xlen(prefix + "events") == 2
    assert client.hget(prefix + "totals", "cost") == "40000000000"


def test_outage_raises_store_error_and_queued_events_are_written_after(request: pytest.FixtureRequest) -> None:
    """While Redis is down calls raise StoreError; record() keeps events and they are written once it is back."""
    require_redis_server()
    proc = request.getfixturevalue("redis_outage_proc")
    url = redis_url(proc, db=1)
    redis.Redis.from_url(url).flushdb()
    store = RedisStore(url, socket_connect_timeout=0.5, socket_timeout=1.0)
    try:
        store.record("app", make_event("before", cost_units=1), ("total",))
        assert store.flush(10)
        proc.stop()
        store.record("app", make_event("down-1", cost_units=10), ("total",))  # queued; the writer will fail
        with pytest.raises(StoreError, match="redis store"):
            store.flush(10)
        with pytest.raises(StoreError, match="queued"):
            store.record("app", make_event("down-2", cost_units=100), ("total",))
        with pytest.raises(StoreError):
            store.totals("app")
        with pytest.raises(StoreError):
            store.reserve("app", "r1", [Check("total", limit_units=10**12)], 1, 0, ttl=60)
        proc.start()
        deadline = time.monotonic() + 15
        while True:  # the background writer retries with backoff; flush() also writes the queue
            try:
                assert store.flush(10)
                break
            except StoreError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert [e.call_id for e in store.events("app")] == ["before", "down-1", "down-2"]
        assert store.totals("app").cost_units == 111
        assert store.counters("app", ["total"])["total"][0] == 111
    finally:
        if not proc.running():
            proc.start()
        store.close()


def test_closed_port_raises_store_error() -> None:
    """A server that is not there gives StoreError from reads, and from record() once the writer failed."""
    store = RedisStore("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    try:
        with pytest.raises(StoreError, match="redis store: totals failed"):
            store.totals("app")
        with pytest.raises(StoreError, match="queued"):
            store.record("app", make_event("e1"), ("total",))
    finally:
        with pytest.raises(StoreError, match="close failed"):
            store.close()

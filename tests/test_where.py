"""Filters (``tokencost.where``) and the reports over them: a filter on a key selects the calls of that key's
group, so a filtered summary's totals are the group's, on a memory and a SQLite store alike."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tokencost import CostTracker
from tokencost.reports import KEY_JOIN, build_summaries, build_summary, grouped, newest_events
from tokencost.stores import Store, store_from_url
from tokencost.where import Where

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 11, 20, 9, tzinfo=UTC).timestamp()
DAY = 86_400.0

# (day offset, model, prompt, completion, metadata)
CALLS = [
    (0, "gpt-4o", 1535, 1015, {"user": "alice", "endpoint": "/chat", "tags": ["batch", "eu"]}),
    (0, "gpt-4o-mini", 10_000, 1_000, {"user": "bob", "endpoint": "/chat"}),
    (1, "gpt-4o", 2_000, 100, {"user": "alice", "tags": ["eu"]}),
    (1, "gpt-4o", 3_000, 200, {"user": "carol", "endpoint": "/search", "tags": ["batch"], "team": "x"}),
    (2, "gpt-4o-mini", 5_000, 500, {"endpoint": "/search", "team": "x"}),
    (2, "gpt-4o", 1_000, 1_000, {"user": "bob", "tags": ["eu"], "team": "y"}),
]


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A store holding ``CALLS`` over three days from ``T0``."""
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'costs.db'}"
    opened = store_from_url(url)
    now = [T0]
    tracker = CostTracker(store=opened, print_summary=False, linkup_api_key=False, clock=lambda: now[0])
    for i, (day, model, prompt, completion, meta) in enumerate(CALLS):
        now[0] = T0 + day * DAY + i * 60
        tracker.track(model=model, prompt_tokens=prompt, completion_tokens=completion, metadata=meta)
    tracker.flush()
    yield opened
    tracker.close()


def test_parse_and_describe() -> None:
    """key=value texts (a value may hold '='), blanks skipped; the pairs read back as they were given."""
    where = Where.parse(["model=gpt-4o", " ", "endpoint=/a=b"])
    assert where.pairs == (("model", "gpt-4o"), ("endpoint", "/a=b"))
    assert str(where) == "model=gpt-4o, endpoint=/a=b"
    assert where.get("endpoint") == "/a=b"
    assert where.get("user") is None
    assert where.without("model").pairs == (("endpoint", "/a=b"),)
    assert where.with_pair("model", "o3").get("model") == "o3"
    assert not Where()
    assert Where.from_params([("model", "o3"), ("user", ""), ("tag", None)], ["team=x"]).pairs == (
        ("model", "o3"),
        ("team", "x"),
    )


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        (["user"], "key=value"),
        (["=alice"], "needs a key"),
        (["day=2026-11-20"], "since/until"),
        (["month=2026-11"], "since/until"),
        (["user=a", "user=b"], "given twice"),
        (["a,b=c"], "cannot hold"),
    ],
)
def test_bad_filters_are_refused(texts: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Where.parse(texts)


def test_a_key_named_and_in_where_is_refused() -> None:
    with pytest.raises(ValueError, match="given twice"):
        Where.from_params([("model", "o3")], ["model=gpt-4o"])


@pytest.mark.parametrize("key", ["model", "user", "tag", "endpoint", "team", "provider"])
def test_a_filter_on_a_group_selects_that_group(store: Store, key: str) -> None:
    """For every group of every key, the summary filtered on it has exactly the group's totals."""
    groups = build_summary(store, "default", by=key).rows
    assert groups
    for row in groups:
        filtered = build_summary(store, "default", where=Where(((key, row.key),)), by="model")
        assert filtered.total_usd == row.cost_usd, (key, row.key)
        assert filtered.requests == row.requests, (key, row.key)
        assert "where" in filtered.window


def test_filters_combine_and_none_matches_missing_keys(store: Store) -> None:
    """Every pair must match; (none) selects the calls without the key."""
    both = build_summary(store, "default", where=Where.parse(["model=gpt-4o", "tag=eu"]), by="user")
    assert {row.key: row.requests for row in both.rows} == {"alice": 2, "bob": 1}
    nobody = build_summary(store, "default", where=Where.parse(["user=(none)"]))
    assert nobody.requests == 1
    assert [row.key for row in nobody.rows] == ["gpt-4o-mini"]
    assert build_summary(store, "default", where=Where.parse(["user=nobody"])).requests == 0


def test_exact_cost_of_one_filtered_call(store: Store) -> None:
    """1,535 + 1,015 tokens of gpt-4o cost $0.0139875 exactly; the filter keeps every digit."""
    summary = build_summary(store, "default", where=Where.parse(["endpoint=/chat", "user=alice"]))
    assert summary.total_usd == Decimal("0.0139875")


def test_summaries_share_one_read_and_agree_with_single_ones(store: Store) -> None:
    """build_summaries gives what build_summary gives for each key, filtered or not, with or without a range."""
    for where in (None, Where.parse(["team=x"])):
        for since in (None, T0 + DAY):
            many = build_summaries(store, "default", ["model", "user", "day,model"], since=since, where=where)
            for by, summary in many.items():
                assert summary == build_summary(store, "default", by=by, since=since, where=where)


def test_day_combinations_come_from_the_store_or_the_calls_alike(store: Store) -> None:
    """day,KEY is aggregated per day in the store unfiltered; through the calls when filtered: same groups."""
    from_store = grouped(store, "default", [["day", "model"]])[0]
    through_calls = grouped(store, "default", [["day", "model"]], where=Where.parse(["status=ok"]))[0]
    assert from_store == through_calls
    assert {g.key for g in from_store} == {
        f"2026-11-20{KEY_JOIN}gpt-4o",
        f"2026-11-20{KEY_JOIN}gpt-4o-mini",
        f"2026-11-21{KEY_JOIN}gpt-4o",
        f"2026-11-22{KEY_JOIN}gpt-4o-mini",
        f"2026-11-22{KEY_JOIN}gpt-4o",
    }


def test_newest_events_filtered_across_days(store: Store) -> None:
    """The newest calls that match, newest first, across days, bounded by limit and range."""
    eu = newest_events(store, "default", 10, where=Where.parse(["tag=eu"]))
    assert [e.metadata["user"] for e in eu] == ["bob", "alice", "alice"]
    assert [e.metadata["user"] for e in newest_events(store, "default", 2, where=Where.parse(["tag=eu"]))] == [
        "bob",
        "alice",
    ]
    in_range = newest_events(store, "default", 10, T0, T0 + DAY, Where.parse(["tag=eu"]))
    assert len(in_range) == 1
    assert [e.model for e in newest_events(store, "default", 2)] == ["gpt-4o", "gpt-4o-mini"]

"""Every store against ``ReferenceStore``: the same random operations, the same answers after each one.

Hypothesis draws a sequence of records (priced or not, several models, providers, users, tags, statuses and
days), reservations, releases, repricings, stale-reservation drops and clock moves. After each step the store
and the reference must agree on totals, ``aggregate`` by every key (whole history and a window), events (all, a
window, one model, the newest few), the counters and the open reservations.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokencost.stores.base import Check, Store
from tokencost.usage import Usage

from . import DAY, GPT4O, SONNET, T0, make_event
from .conftest import FakeClock
from .reference import ReferenceStore

KEYS = ("total", "user=alice", "user=bob", "model=gpt-4o")
GROUP_BY = ("model", "provider", "user", "tag", "day", "status", "price_source", "team")

_usage = st.builds(
    Usage,
    input=st.integers(0, 5_000),
    cache_read=st.integers(0, 2_000),
    cache_write=st.integers(0, 500),
    output=st.integers(0, 3_000),
    reasoning=st.integers(0, 100),
    cache_write_1h=st.integers(0, 300),
    cache_read_audio=st.integers(0, 400),
)
_metadata = st.fixed_dictionaries(
    {},
    optional={
        "user": st.sampled_from(["alice", "bob", "carol"]),
        "tags": st.lists(st.sampled_from(["batch", "eval", "prod"]), max_size=3),
        "team": st.sampled_from(["search", 7, True]),
    },
)
_record = st.tuples(
    st.just("record"),
    st.sampled_from(
        [("gpt-4o", "openai", GPT4O), ("claude-sonnet-4-5", "anthropic", SONNET), ("mystery-1", "acme", None)]
    ),
    _usage,
    _metadata,
    st.sampled_from(["ok", "cache_hit"]),
    st.integers(0, 3 * 86_400 // 7 - 1).map(lambda n: T0 + n * 7 + 0.25),
    st.lists(st.sampled_from(KEYS), unique=True, max_size=3),
    st.booleans(),  # settles the newest open reservation
)
_reserve = st.tuples(
    st.just("reserve"),
    st.lists(
        st.tuples(st.sampled_from(KEYS), st.none() | st.integers(0, 10**9), st.none() | st.integers(0, 50_000)),
        min_size=1,
        max_size=3,
    ),
    st.integers(0, 10**8),
    st.integers(0, 20_000),
    st.sampled_from([5.0, 30.0, 600.0]),
)
_reprice = st.tuples(
    st.just("reprice"),
    st.integers(0, 15),
    st.integers(0, 10**9),
    st.lists(st.sampled_from(KEYS), unique=True, max_size=2),
)
_operation = st.one_of(
    _record,
    _reserve,
    _reprice,
    st.tuples(st.just("release"), st.integers(0, 50)),
    st.tuples(st.just("advance"), st.sampled_from([1.0, 10.0, 100.0])),
    st.tuples(st.just("release_stale"), st.sampled_from([0.0, 20.0, 300.0])),
)


def compare(store: Store, reference: ReferenceStore, ledger: str) -> None:
    """Assert that ``store`` and ``reference`` give the same answer to every read of ``ledger``."""
    assert store.totals(ledger) == reference.totals(ledger)
    for by in GROUP_BY:
        assert store.aggregate(ledger, by) == reference.aggregate(ledger, by), by
    since, until = T0 + DAY / 2, T0 + 2 * DAY
    for by in ("model", "user", "day"):
        assert store.aggregate(ledger, by, since, until) == reference.aggregate(ledger, by, since, until), by
    assert store.events(ledger) == reference.events(ledger)
    assert store.events(ledger, since, until) == reference.events(ledger, since, until)
    assert store.events(ledger, model="gpt-4o", limit=3) == reference.events(ledger, model="gpt-4o", limit=3)
    assert store.counters(ledger, list(KEYS)) == reference.counters(ledger, list(KEYS))
    assert store.reservations(ledger) == reference.reservations(ledger)


def apply(stores: tuple[Store, ReferenceStore], ledger: str, operation: tuple[Any, ...], state: dict[str, Any]) -> None:
    """Run ``operation`` on both stores; their answers must agree."""
    kind = operation[0]
    results: list[Any] = []
    for target in stores:
        if kind == "record":
            _, (model, provider, price), usage, metadata, status, ts, charges, settle = operation
            call_id = f"c{state['calls']}"
            event = make_event(
                call_id, model=model, provider=provider, price=price, usage=usage, metadata=metadata,
                status="pending" if price is None else status, timestamp=ts,
            )  # fmt: skip
            reservation = state["reservations"][-1] if settle and state["reservations"] else None
            results.append(target.record(ledger, event, tuple(charges), reservation))
        elif kind == "reserve":
            _, limits, cost, tokens, ttl = operation
            checks = [Check(key, limit_units=units, limit_tokens=toks) for key, units, toks in limits]
            results.append(target.reserve(ledger, f"r{state['serial']}", checks, cost, tokens, ttl))
        elif kind == "reprice":
            _, pick, cost, charges = operation
            results.append(target.update_cost(ledger, f"c{pick}", cost, SONNET, tuple(charges)))
        elif kind == "release":
            reservations = state["reservations"]
            rid = reservations[operation[1] % len(reservations)] if reservations else "none"
            results.append(target.release(ledger, rid))
        elif kind == "release_stale":
            results.append(target.release_stale(ledger, operation[1]))
    if kind == "record":
        state["calls"] += 1
    elif kind == "reserve":
        if results[0] is None:
            state["reservations"].append(f"r{state['serial']}")
        state["serial"] += 1
    elif kind == "advance":
        state["clock"].advance(operation[1])
        return
    assert results[0] == results[1], operation


@pytest.mark.parametrize("kind", ["memory", "sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def test_store_agrees_with_the_reference_after_every_step(
    kind: str, request: pytest.FixtureRequest, tmp_path: Any
) -> None:
    """Random operations give the same totals, groups, events, counters and reservations as the reference."""
    from .conftest import open_store

    clock = FakeClock()
    store = open_store(kind, request, tmp_path, clock=clock)

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(_operation, min_size=8, max_size=40))
    def run(operations: list[tuple[Any, ...]]) -> None:
        ledger = f"ref-{uuid.uuid4().hex[:8]}"  # a fresh ledger for each example
        reference = ReferenceStore(clock=clock)
        state: dict[str, Any] = {"calls": 0, "serial": 0, "reservations": [], "clock": clock}
        for operation in operations:
            apply((store, reference), ledger, operation, state)
            compare(store, reference, ledger)

    try:
        run()
    finally:
        store.close()

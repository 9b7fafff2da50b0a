"""The ``Store`` contract, run over every backend: each must behave like ``ReferenceStore`` (``reference.py``).

``test_store_reference.py`` compares each store with it over random sequences of operations."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from tokencost.events import Event
from tokencost.pricing import Price
from tokencost.stores.base import (
    MAX_EVENT_UNITS,
    MAX_TOKENS,
    NONE_KEY,
    Check,
    Group,
    Reservation,
    Store,
    Totals,
    implausible,
    plausible_event,
)
from tokencost.usage import Usage

from . import DAY, GPT4O, SONNET, T0, make_event
from .conftest import FakeClock
from .reference import ReferenceStore

LEDGER = "app"


def sample_events() -> list:
    """Events over two days, two models and providers, users, tags, one unpriced and one cache hit."""
    return [
        make_event("a1", metadata={"user": "alice", "tags": ["batch", "eval"]}),
        make_event("a2", metadata={"user": "alice", "tags": ["batch"]}, timestamp=T0 + 60),
        make_event(
            "b1",
            model="claude-sonnet-4-5",
            provider="anthropic",
            price=SONNET,
            usage=Usage(input=100, cache_write=2000, cache_read=8000, output=500),
            metadata={"user": "bob", "team": "search"},
            timestamp=T0 + DAY,
        ),
        make_event("u1", model="mystery-1", price=None, metadata={"user": "bob"}, status="pending", timestamp=T0 + 120),
        make_event(
            "c1", cost_units=0, metadata={"user": "carol", "tags": ["batch", "batch"]}, status="cache_hit", timestamp=T0
        ),
    ]


def ids(events: list) -> list[str]:
    """Return the call ids of ``events``."""
    return [e.call_id for e in events]


def record_all(store: Store, events: list, charges: tuple[str, ...] = ("total",)) -> None:
    """Record ``events`` in order, charging ``charges``."""
    for event in events:
        store.record(LEDGER, event, charges)


def test_record_returns_new_counter_values(store: Store) -> None:
    """record() returns each charged counter's units and tokens including the event just recorded."""
    first = store.record(LEDGER, make_event("e1", cost_units=5), ("total", "user=alice"))
    second = store.record(LEDGER, make_event("e2", cost_units=7), ("total",))
    assert first == {"total": (5, 1250), "user=alice": (5, 1250)}
    assert second == {"total": (12, 2500)}
    assert store.record(LEDGER, make_event("e3", price=None), ("total",)) == {"total": (12, 3750)}


def test_money_sums_are_exact_integers(store: Store) -> None:
    """800 calls of $0.02 add up to exactly $16, the sum float addition gets wrong."""
    for i in range(800):
        store.record(LEDGER, make_event(f"e{i}", cost_units=20_000_000_000), ("total",))
    assert store.flush(10)
    totals = store.totals(LEDGER)
    assert totals.cost_units == 16 * 10**12
    assert totals.requests == 800
    assert store.counters(LEDGER, ["total"])["total"] == (16 * 10**12, 800 * 1250, 0)


def test_amounts_beyond_float_precision_stay_exact(store: Store) -> None:
    """Costs above 2^53 pico-dollars ($9,007) add up without rounding."""
    big = 2**53 + 1
    for i in range(3):
        store.record(LEDGER, make_event(f"e{i}", cost_units=big), ("total",))
    assert store.totals(LEDGER).cost_units == 3 * big
    assert store.counters(LEDGER, ["total"])["total"][0] == 3 * big


def test_totals_count_requests_unpriced_savings_and_tokens(store: Store) -> None:
    """totals() adds every event: unpriced ones count as requests and tokens, not money."""
    events = sample_events()
    record_all(store, events)
    totals = store.totals(LEDGER)
    assert totals.requests == 5
    assert totals.unpriced == 1
    assert totals.cost_units == sum(e.cost_units or 0 for e in events)
    assert totals.saved_units == sum(e.saved_units for e in events)
    assert totals.cache_read_tokens == 200 * 4 + 8000
    assert totals.cache_write_tokens == 2000
    assert totals.output_tokens == 50 * 4 + 500
    assert totals.prompt_tokens == 1200 * 4 + 10100


def test_empty_ledger_reads_as_zero(store: Store) -> None:
    """A ledger never written has zero totals, no groups, no events and zero counters."""
    assert store.totals("nothing") == Totals()
    assert store.aggregate("nothing", "model") == []
    assert store.events("nothing") == []
    assert store.counters("nothing", ["total"]) == {"total": (0, 0, 0)}


@pytest.mark.parametrize("by", ["model", "provider", "user", "tag", "day", "status", "price_source", "team"])
def test_aggregate_matches_the_reference_store(store: Store, by: str) -> None:
    """aggregate(by) gives the same groups, sums and order as the plain ReferenceStore."""
    reference = ReferenceStore()
    record_all(store, sample_events())
    record_all(reference, sample_events())
    assert store.aggregate(LEDGER, by) == reference.aggregate(LEDGER, by)


def test_a_price_source_named_empty_groups_as_none_in_every_store(store: Store) -> None:
    """A user's own price source may be named "" (CostTracker(sources=[...])): its events group under "(none)"
    by price_source in every store, as the reference store does, and read back with the name they were given."""
    import dataclasses

    events = [dataclasses.replace(event, price_source="") for event in sample_events()[:2]]
    reference = ReferenceStore()
    record_all(store, events)
    record_all(reference, events)
    assert [g.key for g in store.aggregate(LEDGER, "price_source")] == ["(none)"]
    assert store.aggregate(LEDGER, "price_source") == reference.aggregate(LEDGER, "price_source")
    assert [e.price_source for e in store.events(LEDGER)] == ["", ""]


def test_aggregate_by_model_and_tag_values(store: Store) -> None:
    """Groups hold the right sums: most expensive first, an event with several tags counts in each once."""
    record_all(store, sample_events())
    by_model = store.aggregate(LEDGER, "model")
    assert [g.key for g in by_model] == ["claude-sonnet-4-5", "gpt-4o", "mystery-1"]
    sonnet_cost = SONNET.cost_units(Usage(input=100, cache_write=2000, cache_read=8000, output=500))
    assert by_model[0].cost_units == sonnet_cost == 17_700_000_000  # $0.0177
    assert by_model[2].unpriced == 1 and by_model[2].cost_units == 0
    by_tag = {g.key: g for g in store.aggregate(LEDGER, "tag")}
    assert set(by_tag) == {"batch", "eval", NONE_KEY}
    assert by_tag["batch"].requests == 3  # a1, a2, and c1 (tagged "batch" twice) once
    assert by_tag["eval"].requests == 1
    assert by_tag[NONE_KEY].requests == 2
    by_day = store.aggregate(LEDGER, "day")
    assert {g.key: g.requests for g in by_day} == {"2025-11-24": 4, "2025-11-25": 1}
    by_user = {g.key: g.requests for g in store.aggregate(LEDGER, "user")}
    assert by_user == {"alice": 2, "bob": 2, "carol": 1}
    assert {g.key: g.requests for g in store.aggregate(LEDGER, "team")} == {"search": 1, NONE_KEY: 4}


def test_aggregate_since_until(store: Store) -> None:
    """since is inclusive and until exclusive, for dimension and metadata groupings alike."""
    record_all(store, sample_events())
    first_day = store.aggregate(LEDGER, "model", since=T0, until=T0 + DAY)
    assert {g.key: g.requests for g in first_day} == {"gpt-4o": 3, "mystery-1": 1}
    assert [g.key for g in store.aggregate(LEDGER, "user", since=T0 + DAY)] == ["bob"]
    assert store.aggregate(LEDGER, "tag", since=T0 + 60, until=T0 + 61) == [
        Group.of("batch", [1, GPT4O.cost_units(Usage(1000, 200, 0, 50)), 0, 250_000_000, 1000, 200, 0, 50, 0])
    ]


def test_events_round_trip_equal(store: Store) -> None:
    """events() returns events equal to those recorded: usage, cost, price, breakdown, metadata, status."""
    events = [
        *sample_events(),
        make_event("x1", breakdown={"input": 7, "output": 3}, cost_units=10, reason="litellm response_cost"),
        make_event("x2", timestamp=T0 + 0.123456789, metadata={"nested": {"a": [1, 2.5, None, True]}}),
        make_event("x3", usage=Usage(audio_in=5, audio_out=6, image=7, reasoning=8)),
    ]
    record_all(store, events)
    assert store.events(LEDGER) == events


ANTHROPIC_1H = Usage(
    input=100,
    cache_write=300,
    cache_write_1h=2000,
    output=50,
    web_search_requests=3,
    service_tier="priority",
    inference_geo="us",
)


def test_billing_dimensions_round_trip_and_count_in_totals(store: Store) -> None:
    """1-hour cache writes, web searches, service tier and inference geography read back as recorded; the
    totals' cache writes count both TTLs, web searches count as no tokens."""
    events = [
        make_event("d1", price=SONNET, usage=ANTHROPIC_1H),
        make_event("d2", usage=Usage(input=10, output=5, service_tier="flex")),
        make_event("d3", usage=Usage(input=10, output=5, inference_geo="eu")),
    ]
    record_all(store, events)
    assert store.events(LEDGER) == events
    totals = store.totals(LEDGER)
    assert totals.cache_write_tokens == 2300
    assert totals.prompt_tokens == 2420
    assert store.counters(LEDGER, ["total"])["total"][1] == 2450 + 15 + 15
    model = {g.key: g for g in store.aggregate(LEDGER, "model")}["gpt-4o"]
    assert model.cache_write_tokens == 2300


def test_update_cost_keeps_the_billing_dimensions(store: Store) -> None:
    """Repricing a pending event keeps its 1-hour cache writes and labels, and its groups' cache writes."""
    pending = make_event("p1", model="acme-large-2", price=None, status="pending", usage=ANTHROPIC_1H)
    store.record(LEDGER, pending, ("total",))
    cost = SONNET.cost_units(ANTHROPIC_1H)
    assert store.update_cost(LEDGER, "p1", cost, SONNET, ("total",))
    repriced = store.events(LEDGER)[0]
    assert repriced.usage == ANTHROPIC_1H
    assert store.totals(LEDGER).cache_write_tokens == 2300
    groups = {g.key: g for g in store.aggregate(LEDGER, "status")}
    assert (groups["ok"].requests, groups["ok"].cache_write_tokens) == (1, 2300)


# gemini-2.5-flash: $0.30 / $2.50, audio $1.00, cache reads $0.03, cached audio $0.10 per million.
GEMINI = dataclasses.replace(
    Price.per_mtok("0.30", "2.50", cache_read="0.03", source="litellm"),
    audio_in=Decimal("0.000001"),
    cache_read_audio=Decimal("0.0000001"),
)
CACHED_AUDIO = Usage(input=400, cache_read=800, cache_read_audio=400, audio_in=400, output=300)


def test_cached_audio_round_trips_and_counts_as_a_cache_read_in_totals(store: Store) -> None:
    """Cached audio reads back as recorded, priced and saved at its own price; the totals' and groups' cache
    reads count text and audio, the counters' tokens every token."""
    events = [
        make_event("a1", model="gemini-2.5-flash", price=GEMINI, usage=CACHED_AUDIO),
        make_event("a2", usage=Usage(input=10, cache_read_audio=5, output=5)),
    ]
    record_all(store, events)
    back = store.events(LEDGER)
    assert back == events
    assert back[0].cost_units == 1_334 * 10**6  # $0.001334 (tests/test_provider_payloads.py)
    assert back[0].saved_units == 576 * 10**6  # 800 x (0.30 - 0.03) + 400 x (1.00 - 0.10) per million
    totals = store.totals(LEDGER)
    assert totals.cache_read_tokens == 1_200 + 5
    assert totals.input_tokens == 400 + 10
    assert store.counters(LEDGER, ["total"])["total"][1] == 2_300 + 20
    groups = {g.key: g for g in store.aggregate(LEDGER, "model")}
    assert (groups["gemini-2.5-flash"].cache_read_tokens, groups["gpt-4o"].cache_read_tokens) == (1_200, 5)


def test_update_cost_keeps_the_cached_audio(store: Store) -> None:
    """Repricing a pending event keeps its cached audio, saves at its price, and keeps its groups' cache reads."""
    pending = make_event("p1", model="gemini-2.5-flash", price=None, status="pending", usage=CACHED_AUDIO)
    store.record(LEDGER, pending, ("total",))
    assert store.update_cost(LEDGER, "p1", GEMINI.cost_units(CACHED_AUDIO), GEMINI, ("total",))
    repriced = store.events(LEDGER)[0]
    assert repriced.usage == CACHED_AUDIO
    assert repriced.saved_units == 576 * 10**6
    assert store.totals(LEDGER).cache_read_tokens == 1_200
    groups = {g.key: g for g in store.aggregate(LEDGER, "status")}
    assert (groups["ok"].requests, groups["ok"].cache_read_tokens) == (1, 1_200)


def test_metadata_that_looks_alike_reads_back_as_recorded(store: Store) -> None:
    """Metadata values that are falsy, nested, or shaped like another event's frozen form stay apart."""
    shapes = [
        {"flag": 0},
        {"flag": False},
        {"flag": 0.0},
        {"flag": None},
        {"flag": ""},
        {"flag": []},
        {"flag": "x", "n": 1},
        {"n": 1, "flag": "x"},
        {"a": {"b": 1}},
        {"a": (("b", 1),)},
        {"a": [{"b": [1, {"c": None}]}]},
    ]
    events = [make_event(f"m{i}", metadata=metadata) for i, metadata in enumerate(shapes)]
    record_all(store, events)
    got = [dict(e.metadata) for e in store.events(LEDGER)]
    # JSON has no tuples: a tuple reads back as a list from the stores that keep JSON.
    expected = [metadata if i != 9 else got[9] for i, metadata in enumerate(shapes)]
    assert got == expected
    assert got[9]["a"] in ((("b", 1),), [["b", 1]])
    assert [type(m["flag"]) for m in got[:3]] == [int, bool, float]


def test_events_filters_and_limit(store: Store) -> None:
    """events() filters by time window and model, and limit keeps the newest, in recorded order."""
    events = sample_events()
    record_all(store, events)
    assert ids(store.events(LEDGER, since=T0 + 60)) == ["a2", "b1", "u1"]
    assert ids(store.events(LEDGER, until=T0 + 60)) == ["a1", "c1"]
    assert ids(store.events(LEDGER, since=T0 + 60, until=T0 + DAY)) == ["a2", "u1"]
    assert ids(store.events(LEDGER, model="gpt-4o")) == ["a1", "a2", "c1"]
    assert ids(store.events(LEDGER, limit=2)) == ["u1", "c1"]
    assert ids(store.events(LEDGER, model="gpt-4o", limit=2)) == ["a2", "c1"]


def test_counters_track_units_tokens_and_reservations(store: Store) -> None:
    """counters() reports spent units, tokens and what open reservations hold, per key."""
    store.record(LEDGER, make_event("e1", cost_units=100), ("total", "model=gpt-4o"))
    store.record(LEDGER, make_event("e2", cost_units=50), ("total",))
    assert store.reserve(LEDGER, "r1", [Check("total", limit_units=1000)], 300, 40, ttl=60) is None
    assert store.counters(LEDGER, ["total", "model=gpt-4o", "other"]) == {
        "total": (150, 2500, 300),
        "model=gpt-4o": (100, 1250, 0),
        "other": (0, 0, 0),
    }


def test_reserve_refuses_when_full_and_holds_nothing(store: Store) -> None:
    """A reservation that does not fit is refused with the failing check, and nothing is held for it."""
    checks = [Check("total", limit_units=1000), Check("user=alice", limit_units=500)]
    assert store.reserve(LEDGER, "r1", checks, 400, 0, ttl=60) is None
    refused = store.reserve(LEDGER, "r2", checks, 200, 0, ttl=60)
    assert refused == Check("user=alice", limit_units=500)
    assert store.counters(LEDGER, ["total", "user=alice"]) == {"total": (0, 0, 400), "user=alice": (0, 0, 400)}
    assert store.reserve(LEDGER, "r3", checks, 100, 0, ttl=60) is None
    assert store.reserve(LEDGER, "r4", [Check("total", limit_units=1000)], 501, 0, ttl=60) == checks[0]


def test_reserve_counts_spent_money_and_tokens(store: Store) -> None:
    """Spent units and tokens count against a reservation; an exact fit passes, one unit more does not."""
    store.record(LEDGER, make_event("e1", cost_units=600), ("total",))
    assert store.reserve(LEDGER, "r1", [Check("total", limit_units=1000)], 401, 0, ttl=60) == Check(
        "total", limit_units=1000
    )
    assert store.reserve(LEDGER, "r2", [Check("total", limit_units=1000)], 400, 0, ttl=60) is None
    token_check = Check("total", limit_tokens=2000)
    assert store.reserve(LEDGER, "r3", [token_check], 0, 751, ttl=60) == token_check
    assert store.reserve(LEDGER, "r4", [token_check], 0, 750, ttl=60) is None


def test_record_settles_its_reservation(store: Store) -> None:
    """Recording with a reservation drops it: the actual cost replaces the hold."""
    limit = [Check("total", limit_units=1000)]
    assert store.reserve(LEDGER, "r1", limit, 800, 0, ttl=60) is None
    assert store.reserve(LEDGER, "r2", limit, 300, 0, ttl=60) == limit[0]
    store.record(LEDGER, make_event("e1", cost_units=500), ("total",), reservation="r1")
    assert store.counters(LEDGER, ["total"])["total"] == (500, 1250, 0)
    assert store.reserve(LEDGER, "r2", limit, 300, 0, ttl=60) is None
    assert store.reserve(LEDGER, "r3", limit, 201, 0, ttl=60) == limit[0]


def test_release_drops_a_reservation(store: Store) -> None:
    """release() gives the held amount back; releasing an unknown id does nothing."""
    limit = [Check("total", limit_units=100)]
    assert store.reserve(LEDGER, "r1", limit, 100, 0, ttl=60) is None
    assert store.reserve(LEDGER, "r2", limit, 1, 0, ttl=60) == limit[0]
    store.release(LEDGER, "r1")
    store.release(LEDGER, "unknown")
    assert store.counters(LEDGER, ["total"])["total"] == (0, 0, 0)
    assert store.reserve(LEDGER, "r2", limit, 100, 0, ttl=60) is None


def test_reservations_expire(clocked_store: Store, clock: FakeClock) -> None:
    """A reservation not settled within its ttl stops holding budget (a crashed worker does not block)."""
    store = clocked_store
    limit = [Check("total", limit_units=100)]
    assert store.reserve(LEDGER, "r1", limit, 100, 0, ttl=0.2) is None
    assert store.reserve(LEDGER, "r2", limit, 100, 0, ttl=60) == limit[0]
    clock.advance(0.35)
    assert store.counters(LEDGER, ["total"])["total"] == (0, 0, 0)
    assert store.reserve(LEDGER, "r2", limit, 100, 0, ttl=60) is None


def test_update_cost_prices_an_unpriced_event_once(store: Store) -> None:
    """update_cost() prices a pending event, charges its counters and moves it to status ok, only once."""
    pending = make_event("p1", model="acme-large-2", price=None, status="pending", reason="price lookup in progress")
    store.record(LEDGER, pending, ("total",))
    store.record(LEDGER, make_event("e1", cost_units=10), ("total",))
    price = GPT4O
    cost = price.cost_units(pending.usage)
    assert store.update_cost(LEDGER, "p1", cost, price, ("total",))
    assert not store.update_cost(LEDGER, "p1", cost, price, ("total",))
    assert not store.update_cost(LEDGER, "e1", cost, price, ("total",))
    assert not store.update_cost(LEDGER, "missing", cost, price, ("total",))
    totals = store.totals(LEDGER)
    saved = price.saved_units(pending.usage)
    assert (totals.cost_units, totals.unpriced, totals.saved_units) == (cost + 10, 0, 2 * saved)
    assert store.counters(LEDGER, ["total"])["total"] == (cost + 10, 2500, 0)
    repriced = store.events(LEDGER)[0]
    assert (repriced.cost_units, repriced.price, repriced.status, repriced.reason) == (cost, price, "ok", None)
    assert repriced.price_source == "litellm"
    assert {g.key: (g.requests, g.unpriced) for g in store.aggregate(LEDGER, "status")} == {"ok": (2, 0)}
    acme = {g.key: g for g in store.aggregate(LEDGER, "model")}["acme-large-2"]
    assert (acme.requests, acme.cost_units, acme.unpriced) == (1, cost, 0)
    assert {g.key: g.requests for g in store.aggregate(LEDGER, "price_source")} == {"litellm": 2}


def test_reset_forgets_the_ledger_but_keeps_meta_and_other_ledgers(store: Store) -> None:
    """reset() drops events, totals, counters and reservations of one ledger; meta and other ledgers stay."""
    record_all(store, sample_events())
    store.record("other", make_event("o1"), ("total",))
    store.set_meta(LEDGER, "budgets", '[{"limit": "5"}]')
    assert store.reserve(LEDGER, "r1", [Check("total", limit_units=10**15)], 5, 0, ttl=60) is None
    store.reset(LEDGER)
    assert store.totals(LEDGER) == Totals()
    assert store.events(LEDGER) == []
    assert store.aggregate(LEDGER, "user") == []
    assert store.counters(LEDGER, ["total"]) == {"total": (0, 0, 0)}
    assert store.get_meta(LEDGER, "budgets") == '[{"limit": "5"}]'
    assert store.totals("other").requests == 1
    assert store.record(LEDGER, make_event("n1", cost_units=3), ("total",)) == {"total": (3, 1250)}


def test_meta_round_trip(store: Store) -> None:
    """set_meta() keeps a text value per ledger and key; get_meta() of an unknown key is None."""
    store.set_meta(LEDGER, "budgets", "v1")
    store.set_meta(LEDGER, "budgets", "v2 ✓")
    store.set_meta("other", "budgets", "o")
    assert store.get_meta(LEDGER, "budgets") == "v2 ✓"
    assert store.get_meta("other", "budgets") == "o"
    assert store.get_meta(LEDGER, "missing") is None


def test_ledgers_are_isolated(store: Store) -> None:
    """Two ledgers in one store share nothing: totals, counters, events, reservations."""
    store.record("a", make_event("e1", cost_units=1), ("total",))
    store.record("b", make_event("e2", cost_units=2), ("total",))
    assert store.reserve("a", "r", [Check("total", limit_units=10)], 9, 0, ttl=60) is None
    assert store.reserve("b", "r", [Check("total", limit_units=10)], 8, 0, ttl=60) is None
    assert store.counters("a", ["total"])["total"] == (1, 1250, 9)
    assert store.counters("b", ["total"])["total"] == (2, 1250, 8)
    assert [e.call_id for e in store.events("b")] == ["e2"]


def test_flush_returns_true_once_everything_is_written(store: Store) -> None:
    """flush() returns True, and everything recorded before it is readable."""
    for i in range(50):
        store.record(LEDGER, make_event(f"e{i}"), ())
    assert store.flush(10) is True
    assert store.totals(LEDGER).requests == 50


def test_metadata_json_cannot_hold_is_kept_as_text(store: Store) -> None:
    """Metadata with NaN or arbitrary objects is recorded (never blocks the ledger) and groups still work."""

    class Opaque:
        def __str__(self) -> str:
            return "opaque"

    store.record(LEDGER, make_event("m1", metadata={"user": "alice", "score": float("nan"), "obj": Opaque()}), ())
    store.record(LEDGER, make_event("m2", metadata={"user": "bob", "tags": ["x"]}), ())
    assert store.totals(LEDGER).requests == 2
    assert {g.key for g in store.aggregate(LEDGER, "user")} == {"alice", "bob"}
    assert {g.key for g in store.aggregate(LEDGER, "tag")} == {"x", NONE_KEY}
    assert str(store.events(LEDGER)[0].metadata["obj"]) == "opaque"


def test_charges_may_be_any_sequence(store: Store) -> None:
    """record() accepts charges as a list as well as a tuple."""
    assert store.record(LEDGER, make_event("e1", cost_units=4), ["total", "user=a"]) == {
        "total": (4, 1250),
        "user=a": (4, 1250),
    }


def test_sums_read_between_writes_match_the_events(store: Store) -> None:
    """Totals and groups read between writes and repricings always equal the sums of the events themselves.

    Many kinds of event (users, tags, statuses, unpriced ones repriced before and after reads) written in
    stretches with reads in between: the sums a store keeps (the memory store brings them up to date on read, the
    others write them with each batch) must agree with a windowed aggregate, which sums the events one by one.
    """
    users = ["alice", "bob", "carol", None]
    for i in range(60):
        metadata = {"user": users[i % 4], "tags": [f"t{i % 3}"] if i % 5 else []}
        if i % 7 == 3:
            event = make_event(f"p{i}", model="acme-1", price=None, status="pending", metadata=metadata)
        else:
            event = make_event(f"e{i}", usage=Usage(input=100 + i, cache_read=i, output=7 * i), metadata=metadata)
        store.record(LEDGER, event, ("total",))
        if i % 11 == 10:
            store.update_cost(LEDGER, f"p{i - 7}", 1_000 + i, SONNET, ("total",))
        if i % 9 == 8:
            totals = store.totals(LEDGER)
            assert totals.requests == i + 1
            for by in ("model", "user", "tag", "status"):
                assert store.aggregate(LEDGER, by) == store.aggregate(LEDGER, by, since=-1.0)
    totals = store.totals(LEDGER)
    events = store.events(LEDGER)
    assert totals.requests == len(events) == 60
    assert totals.cost_units == sum(e.cost_units or 0 for e in events)
    assert totals.unpriced == sum(e.cost_units is None for e in events)
    assert totals.saved_units == sum(e.saved_units for e in events)
    assert totals.output_tokens == sum(e.usage.output for e in events)
    for by in ("model", "provider", "user", "tag", "status", "price_source"):
        assert store.aggregate(LEDGER, by) == store.aggregate(LEDGER, by, since=-1.0)


def test_thousands_of_events_read_back_in_order(store: Store) -> None:
    """2,500 events (more than the memory store's 1,024-row chunk) read back in order, whole and in windows,
    and one repriced from the start of the ledger is found and moved."""
    for i in range(2_500):
        if i == 5:
            event = make_event("p5", model="acme-1", price=None, status="pending", timestamp=T0 + i)
        else:
            event = make_event(f"e{i}", usage=Usage(input=i + 1, output=i % 7), timestamp=T0 + i)
        store.record(LEDGER, event, ("total",))
    assert store.totals(LEDGER).requests == 2_500
    assert store.update_cost(LEDGER, "p5", 77, SONNET, ("total",))
    events = store.events(LEDGER)
    assert ids(events) == [("p5" if i == 5 else f"e{i}") for i in range(2_500)]
    assert events[5].cost_units == 77 and events[5].status == "ok"
    assert [e.usage.input for e in events[1_020:1_030]] == list(range(1_021, 1_031))
    window = store.events(LEDGER, since=T0 + 1_000, until=T0 + 2_100)
    assert ids(window) == [f"e{i}" for i in range(1_000, 2_100)]
    assert ids(store.events(LEDGER, limit=3)) == ["e2497", "e2498", "e2499"]
    totals = store.totals(LEDGER)
    assert (totals.unpriced, totals.cost_units) == (0, sum(e.cost_units or 0 for e in events))
    (group,) = [g for g in store.aggregate(LEDGER, "model", since=T0 + 1_000) if g.key == "gpt-4o"]
    assert group.input_tokens == sum(range(1_001, 2_501))


# -- amounts past 2^63 pico-dollars, and usage no call can have -------------------------------------------------


def test_totals_past_2_to_63_pico_dollars_stay_exact(store: Store) -> None:
    """Events written in separate batches add up past 2^63 pico-dollars (~$9.2M): totals, counters and groups stay
    exact ints, whole-history and windowed alike."""
    big = 5 * 10**18 + 123_456_789  # $5,000,000.000123456789
    for i in range(3):
        store.record(LEDGER, make_event(f"e{i}", cost_units=big, timestamp=T0 + i), ("total",))
        assert store.flush(10)
    expected = 3 * big
    assert expected > 2**63
    totals = store.totals(LEDGER)
    assert type(totals.cost_units) is int and totals.cost_units == expected
    assert store.counters(LEDGER, ["total"])["total"][0] == expected
    (group,) = store.aggregate(LEDGER, "model")
    assert type(group.cost_units) is int and group.cost_units == expected
    (window,) = store.aggregate(LEDGER, "model", since=T0, until=T0 + 10)
    assert window.cost_units == expected
    # A strict limit past 2^63 is compared exactly: one unit over is refused, an exact fit passes.
    check = Check("total", limit_units=expected + 10)
    assert store.reserve(LEDGER, "r1", [check], 11, 0, ttl=60) == check
    assert store.reserve(LEDGER, "r2", [check], 10, 0, ttl=60) is None
    assert store.counters(LEDGER, ["total"])["total"] == (expected, 3 * 1250, 10)


def test_a_trillion_dollars_of_spend_is_exact(store: Store) -> None:
    """110,000 events of the largest single amount (2^63 - 1 pico-dollars): over $10^12, exact to 1e-12."""
    n = 110_000
    events = [
        Event(f"e{i}", T0 + i, "m", "openai", Usage(input=1), MAX_EVENT_UNITS, saved_units=MAX_EVENT_UNITS)
        for i in range(n)
    ]
    for event in events:
        store.record(LEDGER, event, ("total",))
    assert store.flush(60)
    expected = n * MAX_EVENT_UNITS
    assert expected > 10**12 * 10**12  # $10^12 in pico-dollars
    totals = store.totals(LEDGER)
    assert (totals.requests, totals.cost_units, totals.saved_units) == (n, expected, expected)
    assert store.counters(LEDGER, ["total"])["total"][:2] == (expected, n)
    assert [(g.key, g.cost_units) for g in store.aggregate(LEDGER, "model")] == [("m", expected)]


def test_implausible_usage_is_recorded_unpriced_and_blocks_nothing(store: Store) -> None:
    """A usage of 10^13 completion tokens is recorded unpriced with the reason, charges no money or tokens, and
    the events around it are written; so is an amount no single call can cost (above 2^63 - 1)."""
    huge = Usage(input=100, output=10**13)
    absurd = make_event("huge", usage=huge, cost_units=GPT4O.cost_units(huge), metadata={"user": "eve"})
    overflow = make_event("overflow", cost_units=2**64, usage=Usage(input=10))
    normal = [make_event(f"n{i}", cost_units=7) for i in range(3)]
    values = store.record(LEDGER, normal[0], ("total",))
    assert store.record(LEDGER, absurd, ("total",)) == values  # nothing charged
    store.record(LEDGER, normal[1], ("total",))
    store.record(LEDGER, overflow, ("total",))
    store.record(LEDGER, normal[2], ("total",))
    assert store.flush(10)
    events = {e.call_id: e for e in store.events(LEDGER)}
    assert list(events) == ["n0", "huge", "n1", "overflow", "n2"]
    assert events["huge"].cost_units is None and events["huge"].price is None
    assert "implausible usage" in (events["huge"].reason or "") and "output=10000000000000" in events["huge"].reason
    assert events["huge"].usage == Usage()
    assert events["huge"].metadata == {"user": "eve"}
    assert events["overflow"].cost_units is None and "implausible amount" in (events["overflow"].reason or "")
    assert events["overflow"].usage == Usage(input=10)
    totals = store.totals(LEDGER)
    assert (totals.requests, totals.cost_units, totals.unpriced) == (5, 21, 2)
    assert store.counters(LEDGER, ["total"])["total"] == (21, 3 * 1250 + 10, 0)
    assert not store.update_cost(LEDGER, "overflow", 2**64, GPT4O, ("total",))
    assert store.totals(LEDGER).cost_units == 21


def test_plausible_event_leaves_ordinary_events_alone() -> None:
    """The helper returns an ordinary event itself (the tracker may call it on every event)."""
    event = make_event("e1", usage=Usage(input=MAX_TOKENS, output=MAX_TOKENS))
    assert plausible_event(event) is event
    assert implausible(event) is None
    assert implausible(make_event("e2", usage=Usage(reasoning=MAX_TOKENS + 1))) is not None
    assert implausible(make_event("e3", cost_units=-1)) is not None


# -- reservations: listing, stale ones, one hold per counter, an injected clock ---------------------------------


def test_reservations_lists_the_open_ones(clocked_store: Store, clock: FakeClock) -> None:
    """reservations() gives id, keys, amount (past 2^63 too), tokens, creation and expiry by the store's clock."""
    store = clocked_store
    assert store.reservations(LEDGER) == []
    big = 2**64 + 5
    assert store.reserve(LEDGER, "r1", [Check("total"), Check("user=a")], 300, 40, ttl=60) is None
    clock.advance(5)
    assert store.reserve(LEDGER, "r2", [Check("total", limit_units=2**70)], big, 0, ttl=10) is None
    start = clock.now - 5
    assert store.reservations(LEDGER) == [
        Reservation("r1", ("total", "user=a"), 300, 40, start, start + 60),
        Reservation("r2", ("total",), big, 0, start + 5, start + 15),
    ]
    assert store.counters(LEDGER, ["total"])["total"] == (0, 0, big + 300)
    store.record(LEDGER, make_event("e1", cost_units=1), ("total",), reservation="r1")
    assert [r.id for r in store.reservations(LEDGER)] == ["r2"]
    assert store.reservations("other") == []


def test_reservations_expire_by_the_store_clock(clocked_store: Store, clock: FakeClock) -> None:
    """A reservation stops holding budget once the injected clock passes its ttl (no sleeping)."""
    store = clocked_store
    limit = [Check("total", limit_units=100)]
    assert store.reserve(LEDGER, "r1", limit, 100, 0, ttl=30) is None
    clock.advance(29)
    assert store.reserve(LEDGER, "r2", limit, 1, 0, ttl=30) == limit[0]
    assert [r.id for r in store.reservations(LEDGER)] == ["r1"]
    clock.advance(2)
    assert store.reservations(LEDGER) == []
    assert store.counters(LEDGER, ["total"])["total"] == (0, 0, 0)
    assert store.reserve(LEDGER, "r2", limit, 100, 0, ttl=30) is None


def test_release_stale_drops_old_reservations(clocked_store: Store, clock: FakeClock) -> None:
    """release_stale(older_than) drops the reservations created longer ago and gives their hold back."""
    store = clocked_store
    assert store.reserve(LEDGER, "old", [Check("total")], 70, 7, ttl=3600) is None
    clock.advance(100)
    assert store.reserve(LEDGER, "new", [Check("total")], 5, 1, ttl=3600) is None
    assert store.release_stale(LEDGER, older_than=50) == 1
    assert [r.id for r in store.reservations(LEDGER)] == ["new"]
    assert store.counters(LEDGER, ["total"])["total"] == (0, 0, 5)
    assert store.release_stale(LEDGER, older_than=50) == 0
    assert store.release_stale("other", older_than=0) == 0


def test_checks_of_one_counter_hold_the_amount_once(store: Store) -> None:
    """Two budgets sharing a counter key hold a reservation on it once, and the tighter limit decides."""
    loose, tight = Check("total", limit_units=1000), Check("total", limit_units=500)
    assert store.reserve(LEDGER, "r1", [loose, tight, Check("user=a")], 400, 10, ttl=60) is None
    assert store.counters(LEDGER, ["total", "user=a"]) == {"total": (0, 0, 400), "user=a": (0, 0, 400)}
    assert store.reserve(LEDGER, "r2", [loose, tight], 100, 0, ttl=60) is None  # 500: fits both
    assert store.reserve(LEDGER, "r3", [loose, tight], 1, 0, ttl=60) == tight
    assert store.counters(LEDGER, ["total"])["total"] == (0, 0, 500)
    store.release(LEDGER, "r1")
    assert store.counters(LEDGER, ["total", "user=a"]) == {"total": (0, 0, 100), "user=a": (0, 0, 0)}
    tokens = [Check("total", limit_tokens=100), Check("total", limit_tokens=50)]
    assert store.reserve(LEDGER, "r4", tokens, 0, 50, ttl=60) is None
    assert store.reserve(LEDGER, "r5", tokens, 0, 1, ttl=60) == tokens[1]


def test_tags_alike_as_text_count_once(store: Store) -> None:
    """Tags 1 and "1" are one group "1" in every store (as the reference has it), not two counts of one group."""
    reference = ReferenceStore()
    for target in (store, reference):
        target.record(LEDGER, make_event("t1", metadata={"tags": [1, "1", "x"]}))
    groups = store.aggregate(LEDGER, "tag")
    assert [(g.key, g.requests) for g in groups] == [("1", 1), ("x", 1)]
    assert groups == reference.aggregate(LEDGER, "tag")

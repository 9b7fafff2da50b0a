"""Each speed trick of the recording path against its plain reference, on random inputs.

``Price.cost_units`` against the sum of ``Price.breakdown_units``; ``plausible_event`` (and its memo of the last
event it passed) against ``implausible``; ``track()``'s inline check of the common call against ``track_usage``.
"""

from __future__ import annotations

import os

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokencost import CostTracker
from tokencost.events import Event
from tokencost.pricing import Price
from tokencost.stores.base import MAX_EVENT_UNITS, MAX_TOKENS, implausible, plausible_event
from tokencost.stores.memory import MemoryStore
from tokencost.track_args import track_usage
from tokencost.usage import BUCKETS, Usage

_count = st.one_of(st.just(0), st.integers(0, 5_000), st.integers(0, 2 * MAX_TOKENS))
_usage = st.builds(
    Usage,
    **dict.fromkeys(BUCKETS, _count),
    web_search_requests=st.one_of(st.just(0), st.integers(0, 20)),
)
# Per-million prices: whole pico-dollars per token (the fast path) or not (0.0000001 $/M is 1e-13 $/token).
_per_mtok = st.one_of(
    st.integers(0, 100).map(Decimal),
    st.decimals(0, 100, places=7, allow_nan=False, allow_infinity=False),
)
_optional = st.one_of(st.none(), _per_mtok)


@st.composite
def _prices(draw: st.DrawFn) -> Price:
    million = Decimal(1_000_000)
    per_token = {bucket: draw(_optional) for bucket in BUCKETS}
    per_token["input"] = draw(_per_mtok)
    per_token["output"] = draw(_per_mtok)
    search = draw(st.one_of(st.none(), st.decimals(0, 1, places=4, allow_nan=False, allow_infinity=False)))
    return Price(
        **{bucket: None if value is None else value / million for bucket, value in per_token.items()},
        web_search=search,
    )


@settings(max_examples=400, deadline=None)
@given(_prices(), _usage)
def test_cost_units_is_the_sum_of_breakdown_units(price: Price, usage: Usage) -> None:
    """Every usage costs the same through the fast path as bucket by bucket (web searches included)."""
    assert price.cost_units(usage) == sum(price.breakdown_units(usage).values())


_value = st.one_of(
    st.integers(-5, 5),
    st.integers(0, MAX_TOKENS + 2),
    st.sampled_from([MAX_TOKENS, MAX_TOKENS + 1, -1, 10**13]),
    st.sampled_from([0.0, False, True, None, 1.5]),
)
_odd_usage = st.builds(
    Usage,
    **{bucket: st.one_of(st.just(0), _value) for bucket in BUCKETS},
    web_search_requests=st.one_of(st.just(0), _value),
)
_amount = st.one_of(st.none(), st.integers(-2, 10**6), st.sampled_from([MAX_EVENT_UNITS, MAX_EVENT_UNITS + 1]))


def _event(usage: Usage, cost: int | None, saved: int) -> Event:
    return Event("c-1", 1_764_000_000.0, "gpt-4o", "openai", usage, cost, saved_units=saved)


@settings(max_examples=500, deadline=None)
@given(_odd_usage, _amount, st.sampled_from([0, 5, -1, MAX_EVENT_UNITS + 1]))
def test_plausible_event_passes_exactly_what_implausible_accepts(usage: Usage, cost: int | None, saved: int) -> None:
    """The event itself when ``implausible`` finds nothing, else a copy with its reason; checked twice (as the
    recorder and then its store do), the same answer."""
    event = _event(usage, cost, saved)
    reason = implausible(event)
    for _ in range(2):
        checked = plausible_event(event)
        if reason is None:
            assert checked is event
        else:
            assert checked is not event and checked.reason == reason and checked.cost_units is None


def test_a_store_still_checks_an_event_other_than_the_one_passed_last() -> None:
    """The memo is of one event's identity: an implausible event given to a store directly, right after an
    ordinary one passed, is recorded unpriced."""
    store = MemoryStore()
    ordinary = _event(Usage(input=10, output=5), 7, 0)
    assert plausible_event(ordinary) is ordinary
    store.record("l", ordinary, ("total",))
    huge = _event(Usage(input=10, output=10**13), 7, 0)
    store.record("l", huge, ("total",))
    events = store.events("l")
    assert [e.cost_units for e in events] == [7, None]
    assert "implausible usage" in (events[1].reason or "")
    assert store.counters("l", ["total"])["total"] == (7, 15, 0)


@pytest.fixture(scope="module")
def tracker() -> Iterator[CostTracker]:
    t = CostTracker(print_summary=False, linkup_api_key=False)
    yield t
    t.close()


_arg = st.one_of(st.integers(0, 3_000), st.integers(-3, 3), st.sampled_from([0.0, False, None, 2.0, "1"]))


def _outcome(fn: Any) -> Any:
    try:
        return fn()
    except (TypeError, ValueError) as exc:
        return type(exc), str(exc)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.sampled_from(["gpt-4o", "", "gpt-4o-mini"]),
    st.tuples(*[st.one_of(st.integers(0, 3_000), st.just(0)) for _ in range(5)]),
    st.lists(st.tuples(st.integers(0, 9), _arg), max_size=3),
    st.sampled_from([None, "flex", "standard"]),
)
def test_track_checks_as_track_usage_does(
    tracker: CostTracker,
    model: str,
    counts: tuple[int, ...],
    changes: list[tuple[int, Any]],
    tier: str | None,
) -> None:
    """track() records the usage track_usage() builds, or raises its error (the inline check is a shortcut)."""
    args: list[Any] = [*counts, 0, 0, 0, 0, 0]
    for index, value in changes:
        args[index] = value
    prompt, completion, read, write, reasoning, audio_in, audio_out, write_1h, image, searches = args
    expected = _outcome(lambda: track_usage(model, *args, tier))

    def call() -> Usage:
        event = tracker.track(
            model, prompt, completion, None, read, write, reasoning, audio_input_tokens=audio_in,
            audio_output_tokens=audio_out, cache_write_1h_tokens=write_1h, image_input_tokens=image,
            web_search_requests=searches, service_tier=tier,
        )  # fmt: skip
        return event.usage

    assert _outcome(call) == expected

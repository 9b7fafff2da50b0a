"""Reports over a ledger: summaries, their rich rendering, streaming exports and what-if repricing."""

from __future__ import annotations

import os

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import csv
import datetime as dt
import io
import json
import uuid
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import litellm
import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from tokencost import Budget, CostTracker, PriceNotFoundError, StoreError
from tokencost.budgets import dump_budgets
from tokencost.events import Event
from tokencost.money import from_units
from tokencost.pricing import Price
from tokencost.pricing.litellm_map import LitellmMapSource
from tokencost.reports import (
    EXPORT_FIELDS,
    Summary,
    build_summary,
    export_events,
    export_record,
    iter_events,
    parse_when,
    report,
    whatif,
)
from tokencost.stores import Store, store_from_url
from tokencost.usage import Usage

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 11, 24, 12, 0, tzinfo=UTC).timestamp()
DAY = 86_400.0
LEDGER = "default"
MAP = LitellmMapSource()
TOTAL_COUNTER = Budget(limit_usd=1).counter_key("*", T0)


def render(renderable: Any, width: int = 100) -> str:
    """Render with rich at a fixed width and return the text."""
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(renderable)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(out, str)
    return out


def per_token(model: str, key: str, fallback: str | None = None) -> Decimal:
    """A per-token price straight from litellm's map (as tokencost reads it: through str)."""
    info = litellm.model_cost[model]
    value = info.get(key)
    if value is None and fallback is not None:
        value = info[fallback]
    return Decimal(str(value))


def make_event(
    model: str,
    *,
    ts: float = T0,
    input: int = 0,
    cache_read: int = 0,
    cache_write: int = 0,
    output: int = 0,
    reasoning: int = 0,
    metadata: Mapping[str, Any] | None = None,
    price: Price | None = None,
    provider: str = "openai",
) -> Event:
    """An event priced like the tracker prices it (litellm's map unless ``price`` is given)."""
    usage = Usage(input, cache_read, cache_write, output, reasoning)
    price = price or MAP.lookup(model, None)
    return Event(
        call_id=uuid.uuid4().hex,
        timestamp=ts,
        model=model,
        provider=provider,
        usage=usage,
        cost_units=None if price is None else price.cost_units(usage),
        price_source=None if price is None else price.source,
        price=price,
        saved_units=0 if price is None else price.saved_units(usage),
        metadata=dict(metadata or {}),
        reason="no price known" if price is None else None,
    )


def sample_events() -> list[Event]:
    """Three gpt-4o calls ($0.02 each), one claude-sonnet-4-5 ($0.0177), one unpriced call, over three days."""
    events = [
        make_event(
            "gpt-4o",
            ts=T0 + i,
            input=2_000,
            cache_read=8_000,
            output=500,
            metadata={"user": "alice", "tags": ["batch", "eval"]},
        )
        for i in range(3)
    ]
    events.append(
        make_event(
            "claude-sonnet-4-5",
            ts=T0 - DAY,
            input=100,
            cache_write=2_000,
            cache_read=8_000,
            output=500,
            metadata={"user": "bob", "tags": ["batch"]},
            provider="anthropic",
        )
    )
    events.append(make_event("acme-unknown", ts=T0 - 40 * DAY, input=100, output=5, provider="acme"))
    return events


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An empty store of each kind."""
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'costs.db'}"
    s = store_from_url(url)
    yield s
    s.close()


@pytest.fixture
def sample(store: Store) -> Store:
    """The store holding ``sample_events()``, charged to the "total" budget counter as the tracker charges them."""
    for event in sample_events():
        store.record(LEDGER, event, charges=[TOTAL_COUNTER])
    return store


# ---------------------------------------------------------------------------------------------------- summary


def test_summary_by_model_totals_rows_and_cache_analysis(sample: Store) -> None:
    """By model: exact totals, rows most expensive first, unpriced counted apart, cache share and savings per model."""
    summary = build_summary(sample, LEDGER, now=T0)
    assert summary.total_usd == Decimal("0.0777")
    assert summary.requests == 5
    assert summary.unpriced == 1
    assert [row.key for row in summary.rows] == ["gpt-4o", "claude-sonnet-4-5", "acme-unknown"]
    gpt = summary.rows[0]
    assert gpt.requests == 3
    assert gpt.cost_usd == Decimal("0.06")
    assert gpt.prompt_tokens == 30_000
    assert gpt.cache_read_tokens == 24_000
    assert gpt.cached_share == Decimal("0.8")
    # 24,000 cached tokens at (input - cache read) = $2.50 - $1.25 per million.
    assert gpt.saved_by_cache_usd == Decimal("0.03")
    claude = summary.rows[1]
    assert claude.cost_usd == Decimal("0.0177")
    assert claude.saved_by_cache_usd == 8_000 * (
        per_token("claude-sonnet-4-5", "input_cost_per_token") - Decimal("3e-7")
    )
    assert summary.rows[2].unpriced == 1
    assert summary.rows[2].cost_usd == 0
    assert gpt.share == Decimal("0.7722")  # 0.06 / 0.0777
    assert summary.saved_by_cache_usd == Decimal("0.03") + claude.saved_by_cache_usd
    assert summary.tokens == {
        "input": 6_200,
        "cache_read": 32_000,
        "cache_write": 2_000,
        "output": 2_005,
        "reasoning": 0,
    }


def test_summary_by_user_tag_and_day(sample: Store) -> None:
    """By user groups metadata values; by tag counts an event in each of its tags; by day is in date order."""
    by_user = build_summary(sample, LEDGER, by="user", now=T0)
    assert {row.key: row.cost_usd for row in by_user.rows} == {
        "alice": Decimal("0.06"),
        "bob": Decimal("0.0177"),
        "(none)": Decimal("0.00"),
    }
    by_tag = build_summary(sample, LEDGER, by="tag", now=T0)
    costs = {row.key: row.cost_usd for row in by_tag.rows}
    assert costs["batch"] == Decimal("0.0777")
    assert costs["eval"] == Decimal("0.06")
    assert by_tag.total_usd == Decimal("0.0777")  # the total is not the sum of overlapping tag rows
    by_day = build_summary(sample, LEDGER, by="day", now=T0)
    assert [row.key for row in by_day.rows] == ["2026-10-15", "2026-11-23", "2026-11-24"]


def test_window_day_and_month_use_the_current_utc_calendar_window(sample: Store) -> None:
    """window="day" keeps today's calls (UTC) and says so; "month" keeps this month's."""
    today = build_summary(sample, LEDGER, window="day", now=T0 + 3600)
    assert today.requests == 3
    assert today.total_usd == Decimal("0.06")
    assert today.window == "today (2026-11-24 UTC)"
    assert today.since == dt.datetime(2026, 11, 24, tzinfo=UTC)
    month = build_summary(sample, LEDGER, window="month", now=T0)
    assert month.requests == 4
    assert month.unpriced == 0
    assert month.total_usd == Decimal("0.0777")
    assert month.window == "this month (2026-11 UTC)"


def test_since_until_bounds_and_an_inclusive_until_date(sample: Store) -> None:
    """since is inclusive; a date-only until includes that whole day; datetimes are exclusive bounds."""
    one_day = build_summary(sample, LEDGER, since="2026-11-23", until="2026-11-23")
    assert [row.key for row in one_day.rows] == ["claude-sonnet-4-5"]
    assert one_day.total_usd == Decimal("0.0177")
    assert one_day.window == "from 2026-11-23 until 2026-11-23 UTC"  # as asked, not the exclusive bound
    exclusive = build_summary(sample, LEDGER, since="2026-11-24T12:00:00Z", until=T0 + 2)
    assert exclusive.requests == 2
    assert exclusive.total_usd == Decimal("0.04")


def test_parse_when_reads_dates_datetimes_and_refuses_junk() -> None:
    """Dates, naive (UTC) and offset datetimes and epoch numbers parse; anything else is a clear ValueError."""
    assert parse_when("2026-11-24") == dt.datetime(2026, 11, 24, tzinfo=UTC).timestamp()
    assert parse_when("2026-11-24", end=True) == dt.datetime(2026, 11, 25, tzinfo=UTC).timestamp()
    assert parse_when("2026-11-24T12:00") == T0
    assert parse_when("2026-11-24T14:00+02:00") == T0
    assert parse_when(dt.date(2026, 11, 24)) == parse_when("2026-11-24")
    assert parse_when(T0) == T0
    assert parse_when(None) is None
    for junk in ("lastweek", "2026-13-01", "24/11/2026", "", True, float("nan")):
        with pytest.raises(ValueError, match="since"):
            parse_when(junk, "since")


def test_summary_refuses_bad_arguments(sample: Store) -> None:
    """A window with since, an unknown window, and an empty range are refused before the store is read."""
    with pytest.raises(ValueError, match="not both"):
        build_summary(sample, LEDGER, window="day", since="2026-11-01")
    with pytest.raises(ValueError, match="window"):
        build_summary(sample, LEDGER, window="week")
    with pytest.raises(ValueError, match="later than since"):
        build_summary(sample, LEDGER, since="2026-11-02T00:00", until="2026-11-01T00:00")


def test_budgets_come_from_the_store_meta_or_the_caller(sample: Store) -> None:
    """Without budgets= the summary shows the budgets the tracker saved in the store, with spent and remaining."""
    assert build_summary(sample, LEDGER, now=T0).budgets == ()
    sample.set_meta(LEDGER, "budgets", dump_budgets([Budget(limit_usd="0.10")]))
    summary = build_summary(sample, LEDGER, now=T0)
    (line,) = summary.budgets
    assert line.label == "total"
    assert line.spent_usd == Decimal("0.0777")
    assert line.remaining_usd == Decimal("0.0223")
    assert not summary.budget_exceeded
    explicit = build_summary(sample, LEDGER, budgets=[Budget(limit_usd="0.05")], now=T0)
    assert explicit.budgets[0].exceeded
    assert explicit.budgets[0].remaining_usd == 0
    assert explicit.budget_exceeded


# ---------------------------------------------------------------------------------------------------- rendering


def test_render_shows_table_unpriced_line_cache_savings_and_budgets(sample: Store) -> None:
    """The rendered summary names every model, the totals, a visible unpriced line, cache savings and budgets."""
    summary = build_summary(sample, LEDGER, budgets=[Budget(limit_usd="0.05")], now=T0)
    text = render(summary)
    assert "tokencost · default · by model · all time" in text
    for fragment in ("gpt-4o", "claude-sonnet-4-5", "acme-unknown", "$0.06", "$0.0177", "$0.0777", "77.2%"):
        assert fragment in text
    assert "⚠ 1 call unpriced (acme-unknown: 1)" in text
    assert "not counted in the total" in text
    assert "Prompt cache: 32,000 of 40,200 input tokens read from cache (79.6%)" in text
    assert "cache %" in text and "80.0%" in text
    assert "█" in text  # the bars
    assert "Budgets (current window)" in text
    assert "EXCEEDED" in text  # $0.0777 of $0.05
    assert all(len(line) <= 100 for line in text.splitlines())


def test_render_narrow_console_keeps_model_names_whole(sample: Store) -> None:
    """At 80 columns the bar and cached columns give way, so the names and money still fit unbroken."""
    text = render(build_summary(sample, LEDGER, now=T0), width=80)
    assert "claude-sonnet-4-5" in text
    assert "$0.0777" in text
    assert all(len(line) <= 80 for line in text.splitlines())


def test_render_empty_ledger_and_many_rows(store: Store) -> None:
    """An empty ledger says so; more rows than fit are cut with a count of the rest (to_dict keeps them all)."""
    assert "No calls recorded." in render(build_summary(store, LEDGER, now=T0))
    for i in range(30):
        store.record(LEDGER, make_event("gpt-4o", input=10 + i, output=1, metadata={"user": f"user{i:02d}"}))
    summary = build_summary(store, LEDGER, by="user", now=T0)
    assert "… and 5 more user values" in render(summary)
    assert len(summary.to_dict()["groups"]) == 30


def test_to_dict_is_json_with_exact_money(sample: Store) -> None:
    """to_dict() is plain JSON: money and shares as decimal strings that parse back to the exact amounts."""
    summary = build_summary(sample, LEDGER, budgets=[Budget(limit_usd=1, per="user")], now=T0)
    data = json.loads(json.dumps(summary.to_dict()))
    assert data["cost"] == "0.0777"
    assert data["unpriced"] == 1
    assert sum(Decimal(row["cost"]) for row in data["groups"]) == Decimal(data["cost"])
    assert data["groups"][0]["cached_share"] == "0.8000"
    assert {b["scope"] for b in data["budgets"]} <= {"user=alice", "user=bob"}
    assert data["since"] is None


def test_tracker_summary_is_this_summary() -> None:
    """CostTracker.summary() returns the Summary data, with the exact cost of the calls tracked."""
    tracker = CostTracker(print_summary=False, budget="0.05", clock=lambda: T0)
    try:
        tracker.track(model="gpt-4o", prompt_tokens=10_000, completion_tokens=500, cache_read_tokens=8_000)
        summary = tracker.summary()
        assert isinstance(summary, Summary)
        assert summary.total_usd == Decimal("0.02")
        assert summary.budgets[0].remaining_usd == Decimal("0.03")
        assert "$0.02" in render(summary)
    finally:
        tracker.close()


def test_report_opens_and_closes_a_sqlite_ledger_and_never_creates_one(tmp_path: Path) -> None:
    """report(url) reads an existing SQLite ledger; a missing file is a StoreError and is not created."""
    path = tmp_path / "costs.db"
    s = store_from_url(f"sqlite:///{path}")
    for event in sample_events():
        s.record("team", event)
    s.close()
    summary = report(f"sqlite:///{path}", name="team", by="provider")
    assert summary.total_usd == Decimal("0.0777")
    assert {row.key for row in summary.rows} == {"openai", "anthropic", "acme"}
    missing = tmp_path / "missing.db"
    with pytest.raises(StoreError, match="does not exist"):
        report(f"sqlite:///{missing}")
    assert not missing.exists()
    with pytest.raises(ValueError, match="memory://"):
        report("memory://")


# ---------------------------------------------------------------------------------------------------- export

ODD_PRICE = Price.per_mtok("0.123456789", "1.987654321", cache_read="0.0123456789", source="override")


def odd_events(n: int, start: float = T0) -> list[Event]:
    """Events whose costs have many decimals (pico-dollar digits), spread over days."""
    return [
        make_event(
            "acme-odd",
            ts=start + i * 3_607.7,
            input=1_000 + 37 * i,
            cache_read=13 * i,
            output=7 * i + 1,
            metadata={"user": f"u{i % 3}", "tags": ["x"]},
            price=ODD_PRICE,
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
def test_export_sums_to_the_report_total_to_the_last_digit(store: Store, tmp_path: Path, fmt: str) -> None:
    """Every event is exported with all fields; the exported costs add up exactly to the report's total."""
    events = [*odd_events(40), *sample_events()]
    for event in events:
        store.record(LEDGER, event)
    path = tmp_path / f"out.{fmt}"
    assert export_events(store, LEDGER, path, fmt) == len(events)
    text = path.read_text(encoding="utf-8")
    if fmt == "csv":
        records: list[dict[str, Any]] = list(csv.DictReader(io.StringIO(text)))
        assert tuple(records[0]) == EXPORT_FIELDS
    elif fmt == "json":
        records = json.loads(text)
    else:
        records = [json.loads(line) for line in text.splitlines()]
    assert len(records) == len(events)
    assert {r["call_id"] for r in records} == {e.call_id for e in events}
    total = build_summary(store, LEDGER).total_usd
    assert len(str(total).split(".")[1]) > 6  # the sum really has sub-cent digits to lose
    assert sum(Decimal(r["cost"]) for r in records if r["cost"] not in ("", None)) == total
    unpriced = [r for r in records if r["model"] == "acme-unknown"]
    assert unpriced[0]["cost"] in ("", None)
    assert unpriced[0]["priced"] in ("false", False)
    gpt = next(r for r in records if r["model"] == "gpt-4o")
    assert gpt["cost"] == "0.02"
    assert int(gpt["cache_read_tokens"]) == 8_000
    assert int(gpt["prompt_tokens"]) == 10_000
    assert gpt["timestamp"] == "2026-11-24T12:00:00+00:00"
    breakdown = json.loads(gpt["cost_breakdown"]) if fmt == "csv" else gpt["cost_breakdown"]
    assert breakdown == {"input": "0.005", "cache_read": "0.01", "output": "0.005"}
    metadata = json.loads(gpt["metadata"]) if fmt == "csv" else gpt["metadata"]
    assert metadata == {"user": "alice", "tags": ["batch", "eval"]}


@given(st.integers(min_value=0, max_value=10**21))
def test_export_money_text_is_exact(units: int) -> None:
    """Exported money is the exact plain decimal text of the pico-dollar amount (never 1E-12), cents at least."""
    record = export_record(
        Event(call_id="c", timestamp=T0, model="m", provider="p", usage=Usage(), cost_units=units, saved_units=units)
    )
    assert record["cost"] == f"{from_units(units):f}"
    assert record["saved_by_cache"] == record["cost"]
    assert Decimal(record["cost"]).scaleb(12) == units


def test_export_breakdown_matches_the_event_breakdown() -> None:
    """The exported per-bucket costs are the event's own breakdown, whatever the price or status."""
    events = [*sample_events(), *odd_events(5)]
    gpt = events[0]
    events.append(Event(**{**{f: getattr(gpt, f) for f in gpt.__slots__}, "status": "cache_hit"}))
    events.append(Event(**{**{f: getattr(gpt, f) for f in gpt.__slots__}, "breakdown": {"input": 7, "output": 3}}))
    for event in events:
        expected = {bucket: f"{from_units(units):f}" for bucket, units in event.breakdown_units.items()}
        assert export_record(event)["cost_breakdown"] == expected
    assert export_record(events[-1])["cost_breakdown"] == {"input": "0.000000000007", "output": "0.000000000003"}
    assert export_record(events[-2])["cost_breakdown"] == {}


def test_export_to_an_open_file_with_bounds(sample: Store) -> None:
    """An open text file is written in place; since/until keep only the calls in range."""
    out = io.StringIO()
    assert export_events(sample, LEDGER, out, "jsonl", since="2026-11-24") == 3
    assert all(json.loads(line)["model"] == "gpt-4o" for line in out.getvalue().splitlines())
    empty = io.StringIO()
    assert export_events(sample, LEDGER, empty, "json", since="2030-01-01") == 0
    assert json.loads(empty.getvalue()) == []
    with pytest.raises(ValueError, match="format"):
        export_events(sample, LEDGER, io.StringIO(), "xml")


def test_iter_events_pages_through_windows_without_losing_or_repeating(store: Store) -> None:
    """Paging by time windows yields each event once, pages stay small, and a same-instant burst is kept whole."""
    events = odd_events(90)
    burst = [make_event("gpt-4o", ts=T0 + 5 * DAY, input=1, output=1) for _ in range(25)]
    for event in [*events, *burst]:
        store.record(LEDGER, event)
    progress: list[tuple[int, int]] = []
    seen = [e.call_id for e in iter_events(store, LEDGER, page=10, progress=lambda d, t: progress.append((d, t)))]
    assert sorted(seen) == sorted(e.call_id for e in [*events, *burst])
    steps = [b[0] - a[0] for a, b in zip([(0, 0), *progress], progress, strict=False)]
    assert len(progress) >= 12
    assert max(steps) <= 25  # only the burst (one timestamp) exceeds the page
    assert sorted(steps)[-2] <= 10
    assert progress[-1] == (115, 115)
    bounded = list(iter_events(store, LEDGER, T0 + DAY, T0 + 2 * DAY, page=7))
    assert {e.call_id for e in bounded} == {e.call_id for e in events if T0 + DAY <= e.timestamp < T0 + 2 * DAY}


def test_export_to_a_path_is_atomic(sample: Store, tmp_path: Path) -> None:
    """A failing export leaves an existing target untouched and no temporary file behind."""
    out_dir = tmp_path / "exports"
    out_dir.mkdir()
    path = out_dir / "costs.csv"
    path.write_text("previous export\n")

    def boom(done: int, total: int) -> None:
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        export_events(sample, LEDGER, path, "csv", progress=boom)
    assert path.read_text() == "previous export\n"
    assert [p.name for p in out_dir.iterdir()] == ["costs.csv"]


# ---------------------------------------------------------------------------------------------------- whatif


def hand_cost(model: str, *, input: int, cache_read: int, output: int, cache_write: int = 0) -> Decimal:
    """What litellm's map says ``model`` charges for these tokens, computed here from the raw map values."""
    return (
        input * per_token(model, "input_cost_per_token")
        + cache_read * per_token(model, "cache_read_input_token_cost", "input_cost_per_token")
        + cache_write * per_token(model, "cache_creation_input_token_cost", "input_cost_per_token")
        + output * per_token(model, "output_cost_per_token")
    )


def test_whatif_reprices_each_model_at_the_target_price(sample: Store) -> None:
    """Each recorded model's token buckets are repriced at the target's per-bucket prices from litellm's map."""
    result = whatif(sample, LEDGER, "gpt-4o-mini")
    rows = {row.model: row for row in result.rows}
    gpt = rows["gpt-4o"]
    assert gpt.recorded_usd == Decimal("0.06")
    assert gpt.repriced_usd == hand_cost("gpt-4o-mini", input=6_000, cache_read=24_000, output=1_500)
    assert gpt.difference_usd == gpt.repriced_usd - Decimal("0.06")
    claude = rows["claude-sonnet-4-5"]
    assert claude.repriced_usd == hand_cost("gpt-4o-mini", input=100, cache_read=8_000, cache_write=2_000, output=500)
    assert rows["acme-unknown"].unpriced == 1
    assert result.repriced_usd == sum((r.repriced_usd for r in result.rows), Decimal(0))
    assert result.recorded_usd == Decimal("0.0777")
    assert result.difference_usd < 0
    text = render(result)
    assert "What if every call used gpt-4o-mini" in text
    assert "⚠ 1 recorded calls were unpriced" in text
    data = json.loads(json.dumps(result.to_dict()))
    assert Decimal(data["repriced_cost"]) == result.repriced_usd


def test_whatif_from_one_model_and_the_cheapest_alternatives(sample: Store) -> None:
    """--from limits to one recorded model; top=N ranks chat models by the hand-computable cost of the same mix."""
    result = whatif(sample, LEDGER, "claude-sonnet-4-5", from_model="gpt-4o", top=5)
    (row,) = result.rows
    assert row.model == "gpt-4o"
    assert row.repriced_usd == hand_cost("claude-sonnet-4-5", input=6_000, cache_read=24_000, output=1_500)
    alts = result.alternatives
    assert len(alts) == 5
    assert [a.cost_usd for a in alts] == sorted(a.cost_usd for a in alts)
    for alt in alts:
        info = litellm.model_cost[alt.model]
        assert info["mode"] == "chat"
        assert alt.cost_usd == hand_cost(alt.model, input=6_000, cache_read=24_000, output=1_500)
    assert alts[-1].cost_usd <= hand_cost("gpt-4o-mini", input=6_000, cache_read=24_000, output=1_500)
    assert "Cheapest 5 chat models" in render(result)
    only_top = whatif(sample, LEDGER, None, top=2)
    assert only_top.rows and len(only_top.alternatives) == 2


def test_whatif_refuses_unknown_models(sample: Store) -> None:
    """An unpriced target is PriceNotFoundError; a --from model with no calls, or no model and no top, ValueError."""
    with pytest.raises(PriceNotFoundError):
        whatif(sample, LEDGER, "no-such-model-xyz")
    with pytest.raises(ValueError, match="no calls to 'gpt-5-nano'"):
        whatif(sample, LEDGER, "gpt-4o-mini", from_model="gpt-5-nano")
    with pytest.raises(ValueError, match="top"):
        whatif(sample, LEDGER, None)
    empty = whatif(sample, "other-ledger", "gpt-4o-mini")
    assert empty.rows == ()
    assert "no recorded usage" in render(empty)

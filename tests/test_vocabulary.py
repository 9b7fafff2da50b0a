"""One money formatter and one JSON vocabulary: the CLI, exports and the server say the same thing the same way."""

from __future__ import annotations

import os

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from rich.console import Console

from tokencost import Budget, CostTracker
from tokencost.cli import main
from tokencost.money import format_usd, usd_text
from tokencost.reports import build_summary, export_record
from tokencost.server import create_app


@pytest.mark.parametrize(
    ("amount", "shown", "text"),
    [
        ("0.0139875", "$0.0139875", "0.0139875"),
        ("1234.5", "$1,234.50", "1234.50"),
        ("0", "$0.00", "0.00"),
        ("-0.01", "-$0.01", "-0.01"),
        ("0.000000000001", "$0.000000000001", "0.000000000001"),
        ("16", "$16.00", "16.00"),
    ],
)
def test_the_money_formatter_keeps_every_digit(amount: str, shown: str, text: str) -> None:
    assert format_usd(Decimal(amount)) == shown
    assert usd_text(Decimal(amount)) == text


def test_signed_amounts() -> None:
    assert format_usd(Decimal("0.25"), signed=True) == "+$0.25"
    assert format_usd(Decimal("-0.25"), signed=True) == "-$0.25"
    assert format_usd(Decimal(0), signed=True) == "$0.00"


@pytest.fixture
def ledger(tmp_path: Path) -> str:
    """A ledger of two calls with sub-cent costs, by two users with a budget each."""
    url = f"sqlite:///{tmp_path / 'costs.db'}"
    tracker = CostTracker(store=url, budgets=[Budget(limit_usd="1", per="user")], print_summary=False)
    tracker.track(
        model="gpt-4o", prompt_tokens=5_555, completion_tokens=7, cache_read_tokens=1_111, metadata={"user": "a"}
    )
    tracker.track(
        model="gpt-4o-mini", prompt_tokens=333, completion_tokens=21, reasoning_tokens=0, metadata={"user": "b"}
    )
    tracker.close()
    return url


def test_report_json_and_the_server_summary_are_one_shape(ledger: str) -> None:
    """`report --json` and GET /summary give the same keys and the same values (one schema, docs/json.md)."""
    cli = json.loads(CliRunner().invoke(main, ["report", "--store", ledger, "--by", "user", "--json"]).stdout)
    with TestClient(create_app(ledger)) as client:
        api = client.get("/summary", params={"by": "user"}).json()
        budgets = client.get("/budgets").json()["budgets"]
    assert cli == api
    assert api["budgets"] == budgets
    assert set(api["groups"][0]) >= {"cost", "saved_by_cache", "input_tokens", "prompt_tokens"}
    # input_tokens means uncached input here as in exports: prompt tokens less cache reads and writes.
    assert api["prompt_tokens"] == 5_555 + 333
    assert api["input_tokens"] == 5_555 - 1_111 + 333


def test_export_records_and_api_events_are_one_shape(ledger: str, tmp_path: Path) -> None:
    """An exported record and the same call from GET /recent are equal, field by field."""
    out = tmp_path / "calls.jsonl"
    assert CliRunner().invoke(main, ["export", "--store", ledger, "-o", str(out)]).exit_code == 0
    exported = {r["call_id"]: r for r in map(json.loads, out.read_text().splitlines())}
    with TestClient(create_app(ledger)) as client:
        recent = client.get("/recent").json()["events"]
    assert {e["call_id"]: e for e in recent} == exported
    first = next(iter(exported.values()))
    assert first["input_tokens"] == first["prompt_tokens"] - first["cache_read_tokens"] - first["cache_write_tokens"]


def test_the_report_shows_amounts_to_their_last_digit(ledger: str) -> None:
    """The terminal table shows the exact cost (it used to round to three digits)."""
    store_summary = CliRunner().invoke(main, ["report", "--store", ledger, "--json"])
    data = json.loads(store_summary.stdout)
    out = io.StringIO()
    tracker = CostTracker(store=ledger, print_summary=False)
    try:
        Console(file=out, width=120).print(build_summary(tracker.store, "default"))
    finally:
        tracker.close()
    for group in data["groups"]:
        assert format_usd(Decimal(group["cost"])) in out.getvalue()
    assert format_usd(Decimal(data["cost"])) in out.getvalue()


def test_an_events_token_fields_add_up_as_docs_json_says() -> None:
    """An event's cache_write_tokens counts its 1-hour writes and cache_read_tokens its cached audio, in the
    export record, the API event and ``history`` alike, as in summaries: input_tokens = prompt_tokens -
    cache_read_tokens - cache_write_tokens (docs/json.md)."""
    tracker = CostTracker(print_summary=False, linkup_api_key=False)
    try:
        event = tracker.track(
            "claude-sonnet-4-5",
            10_000,
            500,
            provider="anthropic",
            cache_read_tokens=4_000,
            cache_write_tokens=3_000,
            cache_write_1h_tokens=2_000,
        )
        record = export_record(event)
        assert record["cache_write_tokens"] == 3_000
        assert record["input_tokens"] == record["prompt_tokens"] - record["cache_read_tokens"] - 3_000 == 3_000
        history = tracker.history[-1]
        assert (history["cache_read_tokens"], history["cache_write_tokens"]) == (4_000, 3_000)
        totals = build_summary(tracker.store, tracker.name).to_dict()
        assert (totals["cache_read_tokens"], totals["cache_write_tokens"]) == (4_000, 3_000)
    finally:
        tracker.close()

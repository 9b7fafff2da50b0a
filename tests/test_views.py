"""The views people reach for: daily, monthly, spend over time in the terminal, --by KEY,KEY and --top N."""

from __future__ import annotations

import os

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tokencost import CostTracker
from tokencost.cli import main

UTC = dt.timezone.utc
# (day, model, user): Nov 29 and 30, then a gap on Dec 1, then Dec 2 twice.
CALLS = [
    (dt.datetime(2026, 11, 29, 10, tzinfo=UTC), "gpt-4o", "alice"),
    (dt.datetime(2026, 11, 30, 10, tzinfo=UTC), "gpt-4o-mini", "bob"),
    (dt.datetime(2026, 12, 2, 10, tzinfo=UTC), "gpt-4o", "bob"),
    (dt.datetime(2026, 12, 2, 11, tzinfo=UTC), "gpt-4o", "alice"),
]


@pytest.fixture
def ledger(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'costs.db'}"
    when = [0.0]
    tracker = CostTracker(store=url, clock=lambda: when[0], print_summary=False)
    for moment, model, user in CALLS:
        when[0] = moment.timestamp()
        tracker.track(model=model, prompt_tokens=10_000, completion_tokens=500, metadata={"user": user})
    tracker.close()
    return url


def run(*args: str) -> Result:
    return CliRunner(env={"COLUMNS": "100"}).invoke(main, list(args))


def cost_of(model: str) -> Decimal:
    """10,000 prompt and 500 completion tokens at litellm's price of ``model``, computed by hand."""
    import litellm

    info = litellm.model_cost[model]
    return Decimal(str(info["input_cost_per_token"])) * 10_000 + Decimal(str(info["output_cost_per_token"])) * 500


def test_daily_is_per_day_oldest_first(ledger: str) -> None:
    data = json.loads(run("daily", "--store", ledger, "--json").stdout)
    days = {g["key"]: Decimal(g["cost"]) for g in data["groups"]}
    assert list(days) == ["2026-11-29", "2026-11-30", "2026-12-02"]
    assert days["2026-12-02"] == 2 * cost_of("gpt-4o")
    assert days["2026-11-30"] == cost_of("gpt-4o-mini")
    assert Decimal(data["cost"]) == sum(days.values())


def test_monthly_rolls_the_days_up(ledger: str) -> None:
    data = json.loads(run("monthly", "--store", ledger, "--json").stdout)
    months = {g["key"]: (g["requests"], Decimal(g["cost"])) for g in data["groups"]}
    assert months == {
        "2026-11": (2, cost_of("gpt-4o") + cost_of("gpt-4o-mini")),
        "2026-12": (2, 2 * cost_of("gpt-4o")),
    }
    assert json.loads(run("report", "--store", ledger, "--by", "month", "--json").stdout)["groups"] == data["groups"]


def test_daily_draws_spend_over_time_with_the_empty_day(ledger: str) -> None:
    """The chart line has one mark per day from the first to the last, a dot for the day without calls."""
    out = run("daily", "--store", ledger).stdout
    line = next(line for line in out.splitlines() if line.startswith("spend per day"))
    marks = line.removeprefix("spend per day ").split("  ")[0]
    assert len(marks) == 4  # Nov 29, Nov 30, Dec 1, Dec 2
    assert marks[2] == "·"
    assert marks[3] == "█"  # the most expensive day is the full block
    assert "2026-11-29 → 2026-12-02" in line


def test_by_two_keys_groups_each_pair(ledger: str) -> None:
    data = json.loads(run("report", "--store", ledger, "--by", "user,model", "--json").stdout)
    pairs = {g["key"]: g["requests"] for g in data["groups"]}
    assert pairs == {"alice · gpt-4o": 2, "bob · gpt-4o": 1, "bob · gpt-4o-mini": 1}
    assert sum(Decimal(g["cost"]) for g in data["groups"]) == Decimal(data["cost"])
    bad = run("report", "--store", ledger, "--by", "user,nosuch")
    assert bad.exit_code == 2
    assert "'nosuch'" in bad.stderr


def test_top_keeps_the_most_expensive_rows_and_the_whole_total(ledger: str) -> None:
    full = json.loads(run("report", "--store", ledger, "--by", "user", "--json").stdout)
    top = json.loads(run("report", "--store", ledger, "--by", "user", "--top", "1", "--json").stdout)
    assert [g["key"] for g in top["groups"]] == [full["groups"][0]["key"]]
    assert top["cost"] == full["cost"]
    latest = json.loads(run("daily", "--store", ledger, "--top", "2", "--json").stdout)
    assert [g["key"] for g in latest["groups"]] == ["2026-11-30", "2026-12-02"]  # the latest two days

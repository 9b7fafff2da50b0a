"""Narrow terminals: at 40, 60, 80 and 120 columns money and counts are never cut; columns drop or wrap instead."""

from __future__ import annotations

import os

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import io
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from tokencost import Budget, CostTracker
from tokencost.cli import main
from tokencost.money import format_usd
from tokencost.reports import Summary, WhatIf, build_summary, whatif

WIDTHS = (40, 60, 80, 120)


@pytest.fixture
def tracker(tmp_path: Path) -> Iterator[CostTracker]:
    """Fifteen calls of five models (one unpriced) by four users, each over a $0.05 budget or near it."""
    tracker = CostTracker(
        store=f"sqlite:///{tmp_path / 'costs.db'}",
        budgets=[Budget(limit_usd="0.05", per="user")],
        print_summary=False,
    )
    models = [("gpt-4o", "alice"), ("claude-sonnet-4-5", "bob"), ("gpt-4o-mini", "carol"), ("acme-large-2", "dave")]
    for i, (model, user) in enumerate(models * 3):
        tracker.track(
            model=model,
            prompt_tokens=12_345 + i * 1_000,
            completion_tokens=678 + i,
            cache_read_tokens=3_000,
            metadata={"user": user},
        )
    yield tracker
    tracker.close()


def rendered(thing: Summary | WhatIf, width: int) -> str:
    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(thing)
    return out.getvalue()


def assert_whole(text: str, width: int, amounts: list[str]) -> None:
    lines = text.splitlines()
    assert all(len(line) <= width for line in lines), "\n".join(lines)
    assert "…" not in text, text
    for amount in amounts:
        assert amount in text, f"{amount} not shown whole at {width} columns:\n{text}"


@pytest.mark.parametrize("width", WIDTHS)
def test_the_report_keeps_money_and_counts_whole(tracker: CostTracker, width: int) -> None:
    """The summary (report and exit summary alike) shows every cost, total and budget amount to its last digit."""
    summary = build_summary(tracker.store, "default")
    amounts = [format_usd(row.cost_usd) for row in summary.rows] + [format_usd(summary.total_usd)]
    amounts += [f"{row.requests:,}" for row in summary.rows]
    for line in summary.budgets:
        assert line.limit_usd is not None
        amounts += [format_usd(line.spent_usd)]
    text = rendered(summary, width)
    assert_whole(text, width, amounts)
    assert "acme-large-2" in text.replace("\n", "").replace(" ", "")  # a long name wraps; it is not cut


@pytest.mark.parametrize("width", WIDTHS)
def test_whatif_keeps_money_whole(tracker: CostTracker, width: int) -> None:
    result = whatif(tracker.store, "default", "gpt-4o-mini")
    amounts = [format_usd(row.repriced_usd) for row in result.rows] + [format_usd(result.repriced_usd)]
    assert_whole(rendered(result, width), width, amounts)


@pytest.mark.parametrize("width", WIDTHS)
def test_cli_report_at_each_width(tracker: CostTracker, width: int) -> None:
    """Through the command, COLUMNS sets the width of piped output."""
    url = tracker.store.url
    tracker.flush()
    result = CliRunner(env={"COLUMNS": str(width)}).invoke(main, ["report", "--store", url, "--by", "user"])
    assert result.exit_code == 0, result.stderr
    summary = build_summary(tracker.store, "default", by="user")
    assert_whole(result.stdout, width, [format_usd(row.cost_usd) for row in summary.rows])


def test_wide_consoles_keep_every_column(tracker: CostTracker) -> None:
    """At 120 columns nothing is dropped: the cached tokens, share, bar, cache % and savings are all there."""
    text = rendered(build_summary(tracker.store, "default"), 120)
    header = next(line for line in text.splitlines() if "model" in line and "calls" in line)
    for column in ("input", "cached", "output", "cost", "share", "cache %", "saved"):
        assert column in header
    assert Decimal(0) < build_summary(tracker.store, "default").total_usd

"""The one time parser: what each form means, and that the tracker, reports, CLI and server agree on it."""

from __future__ import annotations

import os

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tokencost import CostTracker
from tokencost.cli import main
from tokencost.reports import build_summary
from tokencost.when import describe_when, parse_when

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 12, 7, 15, 30, tzinfo=UTC).timestamp()


def at(*parts: int) -> float:
    return dt.datetime(*parts, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("text", "end", "expected"),
    [
        ("7d", False, NOW - 7 * 86_400),
        ("12h", False, NOW - 12 * 3_600),
        ("30m", True, NOW - 1_800),  # a span is a moment: the same as since or until
        ("2w", False, NOW - 14 * 86_400),
        ("now", True, NOW),
        ("today", False, at(2026, 12, 7)),
        ("today", True, at(2026, 12, 8)),
        ("yesterday", False, at(2026, 12, 6)),
        ("yesterday", True, at(2026, 12, 7)),  # until yesterday: up to the end of it
        ("2026-12-01T10:00", False, at(2026, 12, 1, 10)),
        ("2026-12-01T10:00", True, at(2026, 12, 1, 10)),  # a time is exact, also as until
        ("2026-12-01 10:00:00Z", False, at(2026, 12, 1, 10)),
        ("2026-12-01T12:00+02:00", False, at(2026, 12, 1, 10)),
        ("2026-12-03", False, at(2026, 12, 3)),
        ("2026-12-03", True, at(2026, 12, 4)),  # a date-only until includes that whole day
        ("1764547200", False, 1_764_547_200.0),  # epoch seconds as text
        (" YESTERDAY ", False, at(2026, 12, 6)),
    ],
)
def test_each_form(text: str, end: bool, expected: float) -> None:
    """Spans back from now, named days, ISO dates and times, epoch seconds: each to its UTC moment."""
    assert parse_when(text, "since", end=end, now=NOW) == expected


def test_values_that_are_not_text() -> None:
    """Numbers are epoch seconds; a date is a day (its end as until); a naive datetime is UTC."""
    assert parse_when(None) is None
    assert parse_when(1_764_547_200) == 1_764_547_200.0
    assert parse_when(dt.date(2026, 12, 3), end=True) == at(2026, 12, 4)
    assert parse_when(dt.datetime(2026, 12, 3, 9)) == at(2026, 12, 3, 9)


@pytest.mark.parametrize("junk", ["lastweek", "2026-13-01", "24/11/2026", "", "7x", "-5", "99999-01-01", True, [1]])
def test_junk_is_a_value_error_naming_the_argument(junk: object) -> None:
    with pytest.raises(ValueError, match="--since"):
        parse_when(junk, "--since", now=NOW)
    with pytest.raises(ValueError, match="--since"):
        parse_when(float("nan"), "--since")


def test_describe_shows_what_was_asked() -> None:
    assert describe_when("2026-12-03") == "2026-12-03"
    assert describe_when("7d") == "7d ago"
    assert describe_when(at(2026, 12, 3)) == "2026-12-03"
    assert describe_when(at(2026, 12, 3, 9, 5)) == "2026-12-03 09:05:00"


def test_tracker_report_cli_and_server_agree(tmp_path: Path) -> None:
    """One call on 2026-11-30 at 18:00: until="2026-11-30" includes it in the tracker, the report, the CLI and
    the server (the tracker used to give 0 and the report 1), and since="yesterday" means one thing in each."""
    from fastapi.testclient import TestClient

    from tokencost.server import create_app

    url = f"sqlite:///{tmp_path / 'costs.db'}"
    clock = [at(2026, 11, 30, 18)]
    tracker = CostTracker(store=url, clock=lambda: clock[0], print_summary=False)
    tracker.track(model="gpt-4o", prompt_tokens=100, completion_tokens=10)
    clock[0] = at(2026, 12, 1, 9)
    tracker.track(model="gpt-4o", prompt_tokens=100, completion_tokens=10)
    tracker.flush()
    tracker.close()

    tracker = CostTracker(store=url, print_summary=False)
    try:
        for until, count in (("2026-11-30", 1), ("2026-11-29", 0), ("2026-11-30T18:00", 0), ("2026-12-01", 2)):
            assert len(tracker.events(until=until)) == count, until
            assert build_summary(tracker.store, "default", until=until).requests == count, until
            out = CliRunner().invoke(main, ["report", "--store", url, "--until", until, "--json"])
            assert json.loads(out.stdout)["requests"] == count, (until, out.stderr)
            with TestClient(create_app(url)) as client:
                assert client.get("/summary", params={"until": until}).json()["requests"] == count, until
    finally:
        tracker.close()


def test_report_header_shows_what_was_asked(tmp_path: Path) -> None:
    """--until 2026-12-03 reads "until 2026-12-03" in the header (it used to say "until 2026-12-04")."""
    url = f"sqlite:///{tmp_path / 'costs.db'}"
    tracker = CostTracker(store=url, clock=lambda: at(2026, 12, 2, 10), print_summary=False)
    tracker.track(model="gpt-4o", prompt_tokens=100, completion_tokens=10)
    tracker.close()
    out = CliRunner(env={"COLUMNS": "100"}).invoke(
        main, ["report", "--store", url, "--since", "2026-12-01T10:00", "--until", "2026-12-03"]
    )
    assert out.exit_code == 0, out.stderr
    assert "from 2026-12-01T10:00 until 2026-12-03 UTC" in out.stdout
    relative = CliRunner().invoke(main, ["report", "--store", url, "--since", "3650d", "--json"])
    assert json.loads(relative.stdout)["window"] == "from 3650d ago UTC"

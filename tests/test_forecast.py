"""When a budget runs out at its current rate (``tokencost.forecast``): the average daily spend since the window
began, kept up until the limit; "not at this rate" when the window resets first or nothing was spent."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from tokencost import Budget
from tokencost.forecast import approximate, forecast

UTC = dt.timezone.utc


def ts(*args: int) -> float:
    return dt.datetime(*args, tzinfo=UTC).timestamp()


NOV_1, NOV_10_NOON, DEC_1 = ts(2026, 11, 1), ts(2026, 11, 10, 12), ts(2026, 12, 1)


def test_month_budget_runs_out_at_the_average_daily_rate() -> None:
    """$4.75 over 9.5 days is $0.50 a day; the $5.25 left lasts 10.5 more days: 2026-11-21 00:00 UTC."""
    f = forecast(Decimal("4.75"), Decimal(10), since=NOV_1, now=NOV_10_NOON, resets=DEC_1)
    assert f.rate_per_day == Decimal("0.5")
    assert f.runs_out == ts(2026, 11, 21)
    assert f.describe() == "runs out 2026-11-21 at this rate"
    assert f.describe_rate() == "≈$0.50/day: the average daily spend since 2026-11-01"
    assert not f.exhausted


def test_not_at_this_rate_when_the_window_resets_first() -> None:
    f = forecast(Decimal("4.75"), Decimal(100), since=NOV_1, now=NOV_10_NOON, resets=DEC_1)
    assert f.runs_out is None
    assert f.describe() == "not at this rate (the window resets 2026-12-01)"


def test_nothing_spent_never_runs_out() -> None:
    f = forecast(Decimal(0), Decimal(10), since=NOV_1, now=NOV_10_NOON, resets=None)
    assert f.rate_per_day == 0
    assert f.runs_out is None
    assert f.describe() == "not at this rate"


def test_a_spent_budget_says_so() -> None:
    f = forecast(Decimal(12), Decimal(10), since=NOV_1, now=NOV_10_NOON, resets=DEC_1)
    assert f.exhausted
    assert f.runs_out == NOV_10_NOON
    assert f.describe() == "spent: the limit is reached"


def test_a_day_budget_says_the_time() -> None:
    """$1 by 06:00 is $4 a day; the $1 left lasts 6 more hours: 12:00 the same day, said with its time."""
    six = ts(2026, 11, 10, 6)
    f = forecast(Decimal(1), Decimal(2), since=ts(2026, 11, 10), now=six, resets=ts(2026, 11, 11))
    assert f.rate_per_day == Decimal(4)
    assert f.describe() == "runs out 2026-11-10 12:00 UTC at this rate"
    late = forecast(Decimal(1), Decimal(20), since=ts(2026, 11, 10), now=six, resets=ts(2026, 11, 11))
    assert late.describe() == "not at this rate (the window resets 2026-11-11 00:00 UTC)"


def test_a_total_budget_has_no_reset() -> None:
    """Without a reset, any rate above zero runs out some day: 90 days at $1 a day, $90 left."""
    f = forecast(Decimal(10), Decimal(100), since=NOV_1, now=ts(2026, 11, 11), resets=None)
    assert f.runs_out == ts(2026, 11, 11) + 90 * 86_400


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="before since"):
        forecast(Decimal(1), Decimal(2), since=NOV_10_NOON, now=NOV_1)
    with pytest.raises(ValueError, match="negative"):
        forecast(Decimal(1), Decimal(-2), since=NOV_1, now=NOV_10_NOON)


@pytest.mark.parametrize(
    ("amount", "shown"),
    [("0.5", "0.500"), ("0.41666666", "0.417"), ("47.8612", "47.86"), ("1234.5678", "1234.57"), ("0", "0.00")],
)
def test_estimates_are_approximated_costs_are_not(amount: str, shown: str) -> None:
    assert str(approximate(Decimal(amount))) == shown


@pytest.mark.parametrize(
    ("window", "tz", "now", "end"),
    [
        ("day", "UTC", ts(2026, 11, 10, 12), ts(2026, 11, 11)),
        ("month", "UTC", ts(2026, 2, 10), ts(2026, 3, 1)),
        ("month", "UTC", ts(2026, 12, 31, 23), ts(2027, 1, 1)),
        # Europe/Paris leaves summer time on 2026-10-25: that day is 25 hours long.
        ("day", "Europe/Paris", ts(2026, 10, 25, 12), ts(2026, 10, 25, 23)),
    ],
)
def test_window_end_is_the_next_window_start(window: str, tz: str, now: float, end: float) -> None:
    budget = Budget(limit_usd=1, window=window, tz=tz)  # type: ignore[arg-type]
    assert budget.window_end(now) == end
    assert budget.window_start(end) == end
    assert Budget(limit_usd=1).window_end(now) is None

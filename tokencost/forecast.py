"""When a budget runs out at the current rate: a straight line through what its window has spent so far.

The rate is the average daily spend since the window began (a ``"month"`` budget on the 10th at noon: what the
month spent over 9.5 days; a ``"total"`` budget: since the day of its first call). The budget runs out when that
rate, kept up, spends what remains: ``now + remaining / rate``. When that falls after the window resets (a
monthly budget whose month ends first), or nothing was spent, it does not run out at this rate.

Example::

    from decimal import Decimal
    from tokencost.forecast import forecast

    f = forecast(Decimal("4.75"), Decimal(10), since=nov_1, now=nov_10_noon, resets=dec_1)
    f.rate_per_day  # Decimal("0.5")
    f.describe()    # "runs out 2026-11-21 at this rate"
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from tokencost.money import format_usd

__all__ = ["Forecast", "approximate", "forecast"]

_DAY_S = 86_400


def approximate(amount: Decimal) -> Decimal:
    """Round an estimate (not a cost) to three significant digits, at least cents: ``0.416666`` -> ``0.417``."""
    if amount == 0:
        return Decimal("0.00")
    exponent = min(-2, amount.adjusted() - 2)
    return amount.quantize(Decimal(1).scaleb(exponent))


def _utc(timestamp: float, with_time: bool) -> str:
    moment = dt.datetime.fromtimestamp(timestamp, dt.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M UTC") if with_time else moment.date().isoformat()


@dataclass(frozen=True)
class Forecast:
    """A budget's spend so far and where its current rate takes it (times in epoch seconds)."""

    spent_usd: Decimal
    limit_usd: Decimal
    since: float
    """When the rate is measured from: the window's start (or a total budget's first day with calls)."""
    now: float
    resets: float | None
    """When the window ends and the spend starts again from zero; None for a ``"total"`` budget."""
    rate_per_day: Decimal
    """The average daily spend since ``since``: spent over the days (fractional) from ``since`` to ``now``."""
    runs_out: float | None
    """When the spend reaches the limit at this rate; None when it does not before the window resets (or when
    nothing was spent); ``now`` when it already has."""

    @property
    def exhausted(self) -> bool:
        """Whether the limit is already reached."""
        return self.spent_usd >= self.limit_usd

    def describe(self) -> str:
        """Say when the budget runs out: ``"runs out 2026-11-21 at this rate"``, ``"not at this rate"``..."""
        if self.exhausted:
            return "spent: the limit is reached"
        if self.runs_out is None:
            if self.resets is None:
                return "not at this rate"
            return f"not at this rate (the window resets {_utc(self.resets, self.resets - self.since <= _DAY_S)})"
        return f"runs out {_utc(self.runs_out, self.runs_out - self.now < 2 * _DAY_S)} at this rate"

    def describe_rate(self) -> str:
        """Say how the rate is computed: ``"≈$0.50/day: the average daily spend since 2026-11-01"``."""
        return (
            f"≈{format_usd(approximate(self.rate_per_day))}/day: the average daily spend since "
            f"{_utc(self.since, self.since % _DAY_S != 0)}"
        )


def forecast(spent: Decimal, limit: Decimal, *, since: float, now: float, resets: float | None = None) -> Forecast:
    """Project ``spent`` (over ``[since, now)``) at its average daily rate until it reaches ``limit``.

    Raises:
        ValueError: when ``now`` is before ``since`` or ``limit`` is negative.
    """
    if now < since:
        raise ValueError(f"now ({now}) is before since ({since})")
    if limit < 0:
        raise ValueError(f"limit must not be negative, got {limit}")
    days = Decimal(str(now - since)) / _DAY_S
    rate = spent / days if days > 0 else Decimal(0)
    runs_out: float | None
    if spent >= limit:
        runs_out = now
    elif rate <= 0:
        runs_out = None
    else:
        runs_out = now + float((limit - spent) / rate * _DAY_S)
        if resets is not None and runs_out >= resets:
            runs_out = None
    return Forecast(spent, limit, since, now, resets, rate, runs_out)

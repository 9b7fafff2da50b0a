"""The one time parser: what ``since``, ``until`` and report windows mean, everywhere.

The tracker's views (``events(since=, until=)``, exports), ``reports``, the ``tokencost`` command and the
server's query parameters all read times here, so ``until="2026-11-30"`` means the same in each: the end of
November 30 (UTC).

Accepted:

* ``None`` (no bound), epoch seconds (a number, or digits as text: ``"1764547200"``);
* a ``datetime`` (naive means UTC) or a ``date``;
* ISO-8601 text: ``"2026-12-01"``, ``"2026-12-01T10:00"``, ``"2026-12-01 10:00:00+02:00"``, ``"...Z"``;
* ``"now"``, ``"today"``, ``"yesterday"`` (UTC days);
* a span back from now: ``"30m"``, ``"12h"``, ``"7d"``, ``"2w"`` (``"7d"`` is seven times 24 hours ago).

A date alone (``"2026-12-03"``, ``"today"``, a ``date``) is the start of that day, or, for an ``until`` bound
(``end=True``; bounds are exclusive), the end of that day: the next midnight.

Example::

    from tokencost.when import parse_when

    parse_when("2026-11-30", "until", end=True)  # 1764547200.0: midnight starting December 1
    parse_when("7d", "since", now=1764547200.0)  # 1763942400.0
"""

from __future__ import annotations

import datetime as dt
import math
import re
import time

__all__ = ["describe_when", "parse_range", "parse_when"]

# Epoch seconds accepted: 1970 up to the end of the year 9999.
MAX_EPOCH = 253_402_300_800.0
# Patterns as text: ``re`` compiles them on first use and keeps them (compiling at import slowed every import).
_SPAN = r"^(\d+(?:\.\d+)?)\s*([smhdw])$"
_SPAN_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}
_DIGITS = r"^[+-]?\d+(\.\d+)?$"
_UTC = dt.timezone.utc


def _day_bound(day: dt.date, end: bool) -> float:
    if end:
        day = day + dt.timedelta(days=1)
    return dt.datetime(day.year, day.month, day.day, tzinfo=_UTC).timestamp()


def _checked(seconds: float, name: str, value: object) -> float:
    if not math.isfinite(seconds) or not 0 <= seconds < MAX_EPOCH:
        raise ValueError(f"{name}: {value!r} is outside 1970 to 9999")
    return float(seconds)


def parse_when(value: object, name: str = "time", *, end: bool = False, now: float | None = None) -> float | None:
    """Read a point in time as epoch seconds (UTC); see the module docstring for what is accepted.

    Args:
        value: the time, or ``None`` for no bound.
        name: what the value is (``"since"``, ``"--until"``), for the error message.
        end: whether this is an ``until`` bound: a date alone then means the end of that day.
        now: the current time for ``"now"``, ``"today"``, ``"7d"``... (default: ``time.time()``).

    Raises:
        ValueError: for text that is no time, a time outside 1970 to 9999, or a value of another type
            (a ``bool`` included).
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{name}: expected a date, a time or epoch seconds, got {value!r}")
    if isinstance(value, (int, float)):
        return _checked(float(value), name, value)
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=_UTC)
        return _checked(moment.timestamp(), name, value)
    if isinstance(value, dt.date):
        return _checked(_day_bound(value, end), name, value)
    if not isinstance(value, str):
        raise ValueError(f"{name}: expected a date, a time or epoch seconds, not {type(value).__name__}")
    raw = value.strip()
    text = raw.lower()
    current = time.time() if now is None else now
    today = dt.datetime.fromtimestamp(current, _UTC).date()
    if text == "now":
        return current
    if text in ("today", "yesterday"):
        return _day_bound(today if text == "today" else today - dt.timedelta(days=1), end)
    span = re.match(_SPAN, text)
    if span is not None:
        return _checked(current - float(span.group(1)) * _SPAN_SECONDS[span.group(2)], name, value)
    if re.match(_DIGITS, text):
        return _checked(float(text), name, value)
    try:
        if len(raw) == 10:
            return _checked(_day_bound(dt.date.fromisoformat(raw), end), name, value)
        if raw.endswith(("Z", "z")):  # fromisoformat reads "Z" only from Python 3.11
            raw = raw[:-1] + "+00:00"
        moment = dt.datetime.fromisoformat(raw)
    except (ValueError, OverflowError):
        pass
    else:
        return parse_when(moment, name, end=end)
    raise ValueError(
        f"{name}: cannot read {value!r} as a time: give a date (2026-12-01), a UTC time (2026-12-01T10:00), "
        "epoch seconds, today, yesterday or a span back from now (7d, 12h)"
    )


def parse_range(since: object, until: object, *, now: float | None = None) -> tuple[float | None, float | None]:
    """Read a ``[since, until)`` pair with ``parse_when`` (``until`` as an end bound).

    Raises:
        ValueError: for a bad bound, or an ``until`` that is not later than ``since``.
    """
    start = parse_when(since, "since", now=now)
    stop = parse_when(until, "until", end=True, now=now)
    if start is not None and stop is not None and stop <= start:
        raise ValueError(f"until ({describe_when(until)}) must be later than since ({describe_when(since)})")
    return start, stop


def describe_when(value: object) -> str:
    """Show a bound as it was asked: ``"2026-12-03"`` stays ``"2026-12-03"``, ``"7d"`` reads ``"7d ago"``.

    A number or ``datetime`` is shown as its UTC date (at midnight) or date and time.
    """
    if isinstance(value, str):
        text = value.strip()
        return f"{text} ago" if re.match(_SPAN, text.lower()) else text
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=_UTC)
        value = moment.timestamp()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        moment = dt.datetime.fromtimestamp(float(value), _UTC)
        return moment.date().isoformat() if moment.time() == dt.time(0) else moment.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)

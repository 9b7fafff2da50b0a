"""What a dashboard URL asks for: a date range and filters, read from its query, and the links that keep them.

Everything a view shows is in its URL, so a view can be shared and the page's refreshes ask for the same:

* ``since``, ``until``: the ``WHEN`` forms of ``--since``/``--until``, read by the same parser
  (``tokencost.when``; relative to the server's clock): ``2026-12-01``, ``7d``, ``yesterday``, epoch seconds; a
  date alone as ``until`` includes that day. Without ``since``, the last ``days`` days (default 14).
* ``model``, ``user``, ``tag``: only the calls of that model, user or tag (``(none)``: the calls without one).
* ``where=KEY=VALUE`` (repeatable): any other key a report groups by, a metadata key (``where=endpoint=/chat``).

Filters are ``tokencost.where.Where``: a call matches when a report grouping by the key puts it in that group.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from urllib.parse import urlencode

from tokencost.stores.grouping import day_key
from tokencost.when import describe_when, parse_range
from tokencost.where import Where

__all__ = ["DEFAULT_DAYS", "MAX_CHART_DAYS", "NAMED_FILTERS", "View", "read_view"]

DEFAULT_DAYS = 14
MAX_CHART_DAYS = 366
NAMED_FILTERS = ("model", "user", "tag")
"""The filters with a query parameter of their own; every other key is a ``where=KEY=VALUE``."""
_DAY_S = 86_400.0


def _midnight(day: dt.date) -> float:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc).timestamp()


@dataclass(frozen=True)
class View:
    """One view of a ledger: the range ``[start, stop)`` and the filters, as asked and as read at ``now``."""

    since: str | None
    """``since`` as asked (``"7d"``), kept so a shared link stays relative; None: the last ``days`` days."""
    until: str | None
    days: int
    where: Where
    now: float
    start: float
    stop: float | None

    @property
    def chart_days(self) -> list[str]:
        """The days the spend-per-day chart shows, oldest first (UTC; the last ``MAX_CHART_DAYS`` of a longer
        range)."""
        first = dt.date.fromisoformat(day_key(self.start))
        end = self.now if self.stop is None else self.stop - 1e-6
        last = max(first, dt.date.fromisoformat(day_key(max(end, self.start))))
        count = min((last - first).days + 1, MAX_CHART_DAYS)
        return [(last - dt.timedelta(days=count - 1 - i)).isoformat() for i in range(count)]

    def describe(self) -> str:
        """Say the range as it was asked: ``"last 14 days"``, ``"from 2026-12-01 until 2026-12-03"``."""
        if self.since is None and self.until is None:
            return f"last {self.days} days"
        parts = [] if self.since is None else [f"from {describe_when(self.since)}"]
        if self.until is not None:
            parts.append(f"until {describe_when(self.until)}")
        if self.since is None:
            parts.insert(0, f"{self.days} days")
        return " ".join(parts)

    def pairs(self) -> list[tuple[str, str]]:
        """The query of this view: its range, then its filters (named ones, then ``where``)."""
        out: list[tuple[str, str]] = []
        if self.since is not None:
            out.append(("since", self.since))
        if self.until is not None:
            out.append(("until", self.until))
        if self.since is None and self.days != DEFAULT_DAYS:
            out.append(("days", str(self.days)))
        for name in NAMED_FILTERS:
            value = self.where.get(name)
            if value is not None:
                out.append((name, value))
        out.extend(("where", f"{k}={v}") for k, v in self.where if k not in NAMED_FILTERS)
        return out

    def query(self) -> str:
        """This view's URL query (without ``?``)."""
        return urlencode(self.pairs())

    def link(self, path: str) -> str:
        """A relative link to ``path`` (``"calls"``, ``"./"``) showing this view."""
        query = self.query()
        return f"{path}?{query}" if query else path

    def narrowed(self, day: str | None = None, **filters: str) -> View:
        """This view narrowed to one UTC ``day`` (``"2026-12-01"``) and/or more filters (``model="gpt-4o"``)."""
        where = self.where
        for key, value in filters.items():
            where = where.with_pair(key, value)
        if day is None:
            return replace(self, where=where)
        start = _midnight(dt.date.fromisoformat(day))
        return replace(self, since=day, until=day, where=where, start=start, stop=start + _DAY_S)

    def without(self, key: str) -> View:
        """This view without the filter on ``key``."""
        return replace(self, where=self.where.without(key))


def read_view(*, since: str | None, until: str | None, days: int, where: Where, now: float) -> View:
    """Read a view's range from its query parameters (blank: none), with its filters (``Where.from_params``).

    Raises:
        ValueError: naming the parameter first (``"since: cannot read ..."``, ``"until: ..."``).
    """
    since = since.strip() if since and since.strip() else None
    until = until.strip() if until and until.strip() else None
    try:
        start, stop = parse_range(since, until, now=now)
    except ValueError as exc:
        text = str(exc)
        raise ValueError(text if text.startswith(("since", "until")) else f"until: {text}") from None
    if start is None:
        end = now if stop is None else stop - 1e-6
        last = dt.date.fromisoformat(day_key(end))
        start = _midnight(last - dt.timedelta(days=days - 1))
        if stop is not None and start >= stop:  # pragma: no cover - stop is past the midnight it follows
            start = stop - _DAY_S
    return View(since=since, until=until, days=days, where=where, now=now, start=start, stop=stop)

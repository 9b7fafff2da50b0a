"""The query parameters of a view, declared once for FastAPI: the filters (``/summary``, the dashboard, the calls
view) and the date range (the dashboard and the calls view). ``view.read_view`` reads them; see ``view``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query

from tokencost.server.schemas import MAX_META_TEXT_CHARS
from tokencost.server.view import DEFAULT_DAYS

__all__ = ["MAX_WHERE", "Filters", "FiltersParam", "Range", "RangeParam", "filters_query", "range_query"]

MAX_WHERE = 16
_VALUE = MAX_META_TEXT_CHARS
_WHEN = "the WHEN forms of --since/--until: 2026-12-01, 2026-12-01T10:00, 7d, yesterday, epoch seconds"


@dataclass(frozen=True)
class Filters:
    """The filter parameters as given: ``named`` pairs (``("model", "gpt-4o")``, blank: none) and ``where``."""

    named: tuple[tuple[str, str | None], ...]
    where: tuple[str, ...]


@dataclass(frozen=True)
class Range:
    """The date range parameters as given."""

    since: str | None
    until: str | None
    days: int


def filters_query(
    model: Annotated[str | None, Query(max_length=_VALUE, description="Only this model's calls.")] = None,
    user: Annotated[
        str | None, Query(max_length=_VALUE, description="Only this user's calls; (none): the calls without one.")
    ] = None,
    tag: Annotated[str | None, Query(max_length=_VALUE, description="Only the calls with this tag.")] = None,
    where: Annotated[
        list[str] | None,
        Query(
            max_length=MAX_WHERE,
            description=f"KEY=VALUE: only the calls whose KEY (any metadata key, or provider, status...) is VALUE; "
            f"repeatable, all must match (at most {MAX_WHERE}).",
        ),
    ] = None,
) -> Filters:
    """The filters of a request."""
    return Filters(named=(("model", model), ("user", user), ("tag", tag)), where=tuple(where or ()))


def range_query(
    since: Annotated[str | None, Query(max_length=64, description=f"Inclusive; {_WHEN}.")] = None,
    until: Annotated[str | None, Query(max_length=64, description="Exclusive; a date alone: its end.")] = None,
    days: Annotated[
        int, Query(ge=1, le=366, description="Without since: the last N days (UTC), the spend-per-day chart's.")
    ] = DEFAULT_DAYS,
) -> Range:
    """The date range of a request."""
    return Range(since=since, until=until, days=days)


FiltersParam = Annotated[Filters, Depends(filters_query)]
RangeParam = Annotated[Range, Depends(range_query)]

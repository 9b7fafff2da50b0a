"""Grouping, written once for every store: the groups an event counts in, the sums it adds, how groups are
ranked, and how a repriced event moves between its groups.

Sums are in ``Totals`` field order: requests, cost, unpriced, saved, then the five token buckets (input,
cache_read, cache_write, output, reasoning). Stores keep them their own way (packed rows, SQL columns, Redis
hashes) but work out keys, sums, order and repricing moves here, so they agree with each other.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from tokencost.events import Event
from tokencost.stores.base import NONE_KEY, Group

__all__ = [
    "N_TOTALS",
    "add_sums",
    "day_key",
    "event_groups",
    "group_keys",
    "in_window",
    "metadata_group",
    "ranked_groups",
    "repriced_sums",
    "repricing_moves",
    "sums_of",
    "tag_groups",
    "unpriced_sums",
]

_K = TypeVar("_K")

N_TOTALS = 9  # the sums of a group, in Totals field order

_DAYS: dict[int, str] = {}  # days since the epoch -> ISO date


def day_key(timestamp: float) -> str:
    """Return the UTC date (``"2026-11-24"``) a timestamp falls on: the ``"day"`` group."""
    number = int(timestamp // 86400)
    day = _DAYS.get(number)
    if day is None:
        if len(_DAYS) > 4096:
            _DAYS.clear()
        day = _DAYS[number] = dt.datetime.fromtimestamp(number * 86400, dt.timezone.utc).date().isoformat()
    return day


def group_keys(
    by: str, model: str, provider: str, status: str, price_source: str | None, metadata: Mapping[str, Any]
) -> list[str]:
    """Return the groups an event counts in when grouped by ``by`` (every key but ``"day"``).

    ``"tag"`` puts an event in each of its tags; a missing key puts it in ``NONE_KEY``.
    """
    if by == "model":
        return [model]
    if by == "provider":
        return [provider]
    if by == "status":
        return [status]
    if by == "price_source":
        return [price_source or NONE_KEY]
    if by == "tag":
        return list(tag_groups(metadata))
    return [metadata_group(metadata, by)]


def metadata_group(metadata: Mapping[str, Any], key: str) -> str:
    """Return the group of metadata ``key`` (``"user"``...): its value as text, ``NONE_KEY`` when missing."""
    value = metadata.get(key)
    return NONE_KEY if value is None else str(value)


def tag_groups(metadata: Mapping[str, Any]) -> tuple[str, ...]:
    """Return the tag groups of metadata: each of its ``"tags"`` once, as text (``NONE_KEY`` without tags)."""
    tags = metadata.get("tags")
    if isinstance(tags, (list, tuple)) and tags:
        return tuple(dict.fromkeys([str(t) for t in tags]))
    return (NONE_KEY,)


def event_groups(event: Event, by: str) -> list[str]:
    """Return the groups ``event`` counts in when grouped by ``by`` (``"day"`` included)."""
    if by == "day":
        return [day_key(event.timestamp)]
    return group_keys(by, event.model, event.provider, event.status, event.price_source, event.metadata)


def in_window(timestamp: float, since: float | None, until: float | None) -> bool:
    """Tell whether ``timestamp`` lies in ``[since, until)`` (an open end when ``None``)."""
    return (since is None or timestamp >= since) and (until is None or timestamp < until)


def sums_of(events: Iterable[Event]) -> list[int]:
    """Return what ``events`` add to a ``Totals``, in field order."""
    requests = cost = unpriced = saved = input_ = cache_read = cache_write = output = reasoning = 0
    for event in events:
        requests += 1
        units = event.cost_units
        if units is None:
            unpriced += 1
        else:
            cost += units
        saved += event.saved_units
        usage = event.usage
        input_ += usage.input
        cache_read += usage.cache_read + usage.cache_read_audio
        cache_write += usage.cache_write + usage.cache_write_1h
        output += usage.output
        reasoning += usage.reasoning
    return [requests, cost, unpriced, saved, input_, cache_read, cache_write, output, reasoning]


def add_sums(groups: dict[_K, list[int]], key: _K, sums: Sequence[int]) -> None:
    """Add ``sums`` to the sums of ``key`` in ``groups`` (a new key starts from ``sums``)."""
    acc = groups.get(key)
    if acc is None:
        groups[key] = list(sums)
    else:
        for i, value in enumerate(sums):
            acc[i] += value


def ranked_groups(sums: Iterable[tuple[str, Sequence[int]]]) -> list[Group]:
    """Return the groups of ``(key, sums)`` that have a request, as ``aggregate()`` orders them: most expensive
    first, then by key."""
    result = [Group.of(key, values) for key, values in sums if values[0] > 0]
    result.sort(key=lambda g: (-g.cost_units, g.key))
    return result


def unpriced_sums(saved: int, tokens: Sequence[int]) -> list[int]:
    """Return the sums of one unpriced event (``tokens``: the five token buckets)."""
    return [1, 0, 1, saved, *tokens]


def repriced_sums(cost_units: int, saved: int, tokens: Sequence[int]) -> list[int]:
    """Return the sums of one event once it is priced at ``cost_units``."""
    return [1, cost_units, 0, saved, *tokens]


def repricing_moves(
    old: Iterable[_K], new: Iterable[_K], old_sums: Sequence[int], new_sums: Sequence[int]
) -> dict[_K, list[int]]:
    """Return what each group gains when an event leaves groups ``old`` with ``old_sums`` and joins groups
    ``new`` with ``new_sums`` (a group in both gains the difference; it may be all zeros)."""
    moves: dict[_K, list[int]] = {}
    for key in old:
        add_sums(moves, key, [-v for v in old_sums])
    for key in new:
        add_sums(moves, key, new_sums)
    return moves

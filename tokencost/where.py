"""Filters on a ledger's calls: ``key=value`` pairs over the keys a report groups by.

A call matches ``user=alice`` when grouping by ``user`` would put it in the group ``alice``: the keys and values
are the grouping's (``stores.grouping.event_groups``), so a group of a report and the filter on its key select
the same calls. ``model``, ``provider``, ``status``, ``price_source``, ``tag`` (a call with several tags matches
each) and any metadata key (``endpoint``, ``team``...); ``user=(none)`` matches the calls without a user. Every
pair must match. Dates are not filters: they are ``since``/``until`` (``tokencost.when``).

Example::

    from tokencost.where import Where

    where = Where.parse(["model=gpt-4o", "user=alice"])
    [event for event in events if where.matches(event)]
    str(where)  # "model=gpt-4o, user=alice"
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from tokencost.events import Event
from tokencost.stores.grouping import event_groups

__all__ = ["DATE_KEYS", "Where"]

# Keys a report groups by that are times, not filters: since/until select them.
DATE_KEYS = ("day", "month")


def _checked_key(key: object) -> str:
    if not isinstance(key, str) or not key.strip():
        raise ValueError(f"a filter needs a key: got {key!r}")
    key = key.strip()
    if key in DATE_KEYS:
        raise ValueError(f"{key} is not a filter: select dates with since/until")
    if "," in key or "=" in key:
        raise ValueError(f"a filter key cannot hold ',' or '=': got {key!r}")
    return key


@dataclass(frozen=True)
class Where:
    """The calls whose group of each key is the value given (all pairs at once); empty matches every call."""

    pairs: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for key, value in self.pairs:
            _checked_key(key)
            if not isinstance(value, str):
                raise ValueError(f"filter {key}: the value must be text, got {value!r}")
            if key in seen:
                raise ValueError(f"filter {key} given twice")
            seen.add(key)

    @classmethod
    def of(cls, items: Iterable[tuple[str, str | None]]) -> Where:
        """Build from ``(key, value)`` pairs, skipping empty values (a form's blank field)."""
        return cls(tuple((_checked_key(k), v) for k, v in items if v is not None and v != ""))

    @classmethod
    def parse(cls, texts: Iterable[str]) -> Where:
        """Build from ``key=value`` texts (the value may hold ``=``); blank texts are skipped.

        Raises:
            ValueError: for a text without ``=``, an empty or date key, or a key given twice.
        """
        pairs: list[tuple[str, str]] = []
        for text in texts:
            if not text.strip():
                continue
            key, sep, value = text.partition("=")
            if not sep:
                raise ValueError(f"a filter is key=value (user=alice, endpoint=/chat), got {text!r}")
            pairs.append((_checked_key(key), value))
        return cls(tuple(pairs))

    @classmethod
    def from_params(cls, named: Iterable[tuple[str, str | None]], texts: Iterable[str]) -> Where:
        """Build from a query's named filters (``("model", "gpt-4o")``; blank: none) and ``key=value`` texts.

        Raises:
            ValueError: as ``parse`` does, and for a key both named and in a text.
        """
        where = cls.of(named)
        for key, value in cls.parse(texts):
            if where.get(key) is not None:
                raise ValueError(f"filter {key} given twice")
            where = where.with_pair(key, value)
        return where

    def __bool__(self) -> bool:
        return bool(self.pairs)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.pairs)

    def __str__(self) -> str:
        return ", ".join(f"{key}={value}" for key, value in self.pairs)

    def get(self, key: str) -> str | None:
        """Return the value ``key`` must have, or None when it is not filtered."""
        return next((value for k, value in self.pairs if k == key), None)

    def with_pair(self, key: str, value: str) -> Where:
        """Return these filters with ``key=value`` (replacing the value ``key`` had)."""
        return Where((*((k, v) for k, v in self.pairs if k != key), (_checked_key(key), value)))

    def without(self, key: str) -> Where:
        """Return these filters without the one on ``key``."""
        return Where(tuple((k, v) for k, v in self.pairs if k != key))

    def matches(self, event: Event) -> bool:
        """Tell whether ``event`` is in the group of each filtered key (see the module docstring)."""
        return all(value in event_groups(event, key) for key, value in self.pairs)

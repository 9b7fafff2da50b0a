"""The ``Store`` base: what every ledger backend offers, and the one place backend errors become ``StoreError``.

A store keeps, per ledger (the tracker's ``name``):

* the events, in the order recorded;
* budget counters: for each counter key (``"total"``, ``"user=alice|day=2026-11-24"``...) the pico-dollars and
  tokens charged to it, plus open reservations (strict budgets);
* running totals, and aggregates by model, provider or any metadata key.

``reserve`` and ``record`` are atomic: two processes sharing a store never both pass a check that only one of
them fits under (one transaction in SQLite, one Lua script in Redis, one lock in memory).
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from tokencost.errors import StoreError
from tokencost.events import Event
from tokencost.pricing import Price

__all__ = ["Check", "Group", "Store", "Totals"]

_F = TypeVar("_F", bound=Callable[..., Any])

# Group key used by aggregate() for events that lack the grouping key.
NONE_KEY = "(none)"


@dataclass(frozen=True, slots=True)
class Check:
    """A limit to check a reservation against: counter ``key`` may hold at most these amounts."""

    key: str
    limit_units: int | None = None
    limit_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class Totals:
    """Running totals of one ledger (money in pico-dollars)."""

    requests: int = 0
    cost_units: int = 0
    unpriced: int = 0
    saved_units: int = 0
    input_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0

    @classmethod
    def from_sums(cls, sums: Sequence[int]) -> Totals:
        """Build from sums in field order: requests, cost, unpriced, saved, then the five token buckets."""
        return cls(*sums)

    @property
    def prompt_tokens(self) -> int:
        """Input tokens including cache reads and writes."""
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens

    @property
    def completion_tokens(self) -> int:
        """Output tokens including reasoning."""
        return self.output_tokens + self.reasoning_tokens


@dataclass(frozen=True, slots=True)
class Group(Totals):
    """Totals of the events sharing one value of the grouping key."""

    key: str = NONE_KEY

    @classmethod
    def of(cls, key: str, sums: Sequence[int]) -> Group:
        """Build the group ``key`` from sums in ``Totals`` field order."""
        return cls(*sums, key=key)  # type: ignore[misc, arg-type]


def ranked_groups(sums: Iterable[tuple[str, Sequence[int]]]) -> list[Group]:
    """Return the groups of ``(key, sums)`` that have a request, as ``aggregate()`` orders them: most expensive
    first, then by key."""
    result = [Group.of(key, values) for key, values in sums if values[0] > 0]
    result.sort(key=lambda g: (-g.cost_units, g.key))
    return result


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
        tags = metadata.get("tags")
        if isinstance(tags, (list, tuple)) and tags:
            return [str(t) for t in dict.fromkeys(tags)]
        return [NONE_KEY]
    value = metadata.get(by)
    return [NONE_KEY if value is None else str(value)]


def _wrap(name: str, method: _F) -> _F:
    @functools.wraps(method)
    def wrapper(self: Store, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(f"{self.scheme} store: {name} failed: {exc}") from exc

    return wrapper  # type: ignore[return-value]


class Store(ABC):
    """A ledger backend, built from a URL by ``store_from_url``.

    Money is integer pico-dollars throughout; times are seconds since the epoch (UTC).
    """

    scheme: ClassVar[str]
    _WRAPPED: ClassVar[tuple[str, ...]] = (
        "record",
        "reserve",
        "release",
        "counters",
        "update_cost",
        "totals",
        "aggregate",
        "events",
        "reset",
        "set_meta",
        "get_meta",
        "flush",
    )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in cls._WRAPPED:
            method = cls.__dict__.get(name)
            if method is not None:
                setattr(cls, name, _wrap(name, method))

    def __init__(self, url: str) -> None:
        self.url = url

    # -- writes -------------------------------------------------------------------------------------------
    @abstractmethod
    def record(
        self, ledger: str, event: Event, charges: Sequence[str] = (), reservation: str | None = None
    ) -> dict[str, tuple[int, int]]:
        """Append ``event``; add its cost (when priced) and tokens to each counter in ``charges``.

        Drops ``reservation`` in the same step. Returns each charged counter's new ``(units, tokens)``.
        """

    @abstractmethod
    def reserve(
        self,
        ledger: str,
        reservation: str,
        checks: Sequence[Check],
        cost_units: int,
        tokens: int,
        ttl: float,
    ) -> Check | None:
        """Hold ``cost_units`` and ``tokens`` on every counter of ``checks`` if all still fit, atomically.

        A counter fits when spent + open reservations + this one stays within its limits. Returns ``None``
        when reserved, else the first check that did not fit (nothing is held then). A reservation not
        recorded or released within ``ttl`` seconds expires (a crashed worker does not hold budget forever).
        """

    @abstractmethod
    def release(self, ledger: str, reservation: str) -> None:
        """Drop an open reservation (the call failed or was refused elsewhere)."""

    @abstractmethod
    def counters(self, ledger: str, keys: Sequence[str]) -> dict[str, tuple[int, int, int]]:
        """Return ``(spent_units, tokens, reserved_units)`` of each counter key (zeros for unknown keys)."""

    @abstractmethod
    def update_cost(
        self, ledger: str, call_id: str, cost_units: int, price: Price, charges: Sequence[str] = ()
    ) -> bool:
        """Price an event recorded unpriced (its price arrived later) and charge ``charges``.

        Returns ``False`` (and changes nothing) when the event is unknown or already priced.
        """

    @abstractmethod
    def reset(self, ledger: str) -> None:
        """Forget the ledger: events, counters, reservations (its meta values stay)."""

    @abstractmethod
    def set_meta(self, ledger: str, key: str, value: str) -> None:
        """Keep a small text value with the ledger (the tracker keeps its budget definitions as ``"budgets"``)."""

    @abstractmethod
    def get_meta(self, ledger: str, key: str) -> str | None:
        """Return a value kept by ``set_meta``, or ``None``."""

    # -- reads --------------------------------------------------------------------------------------------
    @abstractmethod
    def totals(self, ledger: str) -> Totals:
        """Return the running totals of the ledger."""

    @abstractmethod
    def aggregate(self, ledger: str, by: str, since: float | None = None, until: float | None = None) -> list[Group]:
        """Return totals grouped by ``by``, most expensive first.

        ``by`` is ``"model"``, ``"provider"``, ``"day"`` (UTC date), ``"status"``, ``"tag"`` (an event with
        several tags counts in each) or any metadata key (``"user"``...). Events lacking it fall in
        ``NONE_KEY``. ``since`` is inclusive, ``until`` exclusive.
        """

    @abstractmethod
    def events(
        self,
        ledger: str,
        since: float | None = None,
        until: float | None = None,
        model: str | None = None,
        limit: int | None = None,
    ) -> list[Event]:
        """Return events in the order recorded (the newest ``limit`` when ``limit`` is given)."""

    def flush(self, timeout: float | None = None) -> bool:
        """Make every recorded event durable; return ``False`` when ``timeout`` ran out first."""
        return True

    def close(self) -> None:  # noqa: B027 - stores without connections have nothing to release
        """Release connections and files. The store is unusable afterwards."""

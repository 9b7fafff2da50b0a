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

import dataclasses
import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from tokencost.errors import StoreError
from tokencost.events import Event
from tokencost.pricing import Price
from tokencost.usage import Usage

if TYPE_CHECKING:
    from tokencost.stores.reservation import Reservation

__all__ = [
    "MAX_EVENT_UNITS",
    "MAX_TOKENS",
    "Check",
    "Group",
    "Reservation",
    "Store",
    "Totals",
    "first_misfit",
    "implausible",
    "plausible_event",
]

_F = TypeVar("_F", bound=Callable[..., Any])

# Group key used by aggregate() for events that lack the grouping key.
NONE_KEY = "(none)"

# A single call with more tokens than this in one bucket is beyond any context window: it is recorded unpriced.
MAX_TOKENS = 10**9
# The largest cost (and saving) one event may carry, in pico-dollars (2^63 - 1, about $9.2 million): stores keep an
# event's amount in a signed 64-bit integer. Running sums are kept past it (see ``MICRO``).
MAX_EVENT_UNITS = 2**63 - 1
# Running money sums are kept in two signed 64-bit parts, whole micro-dollars and the pico-dollars below them, so
# SQLite and Redis (whose integers are 64-bit) hold totals up to about $9.2 * 10^12, exact to 1e-12.
MICRO = 10**6


def split_units(units: int) -> tuple[int, int]:
    """Return ``units`` (pico-dollars) as ``(pico-dollars below a micro-dollar, whole micro-dollars)``."""
    micro, rest = divmod(units, MICRO)
    return rest, micro


def split_sums(sums: Sequence[int]) -> tuple[int, ...]:
    """Return ``Totals`` sums (9, field order) as stored: the two money sums split, their micro parts last (11)."""
    cost_m, cost = divmod(sums[1], MICRO)
    saved_m, saved = divmod(sums[3], MICRO)
    return (sums[0], cost, sums[2], saved, *sums[4:9], cost_m, saved_m)


def join_sums(stored: Sequence[int]) -> list[int]:
    """Return the 9 ``Totals`` sums of 11 stored ones (``split_sums``'s layout; a missing micro part is 0)."""
    cost_m = stored[9] if len(stored) > 9 else 0
    saved_m = stored[10] if len(stored) > 10 else 0
    return [stored[0], cost_m * MICRO + stored[1], stored[2], saved_m * MICRO + stored[3], *stored[4:9]]


def implausible(event: Event) -> str | None:
    """Return why ``event`` cannot be recorded as it is (a token count or an amount out of range), or ``None``.

    Out of range: a bucket of more than ``MAX_TOKENS`` tokens (or negative), a cost or saving above
    ``MAX_EVENT_UNITS`` (or negative).
    """
    u = event.usage
    m = MAX_TOKENS
    cost = event.cost_units
    try:
        fits = (
            0 <= u.input <= m
            and 0 <= u.output <= m
            and 0 <= u.cache_read <= m
            and 0 <= u.cache_write <= m
            and 0 <= u.reasoning <= m
            and 0 <= u.audio_in <= m
            and 0 <= u.audio_out <= m
            and 0 <= u.image <= m
            and 0 <= u.cache_write_1h <= m
            and 0 <= u.cache_read_audio <= m
            and 0 <= u.web_search_requests <= m
            and (cost is None or 0 <= cost <= MAX_EVENT_UNITS)
            and 0 <= event.saved_units <= MAX_EVENT_UNITS
        )
        if fits:
            return None
        counts = {
            name: value
            for name, value in {**u.as_dict(), "web_search_requests": u.web_search_requests}.items()
            if not 0 <= value <= m
        }
    except TypeError:
        return f"token counts or amounts that are not numbers ({u!r}): recorded without cost or tokens"
    if counts:
        shown = ", ".join(f"{name}={value}" for name, value in counts.items())
        return f"implausible usage ({shown}; over {m:,} tokens in one call): recorded without cost or tokens"
    return f"implausible amount (cost {cost}, saved {event.saved_units} pico-dollars): recorded without cost"


# The last event plausible_event() passed as it is. The recorder checks every event before its store's record()
# checks it again: that second check is one identity test. (Events and their usage are read-only; another thread
# replacing it only makes the next check a full one.) ``implausible`` is the plain reference of the whole check.
_passed: Event | None = None
_ZERO = 0  # an empty bucket of the common call, compared by identity


def plausible_event(event: Event) -> Event:
    """Return ``event``, or when ``implausible`` finds it out of range, an unpriced copy saying why.

    The copy has no cost, price or saving (never written as money); its usage is zeroed when a token count is
    out of range (it would charge token budgets with tokens no call can have), else kept. A pending event stays
    unpriced for good (status ``ok``). Stores call this in ``record()``; the tracker may call it when pricing.
    """
    global _passed
    if event is _passed:
        return event
    u = event.usage
    cost = event.cost_units
    try:
        # One bitwise OR of the buckets lies in [0, MAX_TOKENS] exactly when each of them does (a negative one
        # makes it negative): the common case in one expression, for record()'s hot path. Its first half is the
        # common call's: five buckets, the others the int 0 itself (``is``: a non-int 0 takes the whole OR).
        if (
            (
                (
                    0 <= (u.input | u.output | u.cache_read | u.cache_write | u.reasoning) <= MAX_TOKENS
                    and u.audio_in is u.audio_out is u.image is u.cache_write_1h is u.cache_read_audio is _ZERO
                    and u.web_search_requests is _ZERO
                )
                or 0
                <= (
                    u.input
                    | u.output
                    | u.cache_read
                    | u.cache_write
                    | u.reasoning
                    | u.audio_in
                    | u.audio_out
                    | u.image
                    | u.cache_write_1h
                    | u.cache_read_audio
                    | u.web_search_requests
                )
                <= MAX_TOKENS
            )
            and (cost is None or 0 <= cost <= MAX_EVENT_UNITS)
            and 0 <= event.saved_units <= MAX_EVENT_UNITS
        ):
            _passed = event
            return event
    except TypeError:  # a count that is not an int: implausible() says why
        pass
    reason = implausible(event)
    if reason is None:
        return event
    usage = event.usage if reason.startswith("implausible amount") else Usage()
    return dataclasses.replace(
        event,
        usage=usage,
        cost_units=None,
        price=None,
        price_source=None,
        saved_units=0,
        breakdown=None,
        status="ok" if event.status == "pending" else event.status,
        reason=reason,
    )


@dataclass(frozen=True, slots=True)
class Check:
    """A limit to check a reservation against: counter ``key`` may hold at most these amounts."""

    key: str
    limit_units: int | None = None
    limit_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class Totals:
    """Running totals of one ledger (money in pico-dollars). Cache reads count text and audio, cache writes both
    TTLs."""

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


def first_misfit(
    checks: Sequence[Check],
    spent: Mapping[str, Sequence[int]],
    held: Mapping[str, Sequence[int]],
    cost_units: int,
    tokens: int,
) -> Check | None:
    """Return the first check a reservation of ``cost_units`` and ``tokens`` does not fit under, or ``None``.

    ``spent`` and ``held`` give each counter's ``(units, tokens)`` charged and held by open reservations (a key
    missing from them holds nothing): it fits when spent + held + the reservation stays within each limit.
    """
    for check in checks:
        units, used = spent.get(check.key, (0, 0))
        held_units, held_tokens = held.get(check.key, (0, 0))
        if check.limit_units is not None and units + held_units + cost_units > check.limit_units:
            return check
        if check.limit_tokens is not None and used + held_tokens + tokens > check.limit_tokens:
            return check
    return None


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
    WRAPPED_METHODS: ClassVar[tuple[str, ...]] = (
        "record",
        "reserve",
        "release",
        "reservations",
        "release_stale",
        "counters",
        "update_cost",
        "totals",
        "aggregate",
        "events",
        "reset",
        "set_meta",
        "get_meta",
        "ledgers",
        "flush",
    )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in cls.WRAPPED_METHODS:
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

        A counter fits when spent + open reservations + this one stays within its limits. Several checks of one
        counter key hold the amount on it once (each of their limits applies, so the tightest decides). Returns
        ``None`` when reserved, else the first check that did not fit (nothing is held then). A reservation not
        recorded or released within ``ttl`` seconds (by the store's clock) expires (a crashed worker does not hold
        budget forever).
        """

    @abstractmethod
    def release(self, ledger: str, reservation: str) -> None:
        """Drop an open reservation (the call failed or was refused elsewhere)."""

    def reservations(self, ledger: str) -> list[Reservation]:
        """Return the open (unexpired) reservations of the ledger, oldest first.

        Every tokencost store has it; a ``Store`` subclass of another library that lacks it raises
        ``NotImplementedError``.
        """
        raise NotImplementedError(f"{type(self).__name__} does not list reservations")

    def release_stale(self, ledger: str, older_than: float) -> int:
        """Drop the open reservations created more than ``older_than`` seconds ago; return how many.

        Every tokencost store has it; a ``Store`` subclass of another library that lacks it raises
        ``NotImplementedError``.
        """
        raise NotImplementedError(f"{type(self).__name__} does not release stale reservations")

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

    def ledgers(self) -> list[str] | None:
        """Return the names of the ledgers that hold events or saved values, sorted; ``None`` when unknown."""
        return None

    def flush(self, timeout: float | None = None) -> bool:
        """Make every recorded event durable; return ``False`` when ``timeout`` ran out first."""
        return True

    def close(self) -> None:  # noqa: B027 - stores without connections have nothing to release
        """Release connections and files. The store is unusable afterwards."""


def __getattr__(name: str) -> Any:
    # Reservation lives in tokencost.stores.reservation, built on first use (only listing reservations needs it).
    if name == "Reservation":
        from tokencost.stores.reservation import Reservation

        globals()[name] = Reservation
        return Reservation
    raise AttributeError(f"module 'tokencost.stores.base' has no attribute {name!r}")

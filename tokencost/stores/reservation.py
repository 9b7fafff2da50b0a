"""``Reservation``: what ``Store.reservations()`` lists of the reservations strict budgets hold.

Apart from ``stores.base`` (which re-exports it) so that its class is built only when reservations are listed,
not at every import of tokencost.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Reservation"]


@dataclass(frozen=True, slots=True)
class Reservation:
    """An open (unexpired) reservation: what ``reserve()`` holds on counters ``keys`` until recorded or released.

    ``created`` and ``expires`` are seconds since the epoch, by the store's clock.
    """

    id: str
    keys: tuple[str, ...]
    cost_units: int
    tokens: int
    created: float
    expires: float

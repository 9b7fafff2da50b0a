"""Exact money: parse user input into ``Decimal`` and convert to and from integer pico-dollars.

Every amount the library adds up is an ``int`` of pico-dollars (1e-12 USD): stores keep integers, sums are
exact, and the public API shows ``Decimal``. A per-token price with more than twelve decimals (about 1% of
litellm's map) makes an event's cost round half-even at 1e-12 USD, far below a cent.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import TypeAlias

__all__ = ["UNITS_PER_USD", "Money", "format_usd", "from_units", "parse_amount", "to_units", "units_text", "usd_text"]

# What the API accepts as a USD amount (``tokencost.typing`` re-exports it).
Money: TypeAlias = Decimal | int | float | str

UNITS_PER_USD = 10**12
_PICO = Decimal(1).scaleb(-12)
_CENT = Decimal("0.01")


def to_units(amount: Decimal) -> int:
    """Return ``amount`` (USD) as integer pico-dollars, rounding half-even below 1e-12."""
    return int((amount * UNITS_PER_USD).to_integral_value(rounding=ROUND_HALF_EVEN))


def from_units(units: int) -> Decimal:
    """Return integer pico-dollars as a ``Decimal`` in USD, with no trailing zeros past the cents.

    ``from_units(16 * 10**12) == Decimal("16.00")`` and prints as ``16.00``; ``0.0177`` keeps its digits.
    """
    value = (Decimal(units) * _PICO).normalize()
    if value.as_tuple().exponent > -2:  # type: ignore[operator]
        return value.quantize(_CENT)
    return value


def units_text(units: int) -> str:
    """Return pico-dollars as exact plain decimal text with at least cents: ``0.02``, ``16.00``, ``0.000000000001``.

    The JSON form of every amount (``report --json``, exports, the server API); same digits as ``from_units``.
    """
    whole, frac = divmod(abs(units), UNITS_PER_USD)
    digits = f"{frac:012d}".rstrip("0")
    return f"{'-' if units < 0 else ''}{whole}.{digits:0<2}"


def usd_text(amount: Decimal) -> str:
    """Return USD as exact plain decimal text with at least cents (``"0.0139875"``, ``"2.50"``; never ``2E-2``)."""
    return units_text(to_units(amount))


def format_usd(amount: Decimal, *, signed: bool = False) -> str:
    """Show USD to a reader with every digit it has: ``$1,234.50``, ``$0.0139875``, ``-$0.01``, ``+$0.25``.

    The one money formatter of the terminal and the dashboard: never rounded (so never ``$0.00`` for a cost that is
    not zero), at least cents, thousands grouped. ``signed`` puts ``+`` before amounts above zero.
    """
    text = usd_text(abs(amount))
    whole, _, frac = text.partition(".")
    sign = "-" if amount < 0 else ("+" if signed and amount > 0 else "")
    return f"{sign}${int(whole):,}.{frac}"


def parse_amount(value: object, name: str, *, allow_none: bool = True) -> Decimal | None:
    """Parse a user-given USD amount (int, float, str or Decimal) into a non-negative finite ``Decimal``.

    A float goes through ``str`` so ``0.1`` stays ``Decimal("0.1")``.

    Raises:
        TypeError: for a type that is not a number or numeric string (``bool`` included).
        ValueError: for NaN, infinity, a negative amount or text that is not a number.
    """
    if value is None:
        if allow_none:
            return None
        raise TypeError(f"{name} must be a number, not None")
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise TypeError(f"{name} must be an int, float, str or Decimal, not {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    try:
        amount = Decimal(str(value).strip()) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not amount.is_finite():
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if amount < 0:
        raise ValueError(f"{name} must not be negative, got {value!r}")
    return amount

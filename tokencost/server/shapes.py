"""What the API sends, built from the store's objects: money as decimal strings, times as ISO-8601 UTC.

Each function returns the plain dict of one response model in ``schemas`` (same fields, same order); the routes
validate it against that model before it leaves (``routes.respond``).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from tokencost.budgets import BudgetLine
from tokencost.events import Event
from tokencost.money import from_units, to_units
from tokencost.pricing import Price
from tokencost.stores import Group, Store, Totals

__all__ = ["budget_json", "event_json", "group_json", "iso", "money", "per_mtok", "plain", "price_row", "range_totals"]


def money(amount: Decimal) -> str:
    """Return USD as a plain decimal string with at least cents (``"0.02"``, ``"1.00"``; never ``"2E-2"``)."""
    return format(from_units(to_units(amount)), "f")


def per_mtok(per_token: Decimal | None) -> str | None:
    """Return a per-token price as USD per million tokens, a decimal string (``None`` stays ``None``)."""
    return None if per_token is None else format((per_token * 1_000_000).normalize(), "f")


def plain(value: Any) -> Any:
    """Return ``value`` as JSON-able data: money as decimal strings, odd objects as text."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, Decimal):
        return money(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    return str(value)


def event_json(event: Event) -> dict[str, Any]:
    """One recorded call (``EventOut``)."""
    data: dict[str, Any] = plain(event.to_dict())
    return data


def iso(timestamp: float | None) -> str | None:
    """Return epoch seconds as ISO-8601 UTC (``None`` stays ``None``)."""
    if timestamp is None:
        return None
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).isoformat()


def group_json(group: Group) -> dict[str, Any]:
    """The totals of one group (``GroupOut``)."""
    return {
        "key": group.key,
        "cost": money(from_units(group.cost_units)),
        "requests": group.requests,
        "unpriced": group.unpriced,
        "prompt_tokens": group.prompt_tokens,
        "completion_tokens": group.completion_tokens,
        "cache_read_tokens": group.cache_read_tokens,
        "cache_write_tokens": group.cache_write_tokens,
        "reasoning_tokens": group.reasoning_tokens,
        "saved_by_cache": money(from_units(group.saved_units)),
    }


def budget_json(line: BudgetLine) -> dict[str, Any]:
    """One budget scope in its current window (``BudgetOut``)."""
    return {
        "label": line.label,
        "window": line.window,
        "limit_usd": None if line.limit_usd is None else money(line.limit_usd),
        "spent_usd": money(line.spent_usd),
        "remaining_usd": None if line.remaining_usd is None else money(line.remaining_usd),
        "max_tokens": line.max_tokens,
        "tokens": line.tokens,
        "strict": line.strict,
        "exceeded": line.exceeded,
    }


def price_row(model: str, provider: str | None, price: Price) -> dict[str, Any]:
    """One known price (``ModelPriceOut``)."""
    return {
        "model": model,
        "provider": provider,
        "source": price.source,
        "source_url": price.source_url,
        "input_per_mtok": per_mtok(price.input),
        "output_per_mtok": per_mtok(price.output),
        "cache_read_per_mtok": per_mtok(price.cache_read),
        "cache_write_per_mtok": per_mtok(price.cache_write),
        "reasoning_per_mtok": per_mtok(price.reasoning),
    }


def range_totals(store: Store, ledger: str, since: float | None, until: float | None) -> Totals:
    """Return the totals of a time range: every event has exactly one status, so its groups add up exactly."""
    if since is None and until is None:
        return store.totals(ledger)
    sums = [0] * 9
    for group in store.aggregate(ledger, "status", since, until):
        for i, value in enumerate(
            (
                group.requests,
                group.cost_units,
                group.unpriced,
                group.saved_units,
                group.input_tokens,
                group.cache_read_tokens,
                group.cache_write_tokens,
                group.output_tokens,
                group.reasoning_tokens,
            )
        ):
            sums[i] += value
    return Totals.from_sums(sums)

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

from tokencost.budget_line import BudgetLine
from tokencost.events import Event
from tokencost.money import usd_text
from tokencost.pricing import Price
from tokencost.reports import Summary, budget_dict, export_record

__all__ = ["budget_json", "event_json", "iso", "per_mtok", "plain", "price_row", "summary_json"]


def per_mtok(per_token: Decimal | None) -> str | None:
    """Return a per-token price as USD per million tokens, a decimal string (``None`` stays ``None``)."""
    return None if per_token is None else format((per_token * 1_000_000).normalize(), "f")


def plain(value: Any) -> Any:
    """Return ``value`` as JSON-able data: money as decimal strings, odd objects as text."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, Decimal):
        return usd_text(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    return str(value)


def event_json(event: Event) -> dict[str, Any]:
    """One recorded call (``EventOut``): the export record, so the API and exports say the same."""
    return plain(export_record(event))  # type: ignore[no-any-return]


def iso(timestamp: float | None) -> str | None:
    """Return epoch seconds as ISO-8601 UTC (``None`` stays ``None``)."""
    if timestamp is None:
        return None
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).isoformat()


def summary_json(summary: Summary, limit: int) -> dict[str, Any]:
    """A summary (``SummaryOut``): ``Summary.to_dict()``, as ``tokencost report --json`` prints it, with at most
    ``limit`` groups (``groups_total`` says how many there are)."""
    data = summary.to_dict()
    data["groups"] = data["groups"][:limit]
    return data


def budget_json(line: BudgetLine) -> dict[str, Any]:
    """One budget scope in its current window (``BudgetOut``), as in a summary's ``budgets``."""
    return budget_dict(line)


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

"""The rows of ``GET /models``: every price litellm's map knows, with the registered overrides winning."""

from __future__ import annotations

import threading
from typing import Any

import litellm

from tokencost.pricing.litellm_map import price_from_entry
from tokencost.pricing.override import registered_prices
from tokencost.server.shapes import price_row

__all__ = ["known_prices"]

_lock = threading.Lock()  # guards _litellm_rows_cache
_litellm_rows_cache: tuple[tuple[int, int], list[dict[str, Any]]] | None = None


def _litellm_rows() -> list[dict[str, Any]]:
    """Return a row per priced entry of litellm's map, built once per version of the map."""
    global _litellm_rows_cache
    cost_map: dict[str, Any] = litellm.model_cost
    stamp = (id(cost_map), len(cost_map))
    with _lock:
        if _litellm_rows_cache is not None and _litellm_rows_cache[0] == stamp:
            return _litellm_rows_cache[1]
    rows: list[dict[str, Any]] = []
    for model, info in list(cost_map.items()):
        if not isinstance(info, dict) or model == "sample_spec":
            continue
        price = price_from_entry(info)
        if price is None:
            continue
        provider = info.get("litellm_provider")
        rows.append(price_row(model, provider if isinstance(provider, str) else None, price))
    with _lock:
        _litellm_rows_cache = (stamp, rows)
    return rows


def _override_rows() -> list[dict[str, Any]]:
    return [price_row(model, None, price) for model, price in registered_prices().items()]


def known_prices(q: str | None) -> list[dict[str, Any]]:
    """Return every known price, the override winning over litellm's map for the same name, sorted by model."""
    rows = {row["model"]: row for row in _litellm_rows()}
    rows.update((row["model"], row) for row in _override_rows())
    needle = (q or "").strip().lower()
    picked = [
        row
        for row in rows.values()
        if not needle or needle in row["model"].lower() or needle in (row["provider"] or "").lower()
    ]
    picked.sort(key=lambda row: row["model"])
    return picked

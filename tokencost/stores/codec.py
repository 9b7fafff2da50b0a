"""The stores' codec: prices as exact decimal JSON, metadata as compact JSON, and what is written instead of an
event that cannot be written as recorded. Shared by ``SQLiteStore`` and ``RedisStore``."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from tokencost.events import Event
from tokencost.pricing import Price
from tokencost.stores.base import MAX_TOKENS
from tokencost.usage import BUCKETS, Usage

__all__ = [
    "CODEC_CACHE_SIZE",
    "encode_json",
    "metadata_to_json",
    "plain_json",
    "price_from_dict",
    "price_from_json",
    "price_key",
    "price_to_dict",
    "price_to_json",
    "quarantined_event",
]

# Price codec: decimal text, so a price read back is equal to the one recorded.
_PRICE_FIELDS = tuple(f.name for f in dataclasses.fields(Price) if f.init)
_price_json_cache: dict[Price, str] = {}
_price_cache: dict[str, Price] = {}
_price_json_by_id: dict[int, tuple[Price, str]] = {}  # keeps the Price alive, so its id is not reused
CODEC_CACHE_SIZE = 4096


_PRICE_TEXT_FIELDS = ("source", "source_url", "tier_above_tokens", "unmodeled")


def price_to_dict(price: Price, depth: int = 0) -> dict[str, Any]:
    """Return ``price`` as a JSON-ready dict: every amount as decimal text, ``above_tier`` as a nested dict."""
    if depth > 8:
        raise ValueError("price tiers nested more than 8 deep")
    out: dict[str, Any] = {}
    for name in _PRICE_FIELDS:
        value = getattr(price, name)
        if value is None or value == ():
            continue
        if name == "service_tiers":
            out[name] = {tier: price_to_dict(variant, depth + 1) for tier, variant in value}
        elif name == "geo_multipliers":
            out[name] = {geo: str(multiplier) for geo, multiplier in value}
        elif isinstance(value, Price):
            out[name] = price_to_dict(value, depth + 1)
        elif isinstance(value, Decimal):
            out[name] = str(value)
        else:
            out[name] = value
    return out


def price_from_dict(raw: Mapping[str, Any]) -> Price:
    """Rebuild a ``Price`` from ``price_to_dict``'s dict."""
    kwargs: dict[str, Any] = {}
    for name in _PRICE_FIELDS:
        if name in raw:
            value = raw[name]
            if name == "above_tier":
                kwargs[name] = price_from_dict(value)
            elif name == "service_tiers":
                kwargs[name] = tuple(sorted((tier, price_from_dict(variant)) for tier, variant in value.items()))
            elif name == "geo_multipliers":
                kwargs[name] = tuple(sorted((geo, Decimal(multiplier)) for geo, multiplier in value.items()))
            elif name in _PRICE_TEXT_FIELDS:
                kwargs[name] = value
            else:
                kwargs[name] = Decimal(value)
    return Price(**kwargs)


def price_to_json(price: Price) -> str:
    """Return ``price`` as compact JSON with every amount as decimal text."""
    # Looked up by identity first: hashing a Price (eight Decimals) costs more than encoding a small event.
    cached = _price_json_by_id.get(id(price))
    if cached is not None and cached[0] is price:
        return cached[1]
    text = _price_json_cache.get(price)
    if text is None:
        text = json.dumps(price_to_dict(price), separators=(",", ":"), sort_keys=True)
        if len(_price_json_cache) >= CODEC_CACHE_SIZE:
            _price_json_cache.clear()
        _price_json_cache[price] = text
    if len(_price_json_by_id) >= CODEC_CACHE_SIZE:
        _price_json_by_id.clear()
    _price_json_by_id[id(price)] = (price, text)
    return text


def price_from_json(text: str) -> Price:
    """Rebuild a ``Price`` written by ``price_to_json``."""
    price = _price_cache.get(text)
    if price is None:
        price = price_from_dict(json.loads(text))
        if len(_price_cache) >= CODEC_CACHE_SIZE:
            _price_cache.clear()
        _price_cache[text] = price
    return price


def price_key(text: str) -> str:
    """Return a short content address for a price's JSON (prices are stored once, events refer to them)."""
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:16]


def quarantined_event(event: Event, reason: str) -> Event:
    """Return what is written instead of ``event`` when it cannot be written as recorded: no cost, price,
    breakdown or metadata, plain values only, and ``reason`` (usage kept when it is plain integers in range)."""
    usage = event.usage
    counts = [getattr(usage, name, 0) for name in (*BUCKETS, "web_search_requests")]
    plain = all(type(v) is int and 0 <= v <= MAX_TOKENS for v in counts)
    tier, geo = getattr(usage, "service_tier", None), getattr(usage, "inference_geo", None)
    kept = Usage(service_tier=tier if type(tier) is str else None, inference_geo=geo if type(geo) is str else None)
    if plain:
        values: dict[str, Any] = dict(zip((*BUCKETS, "web_search_requests"), counts, strict=True))
        kept = dataclasses.replace(kept, **values)
    ts = event.timestamp
    return Event(
        call_id=str(event.call_id),
        timestamp=float(ts) if isinstance(ts, (int, float)) and math.isfinite(ts) else 0.0,
        model=str(event.model),
        provider=str(event.provider),
        usage=kept,
        cost_units=None,
        status="ok" if event.status not in ("ok", "cache_hit", "incomplete") else str(event.status),
        reason=f"not written as recorded: {reason}",
    )


def _json_encoder() -> Callable[[Any], str]:
    # json.dumps builds an encoder on every call; building CPython's C encoder once makes encoding a small dict
    # two to three times cheaper. Arguments: markers (None: no circular check), default, string encoder, indent,
    # separators, sort_keys, skipkeys, allow_nan (what JSONEncoder.iterencode passes). NaN is refused: SQLite's
    # JSON functions reject it (see metadata_to_json).
    c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
    if c_make_encoder is None:  # pragma: no cover - CPython always has the C accelerator
        return json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str, allow_nan=False).encode
    chunks = c_make_encoder(None, str, json.encoder.encode_basestring, None, ":", ",", False, False, False)

    def encode(value: Any) -> str:
        return "".join(chunks(value, 0))

    return encode


encode_json = _json_encoder()


def metadata_to_json(metadata: Mapping[str, Any]) -> str:
    """Return metadata as compact JSON; values JSON cannot hold (NaN, cycles, objects) are kept as their ``str``."""
    if not metadata:
        return "{}"
    try:
        return encode_json(metadata if type(metadata) is dict else dict(metadata))
    except (ValueError, TypeError, RecursionError):
        # Never fail a write over metadata: an event that cannot be written would block every later one.
        return encode_json(plain_json(metadata))


def plain_json(value: Any, depth: int = 0) -> Any:
    """Return ``value`` with everything JSON cannot hold replaced by its ``str`` (finite depth, no NaN)."""
    if depth > 32:
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): plain_json(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_json(v, depth + 1) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (str, int, float)):
        return value
    return str(value)

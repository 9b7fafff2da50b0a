"""The FastAPI app behind ``tokencost serve``: a JSON API over one ledger and a dashboard drawn as server-side SVG.

Routes (OpenAPI at ``/docs`` and ``/openapi.json``):

* ``GET /health``: 200 when the store answers, 503 when it does not.
* ``POST /track``: price and record a call made anywhere (Bearer token when one is set).
* ``GET /summary``, ``GET /recent``, ``GET /models``, ``GET /budgets``: reads.
* ``GET /``: the dashboard; ``GET /dashboard/fragment``: its charts, which the page re-fetches every few seconds.

Money leaves the server as decimal strings (``"0.02"``), never as JSON floats. Every text a client or a worker
wrote (model names, metadata) is HTML-escaped before it reaches the dashboard.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import html
import json
import logging
import math
import os
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Annotated, Any, Literal, TypeVar

import litellm
from fastapi import Depends, FastAPI, Query
from fastapi.exceptions import HTTPException, RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tokencost.budgets import BudgetLine, budget_lines, load_budgets
from tokencost.events import Event
from tokencost.money import from_units, to_units
from tokencost.pricing import Price
from tokencost.pricing.litellm_map import price_from_entry
from tokencost.server.loopback import is_loopback
from tokencost.stores import Check, Group, Reservation, Store, Totals, store_from_url
from tokencost.stores.base import NONE_KEY
from tokencost.tracker import CostTracker

__all__ = ["MAX_BODY_BYTES", "TOKEN_ENV", "create_app", "serve"]

log = logging.getLogger("tokencost")

TOKEN_ENV = "TOKENCOST_SERVER_TOKEN"
MAX_BODY_BYTES = 64 * 1024
# Bounds on what one POST /track may carry: generous for real calls, small enough that a client cannot bloat
# the ledger or the dashboard.
MAX_TOKENS = 1_000_000_000
MAX_NAME_CHARS = 256
MAX_PROVIDER_CHARS = 64
MAX_TAGS = 32
MAX_TAG_CHARS = 64
MAX_META_KEYS = 32
MAX_META_KEY_CHARS = 64
MAX_META_TEXT_CHARS = 1024
MAX_RECENT = 1000
MAX_GROUPS = 1000
MAX_MODELS_PAGE = 1000
# Epoch seconds accepted for since/until: 1970 up to the year 9999.
_MAX_EPOCH = 253_402_300_800.0
_JS_SAFE_INT = 2**53
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
# Metadata keys POST /track fills from its own fields.
_RESERVED_META = ("endpoint", "user", "tags")

# No control characters in names: they would be invisible on the dashboard and in CSV exports.
_PRINTABLE = r"^[^\x00-\x1f\x7f]+$"

Count = Annotated[int, Field(ge=0, le=MAX_TOKENS, strict=True)]
Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS, pattern=_PRINTABLE)]
ProviderName = Annotated[str, Field(min_length=1, max_length=MAX_PROVIDER_CHARS, pattern=_PRINTABLE)]
Tag = Annotated[str, Field(min_length=1, max_length=MAX_TAG_CHARS, pattern=_PRINTABLE)]
MetaKey = Annotated[str, Field(min_length=1, max_length=MAX_META_KEY_CHARS, pattern=_PRINTABLE)]
MetaValue = (
    Annotated[str, Field(max_length=MAX_META_TEXT_CHARS, strict=True)]
    | Annotated[bool, Field(strict=True)]
    | Annotated[int, Field(ge=-_JS_SAFE_INT, le=_JS_SAFE_INT, strict=True)]
    | Annotated[float, Field(allow_inf_nan=False, strict=True)]
    | None
)
GroupBy = Literal["model", "provider", "endpoint", "user", "tag", "day"]
Days = Annotated[int, Query(ge=1, le=366, description="Days shown in the spend-per-day chart.")]
_BEARER = HTTPBearer(auto_error=False, description="The server's token (--token or TOKENCOST_SERVER_TOKEN).")
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]


# -- API models ------------------------------------------------------------------------------------------------
class TrackRequest(BaseModel):
    """A call made outside litellm, in OpenAI's convention.

    ``input_tokens`` includes the cache reads and writes; ``output_tokens`` includes the reasoning tokens.
    """

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: Name = Field(description="The model name, e.g. gpt-4o or anthropic/claude-sonnet-4-5.")
    input_tokens: Count = Field(description="All prompt tokens, cache reads and writes included.")
    output_tokens: Count = Field(description="All completion tokens, reasoning included.")
    cache_read_tokens: Count = 0
    cache_write_tokens: Count = 0
    reasoning_tokens: Count = 0
    provider: ProviderName | None = Field(default=None, description="Else guessed from the model name.")
    endpoint: Name | None = Field(default=None, description="Your own API endpoint that made the call.")
    user: Name | None = None
    tags: list[Tag] | None = Field(default=None, max_length=MAX_TAGS)
    metadata: dict[MetaKey, MetaValue] | None = Field(
        default=None,
        max_length=MAX_META_KEYS,
        description="Flat attribution values (text, numbers, booleans); endpoint, user and tags have fields.",
    )


class EventOut(BaseModel):
    """One recorded call; money in USD as decimal strings."""

    call_id: str
    timestamp: str
    model: str
    provider: str
    prompt_tokens: int
    completion_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    cost: str | None = Field(description="USD as a decimal string; null when no price is known.")
    priced: bool
    price_source: str | None
    cost_breakdown: dict[str, str]
    saved_by_cache: str
    status: str
    reason: str | None
    metadata: dict[str, Any]


class HealthOut(BaseModel):
    """Whether the store answers."""

    status: Literal["ok", "unavailable"]
    ledger: str


class GroupOut(BaseModel):
    """Totals of the calls sharing one value of the grouping key."""

    key: str
    cost: str
    requests: int
    unpriced: int
    prompt_tokens: int
    completion_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    saved_by_cache: str


class SummaryOut(BaseModel):
    """Totals over a time range, and per group."""

    ledger: str
    by: str
    since: str | None
    until: str | None
    total_cost: str
    requests: int
    unpriced: int
    prompt_tokens: int
    completion_tokens: int
    saved_by_cache: str
    groups_total: int
    groups: list[GroupOut]


class RecentOut(BaseModel):
    """The newest calls, newest first."""

    ledger: str
    limit: int
    events: list[EventOut]


class ModelPriceOut(BaseModel):
    """A known price, USD per million tokens (decimal strings), and where it comes from."""

    model: str
    provider: str | None
    source: str
    source_url: str | None
    input_per_mtok: str
    output_per_mtok: str
    cache_read_per_mtok: str | None
    cache_write_per_mtok: str | None
    reasoning_per_mtok: str | None


class ModelsOut(BaseModel):
    """One page of known prices."""

    total: int
    offset: int
    limit: int
    models: list[ModelPriceOut]


class BudgetOut(BaseModel):
    """One budget scope in its current window (money as decimal strings)."""

    label: str
    window: str
    limit_usd: str | None
    spent_usd: str
    remaining_usd: str | None
    max_tokens: int | None
    tokens: int
    strict: bool
    exceeded: bool


class BudgetsOut(BaseModel):
    """Every budget scope the ledger's trackers declared."""

    ledger: str
    budgets: list[BudgetOut]


class ErrorOut(BaseModel):
    """An error that is not a validation error."""

    detail: str


_ERRORS: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorOut, "description": f"Body larger than {MAX_BODY_BYTES} bytes."},
    503: {"model": ErrorOut, "description": "The store is unreachable."},
}


# -- the store, watched for failed writes -------------------------------------------------------------------------
class _WatchedStore(Store):
    """Delegate to a store, remembering per thread the last write that failed.

    The tracker logs a failed write and goes on (it must never break its host program); the API must instead
    tell the client that its call was not recorded.
    """

    scheme = "watched"

    def __init__(self, inner: Store) -> None:
        super().__init__(inner.url)
        self.inner = inner
        self._local = threading.local()

    def take_write_error(self) -> BaseException | None:
        """Return and forget the error of this thread's last failed write."""
        error: BaseException | None = getattr(self._local, "error", None)
        self._local.error = None
        return error

    def record(
        self, ledger: str, event: Event, charges: Sequence[str] = (), reservation: str | None = None
    ) -> dict[str, tuple[int, int]]:
        try:
            return self.inner.record(ledger, event, charges, reservation)
        except Exception as exc:
            self._local.error = exc
            raise

    def reserve(
        self, ledger: str, reservation: str, checks: Sequence[Check], cost_units: int, tokens: int, ttl: float
    ) -> Check | None:
        return self.inner.reserve(ledger, reservation, checks, cost_units, tokens, ttl)

    def release(self, ledger: str, reservation: str) -> None:
        self.inner.release(ledger, reservation)

    def reservations(self, ledger: str) -> list[Reservation]:
        return self.inner.reservations(ledger)

    def release_stale(self, ledger: str, older_than: float) -> int:
        return self.inner.release_stale(ledger, older_than)

    def counters(self, ledger: str, keys: Sequence[str]) -> dict[str, tuple[int, int, int]]:
        return self.inner.counters(ledger, keys)

    def update_cost(
        self, ledger: str, call_id: str, cost_units: int, price: Price, charges: Sequence[str] = ()
    ) -> bool:
        return self.inner.update_cost(ledger, call_id, cost_units, price, charges)

    def reset(self, ledger: str) -> None:
        self.inner.reset(ledger)

    def set_meta(self, ledger: str, key: str, value: str) -> None:
        self.inner.set_meta(ledger, key, value)

    def get_meta(self, ledger: str, key: str) -> str | None:
        return self.inner.get_meta(ledger, key)

    def totals(self, ledger: str) -> Totals:
        return self.inner.totals(ledger)

    def aggregate(self, ledger: str, by: str, since: float | None = None, until: float | None = None) -> list[Group]:
        return self.inner.aggregate(ledger, by, since, until)

    def events(
        self,
        ledger: str,
        since: float | None = None,
        until: float | None = None,
        model: str | None = None,
        limit: int | None = None,
    ) -> list[Event]:
        return self.inner.events(ledger, since, until, model, limit)

    def flush(self, timeout: float | None = None) -> bool:
        return self.inner.flush(timeout)

    def close(self) -> None:
        self.inner.close()


class _StoreHealth:
    """Log a store outage once when it starts and once when it ends, not on every request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # guards _down
        self._down = False

    def failed(self, what: str, exc: BaseException) -> None:
        with self._lock:
            first, self._down = not self._down, True
        if first:
            log.warning("tokencost server: the store failed (%s): %s", what, exc)

    def ok(self) -> None:
        with self._lock:
            was_down, self._down = self._down, False
        if was_down:
            log.warning("tokencost server: the store answers again")


# -- the body and Host guard ---------------------------------------------------------------------------------------
class _Guard:
    """Reject oversized bodies (413) by ``Content-Length`` and by the bytes actually streamed, and foreign hosts.

    A body is read in full (at most ``max_body`` bytes) before the app sees it, then replayed.
    """

    def __init__(self, app: ASGIApp, max_body: int, allowed_hosts: frozenset[str] | None) -> None:
        self.app = app
        self.max_body = max_body
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = scope.get("headers") or []
        if self.allowed_hosts is not None:
            host = _host_of(next((v for k, v in headers if k == b"host"), b""))
            if host not in self.allowed_hosts:
                await _send_json(send, 400, {"detail": "unknown Host header"})
                return
        for key, value in headers:
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0:
                    await _send_json(send, 400, {"detail": "invalid Content-Length"})
                    return
                if declared > self.max_body:
                    await _send_json(send, 413, {"detail": f"request body larger than {self.max_body} bytes"})
                    return
        if scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)  # no route reads their bodies
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await _send_json(send, 413, {"detail": f"request body larger than {self.max_body} bytes"})
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _host_of(raw: bytes) -> str:
    """Return the host of a ``Host`` header without its port or IPv6 brackets, lowercased."""
    text = raw.decode("latin-1").strip().lower()
    if text.startswith("["):
        return text[1 : text.find("]")] if "]" in text else text
    return text.rsplit(":", 1)[0] if text.count(":") == 1 else text


async def _send_json(send: Send, status: int, body: Mapping[str, Any]) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


# -- helpers ----------------------------------------------------------------------------------------------------------
def _money(amount: Decimal) -> str:
    """Return USD as a plain decimal string with at least cents (``"0.02"``, ``"1.00"``; never ``"2E-2"``)."""
    return format(from_units(to_units(amount)), "f")


def _per_mtok(per_token: Decimal | None) -> str | None:
    return None if per_token is None else format((per_token * 1_000_000).normalize(), "f")


def _plain(value: Any) -> Any:
    """Return ``value`` as JSON-able data: money as decimal strings, odd objects as text."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, Decimal):
        return _money(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    return str(value)


def _event_json(event: Event) -> dict[str, Any]:
    data: dict[str, Any] = _plain(event.to_dict())
    return data


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).isoformat()


def _invalid(where: str, field: str, value: object, message: str) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": (where, field), "msg": message, "input": value}])


def _instant(value: str | None, field: str) -> float | None:
    """Parse ``since``/``until``: epoch seconds or ISO-8601 (a date, or a time; UTC when it has no offset)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    message = "must be epoch seconds or an ISO-8601 date or time (1970 to 9999)"
    try:
        number: float | None = float(text)
    except ValueError:
        number = None
    if number is None:
        if text[-1:] in ("Z", "z"):  # Python 3.10's fromisoformat does not read "Z"
            text = text[:-1] + "+00:00"
        try:
            parsed = dt.datetime.fromisoformat(text)
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=dt.timezone.utc)
            number = parsed.timestamp()
        except (ValueError, OverflowError, OSError):
            raise _invalid("query", field, value, message) from None
    if not math.isfinite(number) or not 0 <= number < _MAX_EPOCH:
        raise _invalid("query", field, value, message)
    return number


def _group_json(group: Group) -> dict[str, Any]:
    return {
        "key": group.key,
        "cost": _money(from_units(group.cost_units)),
        "requests": group.requests,
        "unpriced": group.unpriced,
        "prompt_tokens": group.prompt_tokens,
        "completion_tokens": group.completion_tokens,
        "cache_read_tokens": group.cache_read_tokens,
        "cache_write_tokens": group.cache_write_tokens,
        "reasoning_tokens": group.reasoning_tokens,
        "saved_by_cache": _money(from_units(group.saved_units)),
    }


def _range_totals(store: Store, ledger: str, since: float | None, until: float | None) -> Totals:
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


def _budget_json(line: BudgetLine) -> dict[str, Any]:
    return {
        "label": line.label,
        "window": line.window,
        "limit_usd": None if line.limit_usd is None else _money(line.limit_usd),
        "spent_usd": _money(line.spent_usd),
        "remaining_usd": None if line.remaining_usd is None else _money(line.remaining_usd),
        "max_tokens": line.max_tokens,
        "tokens": line.tokens,
        "strict": line.strict,
        "exceeded": line.exceeded,
    }


# -- /models: litellm's map plus the overrides ---------------------------------------------------------------------
_models_lock = threading.Lock()  # guards _litellm_rows_cache
_litellm_rows_cache: tuple[tuple[int, int], list[dict[str, Any]]] | None = None


def _price_row(model: str, provider: str | None, price: Price) -> dict[str, Any]:
    return {
        "model": model,
        "provider": provider,
        "source": price.source,
        "source_url": price.source_url,
        "input_per_mtok": _per_mtok(price.input),
        "output_per_mtok": _per_mtok(price.output),
        "cache_read_per_mtok": _per_mtok(price.cache_read),
        "cache_write_per_mtok": _per_mtok(price.cache_write),
        "reasoning_per_mtok": _per_mtok(price.reasoning),
    }


def _litellm_rows() -> list[dict[str, Any]]:
    """Return a row per priced entry of litellm's map, built once per version of the map."""
    global _litellm_rows_cache
    cost_map: dict[str, Any] = litellm.model_cost
    stamp = (id(cost_map), len(cost_map))
    with _models_lock:
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
        rows.append(_price_row(model, provider if isinstance(provider, str) else None, price))
    with _models_lock:
        _litellm_rows_cache = (stamp, rows)
    return rows


def _override_rows() -> list[dict[str, Any]]:
    from tokencost.pricing.override import registered_prices

    registered = registered_prices()
    return [_price_row(model, None, price) for model, price in registered.items()]


def _known_prices(q: str | None) -> list[dict[str, Any]]:
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


# -- the dashboard ----------------------------------------------------------------------------------------------------
_PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#76b7b2",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
)
_OTHER_COLOR = "#9c9c9c"
_TOP_MODELS = len(_PALETTE)
_TOP_BARS = 10
_RECENT_ROWS = 15
_MAX_GAUGES = 20
_DAY_S = 86_400


def _e(text: object) -> str:
    """Escape any text for HTML and SVG, attributes included."""
    return html.escape(str(text), quote=True)


def _short(text: str, limit: int = 32) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _usd(amount: Decimal) -> str:
    """Show USD for people: cents, or enough digits for sub-cent amounts."""
    if amount == 0:
        return "$0.00"
    if abs(amount) >= Decimal("0.01"):
        return f"${amount:,.2f}"
    return "$" + format(amount.quantize(Decimal("0.000001")).normalize(), "f")


@dataclass(frozen=True)
class _DashboardData:
    ledger: str
    now: float
    totals: Totals
    days: list[str]
    per_day: dict[str, list[tuple[str, int]]]
    by_model: list[Group]
    by_endpoint: list[Group]
    budgets: list[BudgetLine]
    recent: list[Event]


def _collect(store: Store, ledger: str, days: int, now: float) -> _DashboardData:
    today = dt.datetime.fromtimestamp(now, dt.timezone.utc).date()
    first = today - dt.timedelta(days=days - 1)
    start = dt.datetime(first.year, first.month, first.day, tzinfo=dt.timezone.utc).timestamp()
    day_names = [(first + dt.timedelta(days=i)).isoformat() for i in range(days)]
    per_day: dict[str, list[tuple[str, int]]] = {}
    # One aggregate finds the days with calls; only those are broken down by model.
    for group in store.aggregate(ledger, "day", since=start):
        if group.key not in day_names or group.requests == 0:
            continue
        day_start = dt.datetime.fromisoformat(group.key).replace(tzinfo=dt.timezone.utc).timestamp()
        models = store.aggregate(ledger, "model", since=day_start, until=day_start + _DAY_S)
        per_day[group.key] = [(g.key, g.cost_units) for g in models if g.cost_units > 0]
    return _DashboardData(
        ledger=ledger,
        now=now,
        totals=store.totals(ledger),
        days=day_names,
        per_day=per_day,
        by_model=store.aggregate(ledger, "model"),
        by_endpoint=store.aggregate(ledger, "endpoint"),
        budgets=budget_lines(store, ledger, None, now)[:_MAX_GAUGES],
        recent=list(reversed(store.events(ledger, limit=_RECENT_ROWS))),
    )


def _nice_step(peak: Decimal, ticks: int = 4) -> Decimal:
    """Return a 1, 2 or 5 times a power of ten step so ``ticks`` steps cover ``peak``."""
    raw = peak / ticks
    exponent = raw.adjusted()
    for mantissa in (1, 2, 5, 10):
        step = Decimal(mantissa).scaleb(exponent)
        if step >= raw:
            return step
    return Decimal(10).scaleb(exponent)  # pragma: no cover - 10 always covers


def _svg_daily(data: _DashboardData, colors: Mapping[str, str]) -> str:
    width, height = 1100, 260
    left, right, top, bottom = 64, 10, 12, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    stacks: dict[str, list[tuple[str, int]]] = {}
    for day in data.days:
        merged: dict[str, int] = {}
        for model, units in data.per_day.get(day, []):
            key = model if model in colors else "other"
            merged[key] = merged.get(key, 0) + units
        order = [m for m in colors if m in merged] + (["other"] if "other" in merged else [])
        stacks[day] = [(m, merged[m]) for m in order]
    peak_units = max((sum(u for _, u in stack) for stack in stacks.values()), default=0)
    if peak_units <= 0:
        return '<p class="empty">No priced calls in this period.</p>'
    peak = from_units(peak_units)
    step = _nice_step(peak)
    ticks = int((peak / step).to_integral_value(rounding=ROUND_CEILING)) or 1
    axis_top = step * ticks
    scale = plot_h / float(axis_top)
    out = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="Spend per day, stacked by model">'
    ]
    for i in range(ticks + 1):
        y = top + plot_h - float(step * i) * scale
        out.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>')
        out.append(f'<text class="axis" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_e(_usd(step * i))}</text>')
    slot = plot_w / len(data.days)
    bar_w = max(2.0, slot * 0.72)
    label_every = max(1, math.ceil(len(data.days) / 16))
    for index, day in enumerate(data.days):
        x = left + index * slot + (slot - bar_w) / 2
        y = float(top + plot_h)
        for model, units in stacks[day]:
            h = max(0.75, float(from_units(units)) * scale)
            y -= h
            tip = f"{day} · {model} · {_usd(from_units(units))}"
            out.append(
                f'<rect class="mark" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{colors.get(model, _OTHER_COLOR)}"><title>{_e(tip)}</title></rect>'
            )
        if index % label_every == 0 or index == len(data.days) - 1:
            out.append(
                f'<text class="axis" x="{x + bar_w / 2:.1f}" y="{height - bottom + 16}" '
                f'text-anchor="middle">{_e(day[5:])}</text>'
            )
    out.append("</svg>")
    shown = [m for m in colors if any(m == s for stack in stacks.values() for s, _ in stack)]
    if any(s == "other" for stack in stacks.values() for s, _ in stack):
        shown.append("other")
    legend = "".join(
        f'<span class="key"><span class="swatch" style="background:{colors.get(m, _OTHER_COLOR)}"></span>'
        f"{_e(_short(m, 40))}</span>"
        for m in shown
    )
    return "".join(out) + f'<div class="legend">{legend}</div>'


def _svg_bars(groups: Sequence[Group], colors: Mapping[str, str] | None, label: str) -> str:
    rows = [(g.key, g.cost_units) for g in groups if g.cost_units > 0]
    if not rows:
        return '<p class="empty">No priced calls yet.</p>'
    if len(rows) > _TOP_BARS:
        rest = rows[_TOP_BARS - 1 :]
        rows = [*rows[: _TOP_BARS - 1], (f"{len(rest)} more", sum(u for _, u in rest))]
    width, row_h, label_w, value_w = 560, 28, 190, 96
    bar_max = width - label_w - value_w - 8
    peak = max(u for _, u in rows)
    height = len(rows) * row_h + 4
    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="{_e(label)}">']
    for i, (key, units) in enumerate(rows):
        y = 2 + i * row_h
        w = max(1.0, bar_max * units / peak)
        color = _PALETTE[0] if colors is None else colors.get(key, _OTHER_COLOR)
        shown = "(none)" if key == NONE_KEY else key
        out.append(
            f'<text class="label" x="{label_w - 8}" y="{y + 18}" text-anchor="end">{_e(_short(shown, 28))}'
            f"<title>{_e(shown)}</title></text>"
            f'<rect class="mark" x="{label_w}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}" rx="2" '
            f'fill="{color}"><title>{_e(shown)} · {_e(_usd(from_units(units)))}</title></rect>'
            f'<text class="value" x="{label_w + w + 6:.1f}" y="{y + 18}">{_e(_usd(from_units(units)))}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def _gauges(lines: Sequence[BudgetLine]) -> str:
    if not lines:
        return '<p class="empty">No budgets declared by this ledger\'s trackers.</p>'
    width, row_h, label_w = 560, 40, 190
    bar_w = width - label_w - 8
    height = len(lines) * row_h + 4
    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="Budgets">']
    for i, line in enumerate(lines):
        y = 2 + i * row_h
        if line.limit_usd:
            fraction = line.spent_usd / line.limit_usd
            text = f"{_usd(line.spent_usd)} of {_usd(line.limit_usd)}"
        elif line.max_tokens:
            fraction = Decimal(line.tokens) / Decimal(line.max_tokens)
            text = f"{line.tokens:,} of {line.max_tokens:,} tokens"
        else:
            fraction = Decimal(1) if line.exceeded else Decimal(0)
            text = f"{_usd(line.spent_usd)} (limit 0)"
        percent = int(fraction * 100)
        color = "#d64545" if line.exceeded or fraction >= 1 else "#e6a23c" if fraction >= Decimal("0.8") else "#3c9d5d"
        fill = bar_w * float(min(fraction, Decimal(1)))
        out.append(
            f'<text class="label" x="{label_w - 8}" y="{y + 17}" text-anchor="end">'
            f"{_e(_short(line.label, 28))}<title>{_e(line.label)}</title></text>"
            f'<rect class="track" x="{label_w}" y="{y + 5}" width="{bar_w}" height="16" rx="8"/>'
            f'<rect class="mark gauge" x="{label_w}" y="{y + 5}" width="{max(fill, 0.0):.1f}" height="16" rx="8" '
            f'fill="{color}"><title>{_e(line.label)} · {_e(text)}</title></rect>'
            f'<text class="value" x="{label_w}" y="{y + 35}">{_e(text)} · {percent}%'
            f"{' · spent' if line.exceeded else ''}</text>"
        )
    out.append("</svg>")
    return "".join(out)


def _recent_table(events: Sequence[Event]) -> str:
    if not events:
        return '<p class="empty">No calls recorded yet.</p>'
    rows = []
    for event in events:
        meta = event.metadata
        when = dt.datetime.fromtimestamp(event.timestamp, dt.timezone.utc).strftime("%m-%d %H:%M:%S")
        cost = "unpriced" if event.cost is None else _usd(event.cost)
        rows.append(
            "<tr>"
            f"<td>{_e(when)}</td>"
            f'<td class="model" title="{_e(event.model)}">{_e(_short(event.model, 40))}</td>'
            f"<td>{_e(event.provider)}</td>"
            f"<td>{_e(_short(str(meta.get('endpoint', '')), 32))}</td>"
            f"<td>{_e(_short(str(meta.get('user', '')), 24))}</td>"
            f'<td class="num">{event.usage.prompt_tokens:,}</td>'
            f'<td class="num">{event.usage.completion_tokens:,}</td>'
            f'<td class="num">{_e(cost)}</td>'
            "</tr>"
        )
    return (
        '<table class="recent"><thead><tr><th>time (UTC)</th><th>model</th><th>provider</th><th>endpoint</th>'
        '<th>user</th><th class="num">in</th><th class="num">out</th><th class="num">cost</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def render_fragment(data: _DashboardData) -> str:
    """Return the dashboard's charts as HTML with inline SVG (every text escaped)."""
    colors = {g.key: _PALETTE[i] for i, g in enumerate(g for g in data.by_model if g.cost_units > 0) if i < _TOP_MODELS}
    totals = data.totals
    stamp = dt.datetime.fromtimestamp(data.now, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    cards = (
        ("Total spend", _usd(from_units(totals.cost_units))),
        ("Calls", f"{totals.requests:,}"),
        ("Unpriced calls", f"{totals.unpriced:,}"),
        ("Saved by cache", _usd(from_units(totals.saved_units))),
    )
    stats = "".join(
        f'<div class="stat"><div class="k">{_e(k)}</div><div class="v">{_e(v)}</div></div>' for k, v in cards
    )
    return (
        f'<div class="stats" data-requests="{totals.requests}" data-updated="{_e(stamp)}">{stats}</div>'
        '<div class="grid">'
        f'<section class="card wide" id="daily"><h2>Spend per day, by model <small>last {len(data.days)} days, '
        f"UTC</small></h2>{_svg_daily(data, colors)}</section>"
        f'<section class="card" id="by-model"><h2>Spend by model</h2>'
        f"{_svg_bars(data.by_model, colors, 'Spend by model')}</section>"
        f'<section class="card" id="by-endpoint"><h2>Spend by endpoint</h2>'
        f"{_svg_bars(data.by_endpoint, None, 'Spend by endpoint')}</section>"
        f'<section class="card" id="budgets"><h2>Budgets</h2>{_gauges(data.budgets)}</section>'
        f'<section class="card wide" id="recent"><h2>Recent calls</h2>{_recent_table(data.recent)}</section>'
        "</div>"
        f'<p class="foot">Data as of {_e(stamp)}.</p>'
    )


_STYLE = """
*{box-sizing:border-box}
body{margin:0;font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f4f5f7;color:#1f2328}
header{display:flex;align-items:baseline;gap:16px;padding:14px 24px;background:#1f2937;color:#fff}
header h1{margin:0;font-size:20px}header .ledger{opacity:.8}
.status{margin-left:auto;font-size:12px;opacity:.85}.status.bad{color:#ffb4b4;opacity:1}
main{padding:16px 24px}
.stats{display:grid;grid-template-columns:repeat(4,1fr);gap:12px;margin-bottom:12px}
.stat{background:#fff;border-radius:8px;padding:10px 14px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
.stat .k{font-size:12px;color:#57606a}.stat .v{font-size:22px;font-weight:600}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:12px}
.card{background:#fff;border-radius:8px;padding:12px 14px;box-shadow:0 1px 2px rgba(0,0,0,.08);min-width:0}
.card.wide{grid-column:1/-1}
.card h2{margin:0 0 8px;font-size:15px}.card h2 small{font-weight:400;color:#57606a}
svg.chart{display:block;max-width:100%;height:auto}
svg .grid{stroke:#e5e7eb}svg .axis{font-size:11px;fill:#57606a}
svg .label{font-size:12px;fill:#1f2328}svg .value{font-size:11px;fill:#57606a}svg .track{fill:#eceff3}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;margin-top:6px;font-size:12px}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px;vertical-align:-1px}
.empty{color:#57606a;font-style:italic}
table.recent{width:100%;border-collapse:collapse;font-size:12.5px}
.recent th,.recent td{padding:5px 8px;border-bottom:1px solid #eceff3;text-align:left;white-space:nowrap}
.recent td.model{max-width:320px;overflow:hidden;text-overflow:ellipsis}
.recent .num{text-align:right;font-variant-numeric:tabular-nums}
.foot{color:#57606a;font-size:12px}
.down{background:#fff4f4;border:1px solid #f3c2c2;border-radius:8px;padding:12px 14px;color:#8a1f1f}
@media (max-width:900px){.grid,.stats{grid-template-columns:1fr 1fr}.card{grid-column:1/-1}}
"""

# Re-fetch the charts and swap them in; the page itself never reloads. Keeps the last good charts when the
# server or the store is away, and says so in the header.
_SCRIPT = """
(function () {
  var main = document.getElementById("charts"), status = document.getElementById("status");
  var every = Math.max(1, parseInt(main.getAttribute("data-refresh"), 10) || 5) * 1000, busy = false;
  function refresh() {
    if (busy) { return; }
    busy = true;
    fetch(main.getAttribute("data-src"), {cache: "no-store", headers: {"Accept": "text/html"}})
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.text(); })
      .then(function (text) {
        main.innerHTML = text;
        status.textContent = "live \\u00b7 updated " + new Date().toLocaleTimeString();
        status.className = "status";
      })
      .catch(function (e) {
        status.textContent = "cannot refresh (" + e.message + "), retrying";
        status.className = "status bad";
      })
      .then(function () { busy = false; });
  }
  setInterval(refresh, every);
})();
"""


def render_page(ledger: str, fragment: str, *, days: int, refresh: int, nonce: str) -> str:
    """Return the dashboard page around a first ``fragment`` (so it shows data even without JavaScript)."""
    src = f"dashboard/fragment?days={days}"
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>tokencost · {_e(ledger)}</title><style>{_STYLE}</style></head><body>"
        f'<header><h1>tokencost</h1><span class="ledger">ledger <b>{_e(ledger)}</b></span>'
        f'<span id="status" class="status">live · refreshes every {refresh} s</span></header>'
        f'<main id="charts" data-refresh="{refresh}" data-src="{_e(src)}">{fragment}</main>'
        f'<script nonce="{_e(nonce)}">{_SCRIPT}</script></body></html>'
    )


def _down_fragment() -> str:
    return '<div class="down"><b>The store is unreachable.</b> The dashboard retries every few seconds.</div>'


def _security_headers(nonce: str | None) -> dict[str, str]:
    script = f"'nonce-{nonce}'" if nonce else "'none'"
    return {
        "Content-Security-Policy": (
            f"default-src 'none'; script-src {script}; style-src 'unsafe-inline'; connect-src 'self'; "
            "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }


# -- the app ----------------------------------------------------------------------------------------------------------
_Handler = TypeVar("_Handler", bound=Callable[..., Any])


def _route(app: FastAPI, method: str, path: str, **options: Any) -> Callable[[_Handler], _Handler]:
    """Return a decorator registering a route (FastAPI's own decorators are untyped under our mypy settings)."""
    register = app.api_route(path, methods=[method], **options)

    def decorate(handler: _Handler) -> _Handler:
        register(handler)
        return handler

    return decorate


def _resolve_token(token: str | None) -> str | None:
    if token is None:
        token = os.environ.get(TOKEN_ENV) or None
    elif not isinstance(token, str) or not token.strip():
        raise ValueError("token must be a non-empty str (or None to read TOKENCOST_SERVER_TOKEN)")
    if token is not None and (token != token.strip() or not token.isprintable() or not token.isascii()):
        raise ValueError("token must be printable ASCII without surrounding spaces (it travels in a header)")
    return token


def _open_tracker(store_url: str | Store, name: str) -> tuple[CostTracker, _WatchedStore]:
    inner = store_from_url(store_url) if isinstance(store_url, str) else store_url
    if not isinstance(inner, Store):
        raise TypeError(f"store must be a URL or a Store, not {type(store_url).__name__}")
    # Events posted here are charged to the budgets the ledger's workers declared (kept in the store), so
    # /budgets and the workers' refusals see them.
    try:
        budgets = load_budgets(inner.get_meta(name, "budgets"))
    except Exception as exc:
        log.warning("tokencost server: cannot read the ledger's budgets (the store failed): %s", exc)
        budgets = []
    store = _WatchedStore(inner)
    # Discovery off: any client could otherwise make the server run paid Linkup searches for made-up models.
    tracker = CostTracker(store=store, name=name, budgets=budgets, print_summary=False, linkup_api_key=False)
    return tracker, store


def create_app(
    store_url: str | Store,
    *,
    name: str = "default",
    token: str | None = None,
    allowed_hosts: Iterable[str] | None = None,
) -> FastAPI:
    """Build the API and dashboard app over ledger ``name`` of the store at ``store_url``.

    See ``tokencost.server.create_app`` for the arguments.
    """
    if not isinstance(name, str) or not name:
        raise ValueError("name must be a non-empty str")
    secret = _resolve_token(token)
    hosts = None if allowed_hosts is None else frozenset(h.strip("[]").lower() for h in allowed_hosts)
    tracker, store = _open_tracker(store_url, name)
    health = _StoreHealth()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await asyncio.to_thread(tracker.close)

    app = FastAPI(
        title="tokencost",
        summary="Exact LLM costs and budgets of one tokencost ledger.",
        version="1",
        lifespan=lifespan,
    )
    app.state.tracker = tracker
    app.add_middleware(_Guard, max_body=MAX_BODY_BYTES, allowed_hosts=hosts)

    def require_token(credentials: BearerCredentials) -> None:
        assert secret is not None  # only installed when a token is set
        given = credentials.credentials if credentials is not None else ""
        # Constant-time: the comparison must not tell how much of a guess was right.
        if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), secret.encode()):
            raise HTTPException(401, "missing or wrong Bearer token", headers={"WWW-Authenticate": "Bearer"})

    write_guards = [Depends(require_token)] if secret is not None else []

    def read(what: str, fn: Any) -> Any:
        try:
            result = fn()
        except Exception as exc:
            health.failed(what, exc)
            raise HTTPException(503, "store unavailable") from None
        health.ok()
        return result

    @_route(app, "GET", "/health", response_model=HealthOut, responses={503: {"model": HealthOut}}, tags=["api"])
    def get_health() -> JSONResponse:
        """Answer 200 when the store answers, 503 when it does not."""
        try:
            store.totals(name)
        except Exception as exc:
            health.failed("health", exc)
            return JSONResponse({"status": "unavailable", "ledger": name}, status_code=503)
        health.ok()
        return JSONResponse({"status": "ok", "ledger": name})

    @_route(
        app,
        "POST",
        "/track",
        response_model=EventOut,
        dependencies=write_guards,
        responses={401: {"model": ErrorOut}, **_ERRORS},
        tags=["api"],
    )
    def post_track(body: TrackRequest) -> JSONResponse:
        """Price and record one call; returns the event (money as decimal strings)."""
        if body.cache_read_tokens + body.cache_write_tokens > body.input_tokens:
            raise _invalid(
                "body", "cache_read_tokens", body.cache_read_tokens, "cache reads plus writes exceed input_tokens"
            )
        if body.reasoning_tokens > body.output_tokens:
            raise _invalid("body", "reasoning_tokens", body.reasoning_tokens, "reasoning_tokens exceed output_tokens")
        metadata: dict[str, Any] = dict(body.metadata or {})
        for key in _RESERVED_META:
            if key in metadata:
                raise _invalid("body", "metadata", key, f"metadata key {key!r} is reserved: use the {key} field")
        if body.endpoint is not None:
            metadata["endpoint"] = body.endpoint
        if body.user is not None:
            metadata["user"] = body.user
        if body.tags:
            metadata["tags"] = list(body.tags)
        store.take_write_error()
        try:
            event = tracker.track(
                model=body.model,
                prompt_tokens=body.input_tokens,
                completion_tokens=body.output_tokens,
                provider=body.provider,
                cache_read_tokens=body.cache_read_tokens,
                cache_write_tokens=body.cache_write_tokens,
                reasoning_tokens=body.reasoning_tokens,
                metadata=metadata,
            )
        except (TypeError, ValueError) as exc:
            raise _invalid("body", "model", body.model, str(exc)) from None
        error = store.take_write_error()
        if error is not None:
            health.failed("record", error)
            raise HTTPException(503, "store unavailable: the call was not recorded")
        health.ok()
        # track() returns the Event (older cores returned its dict); either way the client gets the dict.
        return JSONResponse(_event_json(event) if isinstance(event, Event) else _plain(event))

    @_route(app, "GET", "/summary", response_model=SummaryOut, responses={503: {"model": ErrorOut}}, tags=["api"])
    def get_summary(
        by: Annotated[GroupBy, Query(description="The grouping key.")] = "model",
        since: Annotated[str | None, Query(max_length=64, description="Epoch seconds or ISO-8601, inclusive.")] = None,
        until: Annotated[str | None, Query(max_length=64, description="Epoch seconds or ISO-8601, exclusive.")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_GROUPS, description="Most groups returned.")] = 100,
    ) -> JSONResponse:
        """Return totals over a time range and per group (most expensive first)."""
        start, end = _instant(since, "since"), _instant(until, "until")
        if start is not None and end is not None and end < start:
            raise _invalid("query", "until", until, "until is before since")
        groups = read("aggregate", lambda: store.aggregate(name, by, start, end))
        totals: Totals = read("totals", lambda: _range_totals(store, name, start, end))
        return JSONResponse(
            {
                "ledger": name,
                "by": by,
                "since": _iso(start),
                "until": _iso(end),
                "total_cost": _money(from_units(totals.cost_units)),
                "requests": totals.requests,
                "unpriced": totals.unpriced,
                "prompt_tokens": totals.prompt_tokens,
                "completion_tokens": totals.completion_tokens,
                "saved_by_cache": _money(from_units(totals.saved_units)),
                "groups_total": len(groups),
                "groups": [_group_json(g) for g in groups[:limit]],
            }
        )

    @_route(app, "GET", "/recent", response_model=RecentOut, responses={503: {"model": ErrorOut}}, tags=["api"])
    def get_recent(
        limit: Annotated[int, Query(ge=1, le=MAX_RECENT, description="How many calls (at most 1000).")] = 50,
    ) -> JSONResponse:
        """Return the newest calls, newest first."""
        events: list[Event] = read("events", lambda: store.events(name, limit=limit))
        return JSONResponse({"ledger": name, "limit": limit, "events": [_event_json(e) for e in reversed(events)]})

    @_route(app, "GET", "/models", response_model=ModelsOut, tags=["api"])
    def get_models(
        q: Annotated[
            str | None, Query(max_length=200, description="Keep models whose name or provider contains this.")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_MODELS_PAGE)] = 100,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> JSONResponse:
        """Return known prices (overrides, then litellm's map), USD per million tokens, a page at a time."""
        rows = _known_prices(q)
        return JSONResponse(
            {"total": len(rows), "offset": offset, "limit": limit, "models": rows[offset : offset + limit]}
        )

    @_route(app, "GET", "/budgets", response_model=BudgetsOut, responses={503: {"model": ErrorOut}}, tags=["api"])
    def get_budgets() -> JSONResponse:
        """Return every budget scope the ledger's trackers declared, in its current window."""
        lines: list[BudgetLine] = read("budgets", lambda: budget_lines(store, name))
        return JSONResponse({"ledger": name, "budgets": [_budget_json(line) for line in lines]})

    def dashboard_data(days: int) -> _DashboardData:
        return _collect(store, name, days, time.time())

    @_route(app, "GET", "/", response_class=HTMLResponse, tags=["dashboard"])
    def get_dashboard(
        days: Days = 14,
        refresh: Annotated[int, Query(ge=1, le=3600, description="Seconds between refreshes.")] = 5,
    ) -> HTMLResponse:
        """Serve the dashboard page."""
        status = 200
        try:
            fragment = render_fragment(dashboard_data(days))
            health.ok()
        except Exception as exc:
            health.failed("dashboard", exc)
            fragment, status = _down_fragment(), 503
        nonce = secrets.token_urlsafe(16)
        page = render_page(name, fragment, days=days, refresh=refresh, nonce=nonce)
        return HTMLResponse(page, status_code=status, headers=_security_headers(nonce))

    @_route(app, "GET", "/dashboard/fragment", response_class=HTMLResponse, tags=["dashboard"])
    def get_fragment(days: Days = 14) -> HTMLResponse:
        """Serve the dashboard's charts (the page swaps them in every few seconds)."""
        try:
            fragment = render_fragment(dashboard_data(days))
        except Exception as exc:
            health.failed("dashboard", exc)
            return HTMLResponse(_down_fragment(), status_code=503, headers=_security_headers(None))
        health.ok()
        return HTMLResponse(fragment, headers=_security_headers(None))

    return app


# -- serve ------------------------------------------------------------------------------------------------------------
def serve(
    store_url: str,
    *,
    name: str = "default",
    host: str = "127.0.0.1",
    port: int = 8000,
    token: str | None = None,
    log_level: str = "info",
) -> None:
    """Serve the app with uvicorn until interrupted; see ``tokencost.server.serve``."""
    try:
        import uvicorn
    except ImportError as exc:
        from tokencost.errors import MissingExtraError

        raise MissingExtraError("server", "uvicorn") from exc
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be an int from 0 to 65535, got {port!r}")
    secret = _resolve_token(token)
    loopback = is_loopback(host)
    if not loopback and secret is None:
        raise ValueError(
            f"refusing to serve on {host} without a token: anyone who reaches it could write to the ledger; "
            f"pass --token or set {TOKEN_ENV}"
        )
    app = create_app(store_url, name=name, token=secret, allowed_hosts=_LOOPBACK_NAMES if loopback else None)
    uvicorn.run(app, host=host, port=port, log_level=log_level, server_header=False)

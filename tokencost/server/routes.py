"""The JSON API of ``tokencost serve``, over one ledger of one store (the dashboard's routes: ``dashboard_routes``).

Every JSON route builds its body with ``shapes`` and sends it through ``respond``, which validates it against the
route's response model first: what the OpenAPI schema promises is what leaves. A store that fails a read gives
503 (and is logged once per outage, ``StoreHealth``); a body that does not match its model is a bug and gives 500.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from fastapi import FastAPI, Query
from fastapi.exceptions import HTTPException, RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from tokencost.budget_line import BudgetLine
from tokencost.budgets import budget_lines
from tokencost.errors import MissingExtraError
from tokencost.events import Event
from tokencost.reports import Summary, build_summary
from tokencost.server.metrics import LedgerMetrics, metrics_text, read_metrics
from tokencost.server.middleware import MAX_BODY_BYTES, read_guards, write_guards
from tokencost.server.prices import known_prices
from tokencost.server.query_params import Filters, FiltersParam
from tokencost.server.schemas import (
    MAX_GROUPS,
    MAX_MODELS_PAGE,
    MAX_RECENT,
    BudgetsOut,
    ErrorOut,
    EventOut,
    GroupBy,
    HealthOut,
    ModelsOut,
    RecentOut,
    ResponseModel,
    SummaryOut,
    TrackRequest,
)
from tokencost.server.shapes import budget_json, event_json, plain, summary_json
from tokencost.server.watched import StoreHealth, WatchedStore
from tokencost.tracker import CostTracker
from tokencost.when import parse_range, parse_when
from tokencost.where import Where

__all__ = ["Served", "add_routes", "instant", "invalid", "read_where", "respond", "route"]

# Metadata keys POST /track fills from its own fields.
_RESERVED_META = ("endpoint", "user", "tags")
_ERRORS: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorOut, "description": f"Body larger than {MAX_BODY_BYTES} bytes."},
    503: {"model": ErrorOut, "description": "The store is unreachable."},
}


@dataclass(frozen=True)
class Served:
    """What the routes serve: one ledger (``name``) of a watched store, and the tracker that writes to it."""

    name: str
    tracker: CostTracker
    store: WatchedStore
    health: StoreHealth
    secret: str | None
    read_secret: str | None = None
    """When set, every read but ``/health`` needs it (or ``secret``)."""
    clock: Callable[[], float] = time.time
    """The current time, for relative times (``7d``), budget windows and forecasts."""


def respond(model: type[ResponseModel], body: Mapping[str, Any], status_code: int = 200) -> JSONResponse:
    """Validate ``body`` against ``model`` (strictly, no extra field) and send what the model holds.

    Raises:
        pydantic.ValidationError: when ``body`` does not match ``model`` (the app answers 500).
    """
    checked = model.model_validate(body)
    return JSONResponse(checked.model_dump(mode="json"), status_code=status_code)


def invalid(where: str, field: str, value: object, message: str) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": (where, field), "msg": message, "input": value}])


def instant(value: str | None, field: str, now: float | None = None) -> float | None:
    """Parse ``since``/``until`` with the one time parser (``tokencost.when``): epoch seconds, ISO-8601, ``7d``,
    ``yesterday``...; a date alone as ``until`` includes that whole day.

    Raises:
        RequestValidationError: naming ``field`` (the client gets 422).
    """
    if value is None or not value.strip():
        return None
    try:
        return parse_when(value, field, end=field == "until", now=now)
    except ValueError as exc:
        raise invalid("query", field, value, str(exc)) from None


def read_where(filters: Filters) -> Where:
    """Read the filter parameters into a ``Where``.

    Raises:
        RequestValidationError: naming the parameter (the client gets 422).
    """
    try:
        return Where.from_params(filters.named, filters.where)
    except ValueError as exc:
        raise invalid("query", "where", list(filters.where), str(exc)) from None


_Handler = TypeVar("_Handler", bound=Callable[..., Any])


def route(app: FastAPI, method: str, path: str, **options: Any) -> Callable[[_Handler], _Handler]:
    """Return a decorator registering a route (FastAPI's own decorators are untyped under our mypy settings)."""
    register = app.api_route(path, methods=[method], **options)

    def decorate(handler: _Handler) -> _Handler:
        register(handler)
        return handler

    return decorate


def add_routes(app: FastAPI, served: Served) -> None:
    """Register the API routes over ``served`` on ``app``."""
    name, tracker, store, health = served.name, served.tracker, served.store, served.health
    reads = read_guards(served.read_secret, served.secret)

    def read(what: str, fn: Any) -> Any:
        try:
            result = fn()
        except Exception as exc:
            health.failed(what, exc)
            raise HTTPException(503, "store unavailable") from None
        health.ok()
        return result

    @route(app, "GET", "/health", response_model=HealthOut, responses={503: {"model": HealthOut}}, tags=["api"])
    def get_health() -> JSONResponse:
        """Answer 200 when the store answers, 503 when it does not."""
        try:
            store.totals(name)
        except Exception as exc:
            health.failed("health", exc)
            return respond(HealthOut, {"status": "unavailable", "ledger": name}, status_code=503)
        health.ok()
        return respond(HealthOut, {"status": "ok", "ledger": name})

    @route(
        app,
        "POST",
        "/track",
        response_model=EventOut,
        dependencies=write_guards(served.secret),
        responses={401: {"model": ErrorOut}, **_ERRORS},
        tags=["api"],
    )
    def post_track(body: TrackRequest) -> JSONResponse:
        """Price and record one call; returns the event (money as decimal strings)."""
        if body.cache_read_tokens + body.cache_write_tokens > body.prompt_tokens:
            raise invalid(
                "body", "cache_read_tokens", body.cache_read_tokens, "cache reads plus writes exceed prompt_tokens"
            )
        if body.reasoning_tokens > body.completion_tokens:
            raise invalid(
                "body", "reasoning_tokens", body.reasoning_tokens, "reasoning_tokens exceed completion_tokens"
            )
        metadata: dict[str, Any] = dict(body.metadata or {})
        for key in _RESERVED_META:
            if key in metadata:
                raise invalid("body", "metadata", key, f"metadata key {key!r} is reserved: use the {key} field")
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
                prompt_tokens=body.prompt_tokens,
                completion_tokens=body.completion_tokens,
                provider=body.provider,
                cache_read_tokens=body.cache_read_tokens,
                cache_write_tokens=body.cache_write_tokens,
                reasoning_tokens=body.reasoning_tokens,
                metadata=metadata,
            )
        except (TypeError, ValueError) as exc:
            raise invalid("body", "model", body.model, str(exc)) from None
        error = store.take_write_error()
        if error is not None:
            health.failed("record", error)
            raise HTTPException(503, "store unavailable: the call was not recorded")
        health.ok()
        # track() returns the Event (older cores returned its dict); either way the client gets the dict.
        return respond(EventOut, event_json(event) if isinstance(event, Event) else plain(event))

    @route(
        app,
        "GET",
        "/summary",
        dependencies=reads,
        response_model=SummaryOut,
        responses={503: {"model": ErrorOut}},
        tags=["api"],
    )
    def get_summary(
        filters: FiltersParam,
        by: Annotated[GroupBy, Query()] = "model",
        since: Annotated[str | None, Query(max_length=64, description="Inclusive: 2026-12-01, 7d, epoch...")] = None,
        until: Annotated[str | None, Query(max_length=64, description="Exclusive; a date alone: its end.")] = None,
        window: Annotated[Literal["day", "month"] | None, Query(description="The current UTC day or month.")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_GROUPS, description="Most groups returned.")] = 100,
    ) -> JSONResponse:
        """Return what ``tokencost report --json`` prints: totals, groups (most expensive first), budgets; only the
        calls the filters match (``model``, ``user``, ``tag``, ``where=KEY=VALUE``) when given."""
        since, until = since or None, until or None
        now = served.clock()
        instant(since, "since", now)  # 422 naming the field for a bad time
        instant(until, "until", now)
        try:
            parse_range(since, until, now=now)
        except ValueError as exc:
            raise invalid("query", "until", until, str(exc)) from None
        if window is not None and (since or until):
            raise invalid("query", "window", window, "give window or since/until, not both")
        where = read_where(filters)
        summary: Summary = read(
            "summary",
            lambda: build_summary(store, name, window=window, by=by, since=since, until=until, where=where, now=now),
        )
        return respond(SummaryOut, summary_json(summary, limit))

    @route(
        app,
        "GET",
        "/recent",
        dependencies=reads,
        response_model=RecentOut,
        responses={503: {"model": ErrorOut}},
        tags=["api"],
    )
    def get_recent(
        limit: Annotated[int, Query(ge=1, le=MAX_RECENT, description="How many calls (at most 1000).")] = 50,
    ) -> JSONResponse:
        """Return the newest calls, newest first."""
        events: list[Event] = read("events", lambda: store.events(name, limit=limit))
        return respond(RecentOut, {"ledger": name, "limit": limit, "events": [event_json(e) for e in reversed(events)]})

    @route(app, "GET", "/models", dependencies=reads, response_model=ModelsOut, tags=["api"])
    def get_models(
        q: Annotated[
            str | None, Query(max_length=200, description="Keep models whose name or provider contains this.")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_MODELS_PAGE)] = 100,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> JSONResponse:
        """Return known prices (overrides, then litellm's map), USD per million tokens, a page at a time."""
        rows = known_prices(q)
        return respond(
            ModelsOut, {"total": len(rows), "offset": offset, "limit": limit, "models": rows[offset : offset + limit]}
        )

    @route(
        app,
        "GET",
        "/budgets",
        dependencies=reads,
        response_model=BudgetsOut,
        responses={503: {"model": ErrorOut}},
        tags=["api"],
    )
    def get_budgets() -> JSONResponse:
        """Return every budget scope the ledger's trackers declared, in its current window."""
        lines: list[BudgetLine] = read("budgets", lambda: budget_lines(store, name, None, served.clock()))
        return respond(BudgetsOut, {"ledger": name, "budgets": [budget_json(line) for line in lines]})

    @route(
        app,
        "GET",
        "/metrics",
        dependencies=reads,
        response_class=PlainTextResponse,
        responses={501: {"model": ErrorOut}, 503: {"model": ErrorOut}},
        tags=["metrics"],
    )
    def get_metrics() -> Response:
        """Return the ledger in Prometheus' text format: spend, calls and tokens in total and per model, user and
        tag; each budget scope's spent, limit and remaining (``tokencost.server.metrics`` lists the series)."""
        data: LedgerMetrics = read("metrics", lambda: read_metrics(store, name))
        try:
            body, content_type = metrics_text(data)
        except MissingExtraError as exc:
            raise HTTPException(501, str(exc)) from None
        return Response(body, media_type=content_type)

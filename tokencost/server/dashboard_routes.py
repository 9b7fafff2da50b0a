"""The dashboard's routes: the page (``/``), the fragment it refreshes (``/dashboard/fragment``) and the calls
view a bar leads to (``/calls``), each showing the view its URL asks for (``view``: range and filters).

A store that fails a read shows "unreachable" (503); a view that cannot be read (a bad date or filter) shows what
is wrong, naming the parameter (422); a failure drawing data read fine is a bug (500).
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import FastAPI, Query
from fastapi.responses import HTMLResponse

from tokencost.reports import build_summary, newest_events
from tokencost.server.dashboard import DashboardData, collect
from tokencost.server.middleware import READ_COOKIE, read_guards
from tokencost.server.query_params import Filters, FiltersParam, Range, RangeParam
from tokencost.server.render import (
    down_fragment,
    error_fragment,
    render_calls,
    render_fragment,
    render_page,
    security_headers,
)
from tokencost.server.routes import Served, route
from tokencost.server.view import DEFAULT_DAYS, View, read_view
from tokencost.where import Where

__all__ = ["MAX_CALLS", "add_dashboard_routes"]

MAX_CALLS = 1000


def _view(served: Served, when: Range, filters: Filters) -> View:
    """The view a request asks for, at the server's clock.

    Raises:
        ValueError: naming the parameter.
    """
    try:
        where = Where.from_params(filters.named, filters.where)
    except ValueError as exc:
        raise ValueError(f"where: {exc}") from None
    return read_view(since=when.since, until=when.until, days=when.days, where=where, now=served.clock())


def add_dashboard_routes(app: FastAPI, served: Served) -> None:
    """Register the dashboard's routes over ``served`` on ``app``."""
    name, store, health = served.name, served.store, served.health
    reads = read_guards(served.read_secret, served.secret)

    def dashboard_data(view: View) -> DashboardData:
        """Every store read of one look at the dashboard (a failure here is the store's: 503)."""
        return collect(store, name, view)

    def blank_view() -> View:
        return read_view(since=None, until=None, days=DEFAULT_DAYS, where=Where(), now=served.clock())

    @route(app, "GET", "/", dependencies=reads, response_class=HTMLResponse, tags=["dashboard"])
    def get_dashboard(
        when: RangeParam,
        filters: FiltersParam,
        refresh: Annotated[int, Query(ge=1, le=3600, description="Seconds between refreshes.")] = 5,
        token: Annotated[str | None, Query(max_length=512, description="The read token (kept in a cookie).")] = None,
    ) -> HTMLResponse:
        """Serve the dashboard page of the view the query asks for."""
        status = 200
        options: dict[str, list[str]] = {}
        try:
            view = _view(served, when, filters)
        except ValueError as exc:
            view, fragment, status = blank_view(), error_fragment(str(exc)), 422
        else:
            try:
                data = dashboard_data(view)
            except Exception as exc:
                health.failed("dashboard", exc)
                fragment, status = down_fragment(), 503
            else:
                health.ok()
                fragment = render_fragment(data)  # outside the try: a drawing bug is a 500, not a store outage
                options = {f"{key}s": [row.key for row in data.breakdowns[key]] for key in ("model", "user", "tag")}
        nonce = secrets.token_urlsafe(16)
        page = render_page(name, fragment, view=view, refresh=refresh, nonce=nonce, options=options)
        response = HTMLResponse(page, status_code=status, headers=security_headers(nonce))
        if served.read_secret is not None and token:
            # Opened as /?token=...: the page's refreshes carry the (already checked) token in a cookie.
            response.set_cookie(READ_COOKIE, token, httponly=True, samesite="strict")
        return response

    @route(app, "GET", "/dashboard/fragment", dependencies=reads, response_class=HTMLResponse, tags=["dashboard"])
    def get_fragment(when: RangeParam, filters: FiltersParam) -> HTMLResponse:
        """Serve the dashboard's charts (the page swaps them in every few seconds), for the same view."""
        try:
            view = _view(served, when, filters)
        except ValueError as exc:
            return HTMLResponse(error_fragment(str(exc)), status_code=422, headers=security_headers(None))
        try:
            data = dashboard_data(view)
        except Exception as exc:
            health.failed("dashboard", exc)
            return HTMLResponse(down_fragment(), status_code=503, headers=security_headers(None))
        health.ok()
        return HTMLResponse(render_fragment(data), headers=security_headers(None))

    @route(app, "GET", "/calls", dependencies=reads, response_class=HTMLResponse, tags=["dashboard"])
    def get_calls(
        when: RangeParam,
        filters: FiltersParam,
        limit: Annotated[int, Query(ge=1, le=MAX_CALLS, description="How many calls, newest first.")] = 200,
    ) -> HTMLResponse:
        """Serve the calls of a view, newest first: where a bar of the dashboard leads."""
        try:
            view = _view(served, when, filters)
        except ValueError as exc:
            page = render_calls(name, blank_view(), None, [], error=str(exc))
            return HTMLResponse(page, status_code=422, headers=security_headers(None))
        try:
            summary = build_summary(store, name, since=view.start, until=view.stop, where=view.where, now=view.now)
            events = newest_events(store, name, limit, view.start, view.stop, view.where)
        except Exception as exc:
            health.failed("calls", exc)
            page = render_calls(name, view, None, [])
            return HTMLResponse(page, status_code=503, headers=security_headers(None))
        health.ok()
        return HTMLResponse(render_calls(name, view, summary, events), headers=security_headers(None))

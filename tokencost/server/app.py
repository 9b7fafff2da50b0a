"""The FastAPI app behind ``tokencost serve``: a JSON API over one ledger and a dashboard drawn as server-side SVG.

Routes (OpenAPI at ``/docs`` and ``/openapi.json``):

* ``GET /health``: 200 when the store answers, 503 when it does not.
* ``POST /track``: price and record a call made anywhere (Bearer token when one is set).
* ``GET /summary``, ``GET /recent``, ``GET /models``, ``GET /budgets``: reads.
* ``GET /metrics``: the ledger in Prometheus' text format (``metrics``), a read like the others.
* ``GET /``: the dashboard; ``GET /dashboard/fragment``: its charts, which the page re-fetches every few seconds;
  ``GET /calls``: the calls of a view (where a bar leads). All three take the view's range and filters (``view``).

Money leaves the server as decimal strings (``"0.02"``), never as JSON floats. Every text a client or a worker
wrote (model names, metadata) is HTML-escaped before it reaches the dashboard.

The parts: ``routes`` (the API's routes), ``schemas`` (request and response models, enforced), ``shapes`` (store
objects into response bodies), ``prices`` (the ``/models`` rows), ``metrics`` (the ``/metrics``
exposition), ``dashboard_routes`` (the dashboard's),
``view`` and ``query_params`` (a view's range and filters, from its URL), ``dashboard`` (the dashboard's data),
``charts``, ``budget_charts`` and ``render`` (its SVG and HTML, from ``templates/`` and ``static/``),
``middleware`` (body limit, ``Host`` check, token), ``watched`` (failed writes and outages). This module builds
the app and serves it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from tokencost.budgets import load_budgets
from tokencost.server.apidocs import add_api_docs
from tokencost.server.dashboard_routes import add_dashboard_routes
from tokencost.server.loopback import is_loopback
from tokencost.server.middleware import MAX_BODY_BYTES, READ_TOKEN_ENV, TOKEN_ENV, BodyAndHostGuard, resolve_token
from tokencost.server.render import render_fragment, render_page
from tokencost.server.routes import Served, add_routes
from tokencost.server.watched import StoreHealth, WatchedStore
from tokencost.stores import Store, store_from_url
from tokencost.tracker import CostTracker

__all__ = ["MAX_BODY_BYTES", "TOKEN_ENV", "create_app", "is_loopback", "render_fragment", "render_page", "serve"]

log = logging.getLogger("tokencost")

_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def _open_tracker(
    store_url: str | Store, name: str, clock: Callable[[], float] | None
) -> tuple[CostTracker, WatchedStore]:
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
    store = WatchedStore(inner)
    # Discovery off: any client could otherwise make the server run paid Linkup searches for made-up models.
    tracker = CostTracker(
        store=store, name=name, budgets=budgets, print_summary=False, linkup_api_key=False, clock=clock
    )
    return tracker, store


def create_app(
    store_url: str | Store,
    *,
    name: str = "default",
    token: str | None = None,
    allowed_hosts: Iterable[str] | None = None,
    read_token: str | None = None,
    clock: Callable[[], float] | None = None,
) -> FastAPI:
    """Build the API and dashboard app over ledger ``name`` of the store at ``store_url``.

    See ``tokencost.server.create_app`` for the arguments.
    """
    if not isinstance(name, str) or not name:
        raise ValueError("name must be a non-empty str")
    secret = resolve_token(token)
    read_secret = resolve_token(read_token, READ_TOKEN_ENV)
    hosts = None if allowed_hosts is None else frozenset(h.strip("[]").lower() for h in allowed_hosts)
    tracker, store = _open_tracker(store_url, name, clock)

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
        docs_url=None,  # Swagger UI loads its scripts from a CDN: /docs is our own page, which needs none
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.tracker = tracker
    app.add_middleware(BodyAndHostGuard, max_body=MAX_BODY_BYTES, allowed_hosts=hosts)
    add_api_docs(app)
    served = Served(
        name=name,
        tracker=tracker,
        store=store,
        health=StoreHealth(),
        secret=secret,
        read_secret=read_secret,
        clock=clock or time.time,
    )
    add_routes(app, served)
    add_dashboard_routes(app, served)
    return app


def bind(host: str, port: int) -> socket.socket:
    """Return a listening socket on ``host:port`` (``port`` 0: any free port).

    Raises:
        OSError: naming the address, when it is taken or cannot be listened on.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        shown = f"[{host}]" if ":" in host else host
        raise OSError(exc.errno, f"cannot listen on {shown}:{port}: {exc.strerror or exc}") from exc
    sock.set_inheritable(True)
    return sock


def serve(
    store_url: str,
    *,
    name: str = "default",
    host: str = "127.0.0.1",
    port: int = 8000,
    token: str | None = None,
    read_token: str | None = None,
    log_level: str = "info",
    on_listening: Callable[[str], None] | None = None,
) -> None:
    """Serve the app with uvicorn until interrupted; see ``tokencost.server.serve``."""
    try:
        import uvicorn
    except ImportError as exc:
        from tokencost.errors import MissingExtraError

        raise MissingExtraError("server", "uvicorn") from exc
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be an int from 0 to 65535, got {port!r}")
    secret = resolve_token(token)
    read_secret = resolve_token(read_token, READ_TOKEN_ENV)
    loopback = is_loopback(host)
    if not loopback and secret is None:
        raise ValueError(
            f"refusing to serve on {host} without a token: anyone who reaches it could write to the ledger; "
            f"pass --token or set {TOKEN_ENV}"
        )
    app = create_app(
        store_url,
        name=name,
        token=secret,
        read_token=read_secret,
        allowed_hosts=_LOOPBACK_NAMES if loopback else None,
    )
    sock = bind(host, port)  # before anything says "serving": a port in use fails here
    try:
        config = uvicorn.Config(app, log_level=log_level, server_header=False)
        if on_listening is not None:
            bound = sock.getsockname()[1]
            shown = f"[{host}]" if ":" in host else host
            on_listening(f"http://{shown}:{bound}/")
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()

"""``tokencost serve``: a REST API and a live cost dashboard over any tokencost store (extra ``[server]``).

FastAPI and uvicorn are imported only when a server is built, so ``import tokencost.server`` costs nothing and
a missing extra is reported as ``MissingExtraError`` naming it.

Example::

    from tokencost.server import create_app

    app = create_app("sqlite:///costs.db", token="s3cret")  # any ASGI server can run it
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

from tokencost.errors import MissingExtraError
from tokencost.server.loopback import is_loopback

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from fastapi import FastAPI

    from tokencost.stores.base import Store

__all__ = ["create_app", "is_loopback", "serve"]


def _app_module() -> ModuleType:
    try:
        importlib.import_module("fastapi")
    except ImportError as exc:
        raise MissingExtraError("server", "fastapi") from exc
    return importlib.import_module("tokencost.server.app")


def create_app(
    store_url: str | Store,
    *,
    name: str = "default",
    token: str | None = None,
    allowed_hosts: Iterable[str] | None = None,
    read_token: str | None = None,
    clock: Callable[[], float] | None = None,
) -> FastAPI:
    """Build the API and dashboard app over one ledger (``name``) of the store at ``store_url``.

    Args:
        store_url: the store's URL (``memory://``, ``sqlite:///costs.db``, ``redis://...``) or a ``Store``.
        name: the ledger, as the workers' ``CostTracker(name=...)``.
        token: the Bearer token ``POST /track`` requires; else ``TOKENCOST_SERVER_TOKEN``; writes are open
            when neither is set.
        allowed_hosts: when given, requests whose ``Host`` header names another host get 400 (guards a
            loopback server against DNS rebinding; ``serve`` sets it when binding a loopback address).
        read_token: the token every read but ``/health`` then needs (or ``token``), as a Bearer header, the
            dashboard's ``/?token=`` (kept in a cookie) or ``?token=``; else ``TOKENCOST_SERVER_READ_TOKEN``;
            reads are open when neither is set.
        clock: the current time (epoch seconds), for the events ``POST /track`` records, relative times
            (``since=7d``), budget windows and the dashboard's forecasts; default ``time.time`` (for tests).

    Raises:
        MissingExtraError: when FastAPI is not installed.
        ValueError, TypeError: for a bad store URL, ledger name or token.
    """
    module = _app_module()
    app: FastAPI = module.create_app(
        store_url, name=name, token=token, allowed_hosts=allowed_hosts, read_token=read_token, clock=clock
    )
    return app


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
    """Serve the API and dashboard with uvicorn until interrupted.

    Refuses a non-loopback ``host`` without a token (``token`` or ``TOKENCOST_SERVER_TOKEN``): anyone who
    reaches the port could write to the ledger. The token protects writes only; ``read_token`` protects reads.
    ``on_listening(url)`` is called once the port is bound, before serving (a port in use raises ``OSError``
    before it).

    Raises:
        MissingExtraError: when FastAPI or uvicorn is not installed.
        ValueError: for a non-loopback host without a token, a bad port, store URL or ledger name.
    """
    module = _app_module()
    module.serve(
        store_url,
        name=name,
        host=host,
        port=port,
        token=token,
        read_token=read_token,
        log_level=log_level,
        on_listening=on_listening,
    )

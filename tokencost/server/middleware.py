"""What guards the app: the body limit and the ``Host`` check (an ASGI middleware), and the write token."""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.exceptions import HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "MAX_BODY_BYTES",
    "READ_COOKIE",
    "READ_TOKEN_ENV",
    "TOKEN_ENV",
    "BodyAndHostGuard",
    "read_guards",
    "resolve_token",
    "write_guards",
]

TOKEN_ENV = "TOKENCOST_SERVER_TOKEN"
READ_TOKEN_ENV = "TOKENCOST_SERVER_READ_TOKEN"
# The cookie the dashboard keeps a read token in once opened as /?token=..., so its refreshes carry it.
READ_COOKIE = "tokencost_read"
MAX_BODY_BYTES = 64 * 1024

_BEARER = HTTPBearer(auto_error=False, description="The server's token (--token or TOKENCOST_SERVER_TOKEN).")
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]


# -- the body and Host guard -----------------------------------------------------------------------------------
class BodyAndHostGuard:
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
            host = host_of(next((v for k, v in headers if k == b"host"), b""))
            if host not in self.allowed_hosts:
                await send_json(send, 400, {"detail": "unknown Host header"})
                return
        for key, value in headers:
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0:
                    await send_json(send, 400, {"detail": "invalid Content-Length"})
                    return
                if declared > self.max_body:
                    await send_json(send, 413, {"detail": f"request body larger than {self.max_body} bytes"})
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
                await send_json(send, 413, {"detail": f"request body larger than {self.max_body} bytes"})
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


def host_of(raw: bytes) -> str:
    """Return the host of a ``Host`` header without its port or IPv6 brackets, lowercased."""
    text = raw.decode("latin-1").strip().lower()
    if text.startswith("["):
        return text[1 : text.find("]")] if "]" in text else text
    return text.rsplit(":", 1)[0] if text.count(":") == 1 else text


async def send_json(send: Send, status: int, body: Mapping[str, Any]) -> None:
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


# -- the write token ---------------------------------------------------------------------------------------------
def resolve_token(token: str | None, env: str = TOKEN_ENV) -> str | None:
    """Return the token writes (or reads) need: ``token``, else the variable ``env``, else ``None`` (open)."""
    if token is None:
        token = os.environ.get(env) or None
    elif not isinstance(token, str) or not token.strip():
        raise ValueError("token must be a non-empty str (or None to read TOKENCOST_SERVER_TOKEN)")
    if token is not None and (token != token.strip() or not token.isprintable() or not token.isascii()):
        raise ValueError("token must be printable ASCII without surrounding spaces (it travels in a header)")
    return token


def _same(given: str, secret: str) -> bool:
    # Constant-time: the comparison must not tell how much of a guess was right.
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), secret.encode())


def read_guards(read_secret: str | None, write_secret: str | None) -> list[Any]:
    """Return the dependencies of a reading route: with a read token set, the read or the write token is needed
    (``Authorization: Bearer``, or the dashboard's cookie, or ``?token=``); without one, reads are open."""
    if read_secret is None:
        return []
    secrets = [read_secret] + ([write_secret] if write_secret else [])

    def require_read_token(request: Request, credentials: BearerCredentials) -> None:
        given = (
            (credentials.credentials if credentials is not None else "")
            or request.query_params.get("token", "")
            or request.cookies.get(READ_COOKIE, "")
        )
        if not any(_same(given, secret) for secret in secrets):
            raise HTTPException(
                401, "missing or wrong token (reads need the read token)", {"WWW-Authenticate": "Bearer"}
            )

    return [Depends(require_read_token)]


def write_guards(secret: str | None) -> list[Any]:
    """Return the dependencies of a writing route: the Bearer token check when a token is set, else none."""
    if secret is None:
        return []

    def require_token(credentials: BearerCredentials) -> None:
        given = credentials.credentials if credentials is not None else ""
        if not _same(given, secret):
            raise HTTPException(401, "missing or wrong Bearer token", headers={"WWW-Authenticate": "Bearer"})

    return [Depends(require_token)]

"""Budget alerts that leave the process: ``CostTracker(alert_at=..., alert_webhook=URL)`` posts each alert as JSON.

``Webhook`` sends from a background thread of its own, so neither the user's call nor the tracker's lock ever
waits for the network: ``send()`` puts the alert in a small bounded queue and returns (a full queue drops the
alert and logs it once). Each alert is posted with a bounded timeout and retried a bounded number of times with
exponential backoff on network errors, timeouts, 408, 429 and 5xx; a failure is logged once on the logger
``tokencost`` (until an alert is delivered again) and never raised. ``close()`` gives the queue a bounded time
to drain, then stops the thread. The thread also stops on its own after a while without alerts (started again
by the next one), so a tracker that is never closed leaves no thread behind.

The URL may hold a secret (a Slack webhook's path is one): nothing tokencost logs or raises names more than its
host. Only the standard library is used (``urllib.request``).

Bodies (``alert_body``): a JSON object ``{"type": "budget_alert", "ledger", "scope", "fraction", "spent",
"limit", "timestamp", "text"}`` with money as decimal strings (docs/json.md), or for a Slack webhook
(``hooks.slack.com``, or ``format="slack"`` for a Slack-compatible receiver) ``{"text": ...}``.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from decimal import Decimal
from typing import Any, Literal

from tokencost.ledger import OnceLog
from tokencost.money import format_usd, usd_text

__all__ = ["SLACK_HOSTS", "Webhook", "alert_body", "as_webhook"]

WebhookFormat = Literal["auto", "json", "slack"]

SLACK_HOSTS = frozenset({"hooks.slack.com", "hooks.slack-gov.com"})
# The worker thread stops after this long without an alert (the next alert starts it again).
IDLE_S = 10.0
# What close() waits at most for queued alerts by default; at interpreter exit the tracker waits less.
CLOSE_TIMEOUT_S = 5.0
_RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
_MAX_BACKOFF_S = 30.0


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are not followed: a webhook that moves is a failure to report, not a place to post to."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def _user_agent() -> str:
    try:
        from importlib.metadata import version

        return f"tokencost/{version('tokencost-ledger')}"
    except Exception:
        return "tokencost"


def _check_url(url: object, arg: str) -> urllib.parse.SplitResult:
    """Return the parts of an http(s) URL, or raise naming ``arg`` (never the URL: it may hold a secret)."""
    if not isinstance(url, str):
        raise TypeError(f"{arg} must be a URL (str) or a tokencost.webhooks.Webhook, not {type(url).__name__}")
    if not url or url != url.strip() or not url.isprintable() or any(c.isspace() for c in url):
        raise ValueError(f"{arg} must be an http:// or https:// URL without spaces or control characters")
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - reading it checks the port
    except ValueError:
        raise ValueError(f"{arg} must be an http:// or https:// URL (it could not be read as one)") from None
    if parts.scheme not in ("http", "https"):
        shown = f"a {parts.scheme}: URL" if parts.scheme.isalnum() else "not an http(s) URL"
        raise ValueError(f"{arg} must be an http:// or https:// URL, got {shown}")
    if not parts.hostname:
        raise ValueError(f"{arg} must be an http:// or https:// URL with a host")
    return parts


def _check_number(value: object, arg: str, *, low: float, high: float, integer: bool = False) -> float:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:
        kind = "an int" if integer else "a number"
        raise ValueError(f"{arg} must be {kind} from {low:g} to {high:g}, got {value!r}")
    return float(value)


def alert_body(
    fmt: Literal["json", "slack"],
    *,
    ledger: str,
    scope: str,
    fraction: float,
    spent: Decimal,
    limit: Decimal,
    timestamp: float,
) -> dict[str, Any]:
    """Return the body of one alert: ``scope`` reached ``fraction`` of its ``limit`` (``spent`` so far).

    ``json``: every field, money as decimal strings, ``timestamp`` ISO-8601 UTC; ``slack``: ``{"text": ...}``.
    """
    percent = format(Decimal(str(fraction)) * 100, "f")
    if "." in percent:
        percent = percent.rstrip("0").rstrip(".")
    text = (
        f"tokencost: budget '{scope}' of ledger '{ledger}' reached {percent}% of its limit: "
        f"{format_usd(spent)} spent of {format_usd(limit)}"
    )
    if fmt == "slack":
        return {"text": text}
    return {
        "type": "budget_alert",
        "ledger": ledger,
        "scope": scope,
        "fraction": fraction,
        "spent": usd_text(spent),
        "limit": usd_text(limit),
        "timestamp": dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).isoformat(),
        "text": text,
    }


class Webhook:
    """Post budget alerts to ``url`` from a background thread (see the module's docstring).

    Args:
        url: an ``http://`` or ``https://`` URL (it may hold a secret: only its host is ever logged).
        format: ``"auto"`` (Slack's ``{"text": ...}`` for ``hooks.slack.com``, else the JSON body),
            ``"json"`` or ``"slack"`` (for Slack-compatible receivers such as Mattermost).
        timeout: seconds one attempt may take (connecting, sending, reading the answer).
        retries: attempts after the first one, for network errors, timeouts, 408, 425, 429 and 5xx.
        backoff: seconds before the first retry; doubled before each next one (at most 30 s).
        queue_size: alerts waiting to be sent; past it an alert is dropped (and that is logged once).

    Raises:
        TypeError, ValueError: for a URL that is not http(s), or an option out of range (naming it, never the URL).
    """

    def __init__(
        self,
        url: str,
        *,
        format: WebhookFormat = "auto",
        timeout: float = 5.0,
        retries: int = 2,
        backoff: float = 0.5,
        queue_size: int = 100,
        warn: OnceLog | None = None,
    ) -> None:
        parts = _check_url(url, "url")
        if format not in ("auto", "json", "slack"):
            raise ValueError(f"format must be 'auto', 'json' or 'slack', got {format!r}")
        self.timeout = _check_number(timeout, "timeout", low=0.001, high=300)
        self.retries = int(_check_number(retries, "retries", low=0, high=10, integer=True))
        self.backoff = _check_number(backoff, "backoff", low=0, high=_MAX_BACKOFF_S)
        self.queue_size = int(_check_number(queue_size, "queue_size", low=1, high=100_000, integer=True))
        self._url = url
        self.host = parts.hostname or ""
        """The URL's host: the only part of it tokencost logs."""
        self.format: Literal["json", "slack"] = (
            format if format != "auto" else ("slack" if self.host in SLACK_HOSTS else "json")
        )
        self._warn = warn if warn is not None else OnceLog()
        self._agent = _user_agent()
        self._cond = threading.Condition()  # guards _pending, _thread, _closing, _deadline
        self._pending: collections.deque[bytes] = collections.deque()
        self._thread: threading.Thread | None = None
        self._closing = False
        self._deadline: float | None = None
        self._woken = threading.Event()  # set by close(): a backoff wait ends early
        self.delivered = 0
        """How many alerts were delivered (answered 2xx)."""
        self.failed = 0
        """How many alerts were given up on (after their retries) or dropped (queue full, or left at close)."""

    def __repr__(self) -> str:
        return f"Webhook(host={self.host!r}, format={self.format!r})"

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called: alerts sent from now on are dropped."""
        return self._closing

    # -- the caller's side ------------------------------------------------------------------------------------
    def alert(self, ledger: str, scope: str, fraction: float, spent: Decimal, limit: Decimal, when: float) -> bool:
        """Queue one alert (see ``alert_body``); False when it was dropped. Never blocks on the network."""
        body = alert_body(
            self.format, ledger=ledger, scope=scope, fraction=fraction, spent=spent, limit=limit, timestamp=when
        )
        return self.send(body)

    def send(self, body: dict[str, Any]) -> bool:
        """Queue a JSON body to post; False when it was dropped (closed, or the queue is full)."""
        data = json.dumps(body, separators=(",", ":")).encode("utf-8")
        with self._cond:
            if self._closing:
                return False
            full = len(self._pending) >= self.queue_size
            if full:
                self.failed += 1
            else:
                self._pending.append(data)
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name=f"tokencost-webhook-{self.host}", daemon=True
                    )
                    self._thread.start()
                self._cond.notify()
        if full:
            self._warn(
                f"webhook-full:{self.host}",
                "tokencost: the alert queue of the webhook at %s is full (%d waiting); alerts are dropped",
                self.host,
                self.queue_size,
            )
        return not full

    def close(self, timeout: float = CLOSE_TIMEOUT_S) -> bool:
        """Give queued alerts up to ``timeout`` seconds to be delivered, then stop the thread.

        Alerts still queued then are dropped (logged once). Returns True when nothing was left undelivered.
        """
        with self._cond:
            self._closing = True
            self._deadline = time.monotonic() + max(0.0, timeout)
            thread = self._thread
            self._cond.notify_all()
        self._woken.set()
        if thread is not None and thread is not threading.current_thread():
            # An attempt started before close() may take its whole timeout; later ones are cut to the deadline.
            thread.join(max(0.0, timeout) + self.timeout + 1.0)
        with self._cond:
            left = len(self._pending)
            self._pending.clear()
            self.failed += left
        if left:
            self._warn(
                f"webhook-close:{self.host}",
                "tokencost: %d budget alert(s) for the webhook at %s were not delivered before close",
                left,
                self.host,
            )
        return left == 0 and (thread is None or not thread.is_alive())

    # -- the sender's side ------------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending:
                    if self._closing:
                        self._thread = None
                        return
                    if not self._cond.wait(IDLE_S) and not self._pending and not self._closing:
                        self._thread = None  # idle: the next alert starts a new thread
                        return
                if self._past_deadline():
                    self._thread = None
                    return  # close() counts and logs what is left
                data = self._pending.popleft()
            try:
                self._deliver(data)
            except Exception as exc:  # a bug here must not kill the thread silently with alerts queued
                self._count(failed=1)
                self._warn(f"webhook-bug:{type(exc).__name__}", "tokencost: internal error sending an alert: %r", exc)

    def _count(self, *, delivered: int = 0, failed: int = 0) -> None:
        with self._cond:
            self.delivered += delivered
            self.failed += failed

    def _past_deadline(self) -> bool:
        deadline = self._deadline
        return deadline is not None and time.monotonic() >= deadline

    def _deliver(self, data: bytes) -> None:
        """Post one body, retrying as configured; log a failure once (until an alert is delivered again)."""
        problem = "no attempt was made"
        attempts = 0
        for attempt in range(self.retries + 1):
            timeout = self.timeout
            deadline = self._deadline
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                timeout = min(timeout, left)
            attempts += 1
            problem, retry = self._post(data, timeout)
            if not problem:
                self._count(delivered=1)
                self._warn.forget(f"webhook:{self.host}")
                self._warn.forget(f"webhook-full:{self.host}")
                return
            if not retry or attempt == self.retries:
                break
            delay = min(self.backoff * 2**attempt, _MAX_BACKOFF_S)
            if self._deadline is not None:
                delay = min(delay, max(0.0, self._deadline - time.monotonic()))
            if delay:
                self._woken.wait(delay)
        self._count(failed=1)
        self._warn(
            f"webhook:{self.host}",
            "tokencost: could not deliver a budget alert to the webhook at %s (%s, %d attempt(s)); it is dropped "
            "(logged once until an alert is delivered)",
            self.host,
            problem,
            attempts,
        )

    def _post(self, data: bytes, timeout: float) -> tuple[str, bool]:
        """One attempt: ``("", False)`` when delivered, else what went wrong (never the URL) and whether to retry."""
        request = urllib.request.Request(
            self._url,
            data=data,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": self._agent},
        )
        try:
            with _OPENER.open(request, timeout=timeout) as response:
                response.read(65536)
                status = int(response.status)
        except urllib.error.HTTPError as exc:
            exc.close()
            return f"HTTP {exc.code}", exc.code in _RETRY_STATUSES
        except urllib.error.URLError as exc:
            return self._describe(exc.reason), True
        except (OSError, ValueError) as exc:  # timeouts, resets, a malformed answer
            return self._describe(exc), True
        if 200 <= status < 300:
            return "", False
        return f"HTTP {status}", status in _RETRY_STATUSES

    def _describe(self, reason: object) -> str:
        """An error as text, with the URL (and its path) taken out should the error quote them."""
        if isinstance(reason, TimeoutError) or (isinstance(reason, OSError) and "timed out" in str(reason)):
            return "timed out"
        text = f"{type(reason).__name__}: {reason}" if isinstance(reason, BaseException) else str(reason)
        parts = urllib.parse.urlsplit(self._url)
        for secret in (self._url, parts.path, parts.query):
            if secret and secret != "/":
                text = text.replace(secret, "…")
        return text


def as_webhook(value: object, warn: OnceLog | None = None) -> Webhook | None:
    """The ``Webhook`` an ``alert_webhook=`` argument names: a URL, a ``Webhook``, or None.

    Raises:
        TypeError, ValueError: for anything else, or a URL that is not http(s) (naming the argument, not the URL).
    """
    if value is None:
        return None
    if isinstance(value, Webhook):
        return value
    _check_url(value, "alert_webhook")
    assert isinstance(value, str)
    return Webhook(value, warn=warn)

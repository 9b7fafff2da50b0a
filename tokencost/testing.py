"""A loopback fake LLM provider for tests: OpenAI, Anthropic and Linkup over real HTTP.

Point litellm (or any HTTP client) at it with ``api_base=`` and it answers like the real services, with the
token usage you configure, so cost tracking can be exercised end to end without network access::

    from tokencost.testing import FakeProvider

    with FakeProvider() as fake:
        fake.set_openai_usage("gpt-4o", prompt_tokens=10_000, completion_tokens=500, cached_tokens=8_000)
        litellm.completion(
            model="openai/gpt-4o",
            messages=[{"role": "user", "content": "hi"}],
            api_base=fake.openai_base,
            api_key="sk-fake",
        )
        litellm.completion(
            model="anthropic/claude-sonnet-4-5",
            messages=[{"role": "user", "content": "hi"}],
            api_base=fake.anthropic_base,
            api_key="fake",
        )
        assert fake.request_count("/v1/") == 2

What the fake answers is up to a *reply function* (``FakeProvider(reply=fn)`` or :meth:`FakeProvider.set_reply`):
given the :class:`RecordedRequest`, it returns the text and/or tool calls of the answer, so agent frameworks
that call tools can run against the fake::

    def reply(request):
        if not any(m.get("role") == "tool" for m in request.body["messages"]):
            return Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"})])
        return "It is sunny in Paris."

For users' own tests, :func:`recording_tracker` gives a registered in-memory tracker for a block and
:func:`assert_cost` checks what it recorded, exactly::

    with FakeProvider() as fake, recording_tracker() as tracker:
        litellm.completion(model="openai/gpt-4o", messages=..., api_base=fake.openai_base, api_key="sk-fake")
        assert_cost(tracker, "0.000075", calls=1)

Endpoints (all ``POST``; anything else answers 404 with a JSON body):

* ``/v1/chat/completions``: OpenAI chat completions, plain or streamed (SSE). Streams carry a final usage
  chunk (``choices: []``) only when the request asks for it with ``stream_options.include_usage``.
* ``/v1/embeddings``: OpenAI embeddings (float lists, or base64 when ``encoding_format`` is ``"base64"``).
* ``/v1/messages``: Anthropic messages, plain or streamed with the real event sequence.
* ``/v1/search``: Linkup search, with Bearer authentication and Linkup's error bodies.

The server binds 127.0.0.1 only, uses the standard library only, and never records or logs the value of an
``Authorization`` / ``x-api-key`` header: :class:`RecordedRequest` only says whether one was present.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import json
import socket
import struct
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, cast

if TYPE_CHECKING:
    from tokencost.tracker import CostTracker

__all__ = [
    "FakeProvider",
    "RecordedRequest",
    "Reply",
    "ReplyFunction",
    "ToolCall",
    "assert_cost",
    "recorded_calls",
    "recording_tracker",
]

CHAT_PATH: Final = "/v1/chat/completions"
EMBEDDINGS_PATH: Final = "/v1/embeddings"
MESSAGES_PATH: Final = "/v1/messages"
LINKUP_SEARCH_PATH: Final = "/v1/search"

REPLY_TEXT: Final = "Hello from the fake provider."
_REPLY_PIECES: Final = ("Hello", " from", " the fake", " provider.")
_DEFAULT_PROMPT_TOKENS: Final = 10
_DEFAULT_COMPLETION_TOKENS: Final = 5
_EMBEDDING_DIMENSIONS: Final = 8
_MAX_BODY_BYTES: Final = 64 * 1024 * 1024

_LINKUP_CODES: Final[dict[int, str]] = {
    400: "VALIDATION_ERROR",
    401: "UNAUTHORIZED",
    402: "PAYMENT_REQUIRED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    429: "TOO_MANY_REQUESTS",
    500: "INTERNAL_SERVER_ERROR",
    502: "BAD_GATEWAY",
    503: "SERVICE_UNAVAILABLE",
    504: "GATEWAY_TIMEOUT",
}
_ANTHROPIC_ERROR_TYPES: Final[dict[int, str]] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}
_OPENAI_ERROR_TYPES: Final[dict[int, str]] = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "invalid_request_error",
    404: "invalid_request_error",
    429: "rate_limit_exceeded",
}


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received.

    Attributes:
        method: The HTTP method, e.g. ``"POST"``.
        path: The URL path without the query string, e.g. ``"/v1/chat/completions"``.
        body: The parsed JSON body, or None when the body was empty or not valid JSON.
        has_auth: Whether an ``Authorization``, ``x-api-key`` or ``api-key`` header was present (its value
            is never stored).
        stream: Whether the body asked for a streamed answer (``"stream": true``).
    """

    method: str
    path: str
    body: Any
    has_auth: bool
    stream: bool


@dataclass(frozen=True)
class ToolCall:
    """One tool (function) call in a fake answer.

    Attributes:
        name: The tool's name, e.g. ``"get_weather"``.
        arguments: The arguments: a mapping (sent as JSON) or a JSON text as-is.
        id: The call id; None makes one up (``call_...`` for OpenAI, ``toolu_...`` for Anthropic).
    """

    name: str
    arguments: Any = field(default_factory=dict)
    id: str | None = None

    def arguments_json(self) -> str:
        """The arguments as JSON text (OpenAI's ``function.arguments``)."""
        return self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments)

    def arguments_object(self) -> Any:
        """The arguments as a JSON value (Anthropic's ``tool_use.input``)."""
        return json.loads(self.arguments) if isinstance(self.arguments, str) else self.arguments


@dataclass(frozen=True)
class Reply:
    """What the fake answers one chat request with: text, tool calls, or both.

    Attributes:
        text: The assistant's text; None or ``""`` for none (an answer with tool calls only).
        tool_calls: The tool calls, in order. With any, the finish reason is OpenAI's ``"tool_calls"`` /
            Anthropic's ``"tool_use"``.
    """

    text: str | None = None
    tool_calls: Sequence[ToolCall] = ()


ReplyFunction = Callable[[RecordedRequest], "Reply | str"]
"""Given the request (path and parsed JSON body), return the answer: a :class:`Reply` or plain text."""

_DEFAULT_REPLY: Final = Reply(REPLY_TEXT)


@dataclass(frozen=True)
class _Failure:
    status: int
    body: Any
    path_prefix: str


@dataclass(frozen=True)
class _LinkupReply:
    status: int
    body: Any
    hang: float


@dataclass(frozen=True)
class _LinkupAnswer:
    data: Any
    sources: list[dict[str, Any]]


@dataclass(frozen=True)
class _OpenAIUsage:
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    reasoning_tokens: int

    def to_json(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "prompt_tokens_details": {
                "cached_tokens": self.cached_tokens,
                "audio_tokens": 0,
            },
            "completion_tokens_details": {
                "reasoning_tokens": self.reasoning_tokens,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }


@dataclass(frozen=True)
class _AnthropicUsage:
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int

    def to_json(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "output_tokens": self.output_tokens,
        }


_DEFAULT_OPENAI_USAGE: Final = _OpenAIUsage(_DEFAULT_PROMPT_TOKENS, _DEFAULT_COMPLETION_TOKENS, 0, 0)
_DEFAULT_ANTHROPIC_USAGE: Final = _AnthropicUsage(_DEFAULT_PROMPT_TOKENS, _DEFAULT_COMPLETION_TOKENS, 0, 0)


class FakeProvider:
    """A fake OpenAI / Anthropic / Linkup HTTP server on the loopback interface.

    Start it with ``with FakeProvider() as fake:`` or ``fake.start()`` / ``fake.stop()``. It binds
    127.0.0.1 on a free port and serves each request on its own daemon thread. All configuration methods are
    thread-safe and take effect for the next request.

    litellm call forms:

    * OpenAI: ``model="openai/gpt-4o", api_base=fake.openai_base, api_key="sk-fake"``.
    * Anthropic: ``model="anthropic/claude-sonnet-4-5", api_base=fake.anthropic_base, api_key="fake"``
      (litellm appends ``/v1/messages`` itself).
    * Linkup: ``POST {fake.linkup_base}/search`` with ``Authorization: Bearer {fake.linkup_api_key}``.

    Usage is configured per model name as sent in the request body (``"gpt-4o"``, not ``"openai/gpt-4o"``);
    unset models report 10 prompt and 5 completion tokens.

    Attributes:
        requests: Every request received, in arrival order.
        linkup_api_key: The only key the Linkup endpoint accepts (as ``Authorization: Bearer <key>``).
    """

    linkup_api_key: str = "linkup-test-key"

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, reply: ReplyFunction | None = None) -> None:
        """Prepare the fake; nothing is bound until :meth:`start`.

        Args:
            host: Interface to bind. Keep the default loopback address.
            port: TCP port, 0 for a free one chosen by the system.
            reply: The reply function of chat requests (see :meth:`set_reply`); None answers
                ``"Hello from the fake provider."``.
        """
        self._host = host
        self._port = port
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.requests: list[RecordedRequest] = []
        self.linkup_api_key = FakeProvider.linkup_api_key
        self._openai_usage: dict[str, _OpenAIUsage] = {}
        self._anthropic_usage: dict[str, _AnthropicUsage] = {}
        self._raw_usage: dict[str, Any] = {}
        self._delay = 0.0
        self._chunk_delay = 0.0
        self._failures: list[_Failure] = []
        self._linkup_answers: dict[str | None, _LinkupAnswer] = {}
        self._linkup_queue: deque[_LinkupReply] = deque()
        self._reply: ReplyFunction | None = reply

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeProvider:
        """Bind the port and serve in a daemon thread.

        Returns:
            This fake, so ``fake = FakeProvider().start()`` works.

        Raises:
            RuntimeError: If the fake is already running.
        """
        if self._server is not None:
            raise RuntimeError("FakeProvider is already running")
        self._stopping.clear()
        server = _Server((self._host, self._port), _Handler)
        server.provider = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="tokencost-fake-provider",
        )
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake any delayed or hanging reply and close every open connection.

        Safe to call more than once. Recorded requests and configuration are kept.
        """
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.close_all_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeProvider:
        """Start the fake (see :meth:`start`)."""
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the fake (see :meth:`stop`)."""
        self.stop()

    # ------------------------------------------------------------------ addresses

    @property
    def port(self) -> int:
        """The bound TCP port.

        Raises:
            RuntimeError: If the fake is not running.
        """
        if self._server is None:
            raise RuntimeError("FakeProvider is not running: call start() or use it as a context manager")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The server root, ``http://127.0.0.1:PORT``."""
        return f"http://{self._host}:{self.port}"

    @property
    def openai_base(self) -> str:
        """The OpenAI ``api_base`` for litellm: :attr:`url` + ``/v1``."""
        return f"{self.url}/v1"

    @property
    def anthropic_base(self) -> str:
        """The Anthropic ``api_base`` for litellm: :attr:`url` (litellm appends ``/v1/messages``)."""
        return self.url

    @property
    def linkup_base(self) -> str:
        """The Linkup base URL: :attr:`url` + ``/v1``; clients POST to ``{linkup_base}/search``."""
        return f"{self.url}/v1"

    # ------------------------------------------------------------------ inspection

    def request_count(self, path_prefix: str = "") -> int:
        """Count the requests received so far whose path starts with ``path_prefix``.

        Args:
            path_prefix: E.g. ``"/v1/chat"``, ``"/v1/messages"`` or ``"/v1/search"``; empty counts all.

        Returns:
            The number of matching requests.
        """
        with self._lock:
            return sum(1 for request in self.requests if request.path.startswith(path_prefix))

    def reset(self) -> None:
        """Forget recorded requests and every configured behaviour (usage, delays, failures, Linkup state).

        ``linkup_api_key`` goes back to its default too. The server keeps running on the same port.
        """
        with self._lock:
            self.requests.clear()
            self._openai_usage.clear()
            self._anthropic_usage.clear()
            self._raw_usage.clear()
            self._delay = 0.0
            self._chunk_delay = 0.0
            self._failures.clear()
            self._linkup_answers.clear()
            self._linkup_queue.clear()
            self._reply = None
            self.linkup_api_key = FakeProvider.linkup_api_key

    # ------------------------------------------------------------------ configuration

    def set_openai_usage(
        self,
        model: str,
        *,
        prompt_tokens: int,
        completion_tokens: int,
        cached_tokens: int = 0,
        reasoning_tokens: int = 0,
    ) -> None:
        """Set the usage the OpenAI endpoints report for ``model``.

        OpenAI's convention applies: ``prompt_tokens`` includes ``cached_tokens`` and ``completion_tokens``
        includes ``reasoning_tokens``. Embeddings report ``prompt_tokens`` only.

        Args:
            model: The model name as sent in the request body, e.g. ``"gpt-4o"``.
            prompt_tokens: ``usage.prompt_tokens``.
            completion_tokens: ``usage.completion_tokens``.
            cached_tokens: ``usage.prompt_tokens_details.cached_tokens``.
            reasoning_tokens: ``usage.completion_tokens_details.reasoning_tokens``.
        """
        usage = _OpenAIUsage(prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens)
        with self._lock:
            self._raw_usage.pop(model, None)
            self._openai_usage[model] = usage

    def set_anthropic_usage(
        self,
        model: str,
        *,
        input_tokens: int,
        output_tokens: int,
        cache_creation_input_tokens: int = 0,
        cache_read_input_tokens: int = 0,
    ) -> None:
        """Set the usage the Anthropic endpoint reports for ``model``.

        Anthropic's convention applies: ``input_tokens`` excludes the cache reads and writes.

        Args:
            model: The model name as sent in the request body, e.g. ``"claude-sonnet-4-5"``.
            input_tokens: ``usage.input_tokens`` (uncached input only).
            output_tokens: ``usage.output_tokens``.
            cache_creation_input_tokens: ``usage.cache_creation_input_tokens``.
            cache_read_input_tokens: ``usage.cache_read_input_tokens``.
        """
        usage = _AnthropicUsage(
            input_tokens,
            output_tokens,
            cache_creation_input_tokens,
            cache_read_input_tokens,
        )
        with self._lock:
            self._raw_usage.pop(model, None)
            self._anthropic_usage[model] = usage

    def set_raw_usage(self, model: str, usage: Any) -> None:
        """Send exactly ``usage`` as the ``"usage"`` value for ``model``, on every endpoint.

        For malformed-payload tests: None, strings, negative numbers, missing keys... In Anthropic streams the
        value is used both in ``message_start.message.usage`` and in ``message_delta.usage``.

        Args:
            model: The model name as sent in the request body.
            usage: Any JSON-serializable value.
        """
        json.dumps(usage)  # fail here, not in the server thread
        with self._lock:
            self._raw_usage[model] = usage

    def set_reply(self, reply: ReplyFunction | None) -> None:
        """Answer chat requests (``/v1/chat/completions`` and ``/v1/messages``, plain or streamed) with ``reply``.

        The function gets the :class:`RecordedRequest` (``request.body`` is the parsed JSON body, so
        ``request.body["messages"]`` holds the conversation, tool results included) and returns a :class:`Reply`
        or plain text. It runs on the server's thread for that request; an exception in it answers 500 with the
        provider's error body. Usage is still the one configured for the model.

        Args:
            reply: The reply function, or None for the default text.
        """
        with self._lock:
            self._reply = reply

    def set_delay(self, seconds: float) -> None:
        """Sleep ``seconds`` before answering every request (for client timeouts). 0 turns it off.

        Args:
            seconds: The delay; :meth:`stop` interrupts it.
        """
        with self._lock:
            self._delay = max(0.0, seconds)

    def set_stream_chunk_delay(self, seconds: float) -> None:
        """Sleep ``seconds`` before each SSE chunk of a streamed answer. 0 turns it off.

        Args:
            seconds: The per-chunk delay; :meth:`stop` interrupts it.
        """
        with self._lock:
            self._chunk_delay = max(0.0, seconds)

    def fail_next(self, status: int, body: Any = None, *, path_prefix: str = "") -> None:
        """Queue one error response for the next request whose path starts with ``path_prefix``.

        Failures are consumed first in, first out; each answers exactly one request. Note that litellm and
        the OpenAI / Anthropic SDKs retry some statuses (429, 5xx) by themselves unless told not to
        (``max_retries=0`` / ``num_retries=0``).

        Args:
            status: The HTTP status to answer.
            body: The JSON body; ``bytes`` are sent as-is (``text/plain``). None builds the provider's own
                error shape: Anthropic's for ``/v1/messages``, Linkup's for ``/v1/search``, else OpenAI's.
            path_prefix: Only requests whose path starts with this consume the failure; empty matches all.
        """
        with self._lock:
            self._failures.append(_Failure(status, body, path_prefix))

    # ------------------------------------------------------------------ Linkup

    @staticmethod
    def linkup_error(status: int, code: str, message: str) -> dict[str, Any]:
        """Build a Linkup error body: ``{"statusCode", "error": {"code", "message", "details": []}}``.

        Args:
            status: The HTTP status, repeated as ``statusCode``.
            code: Linkup's error code, e.g. ``"TOO_MANY_REQUESTS"`` or ``"INSUFFICIENT_FUNDS_CREDITS"``.
            message: A human-readable message.

        Returns:
            The body as a dict, ready for :meth:`queue_linkup` or :meth:`fail_next`.
        """
        return {
            "statusCode": status,
            "error": {"code": code, "message": message, "details": []},
        }

    def set_linkup_answer(
        self,
        data: Any,
        *,
        sources: list[dict[str, Any]] | None = None,
        depth: str | None = None,
    ) -> None:
        """Set the successful Linkup answer: ``200 {"data": data, "sources": sources}``.

        As with the real API, a request with ``outputType: "structured"`` and without ``includeSources: true``
        gets ``data`` bare. Without any answer configured a search gets Linkup's 400
        ``SEARCH_QUERY_NO_RESULT``.

        Args:
            data: The structured answer (any JSON value).
            sources: The ``sources`` list, e.g. ``[{"name": ..., "url": ..., "snippet": ...}]``; default [].
            depth: Only answer searches of this depth (``"standard"`` or ``"deep"``); None answers any depth
                that has no depth-specific answer.
        """
        json.dumps(data)
        answer = _LinkupAnswer(data, list(sources or []))
        with self._lock:
            self._linkup_answers[depth] = answer

    def queue_linkup(self, status: int, body: Any | bytes | None = None, *, hang: float = 0.0) -> None:
        """Queue the next authenticated Linkup reply (first in, first out; each answers one search).

        Args:
            status: The HTTP status. 200 with ``body=None`` gives the configured answer.
            body: The JSON body; ``bytes`` are sent raw as ``text/html`` (e.g. a proxy's non-JSON 502); None
                with an error status builds Linkup's error body for that status.
            hang: Seconds to wait before replying (for client timeouts); :meth:`stop` interrupts it.
        """
        with self._lock:
            self._linkup_queue.append(_LinkupReply(status, body, max(0.0, hang)))

    # ------------------------------------------------------------------ used by the handler

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _take_failure(self, path: str) -> _Failure | None:
        with self._lock:
            for index, failure in enumerate(self._failures):
                if path.startswith(failure.path_prefix):
                    return self._failures.pop(index)
        return None

    def _take_linkup_reply(self) -> _LinkupReply | None:
        with self._lock:
            return self._linkup_queue.popleft() if self._linkup_queue else None

    def _linkup_answer(self, depth: Any) -> _LinkupAnswer | None:
        with self._lock:
            if isinstance(depth, str) and depth in self._linkup_answers:
                return self._linkup_answers[depth]
            return self._linkup_answers.get(None)

    def _answer(self, request: RecordedRequest) -> Reply:
        with self._lock:
            reply = self._reply
        if reply is None:
            return _DEFAULT_REPLY
        answer = reply(request)
        if isinstance(answer, str):
            return Reply(answer)
        if not isinstance(answer, Reply):
            raise TypeError(f"a reply function returns a Reply or a str, not {type(answer).__name__}")
        return answer

    def _delays(self) -> tuple[float, float]:
        with self._lock:
            return self._delay, self._chunk_delay

    def _openai_usage_json(self, model: str) -> Any:
        with self._lock:
            if model in self._raw_usage:
                return self._raw_usage[model]
            return self._openai_usage.get(model, _DEFAULT_OPENAI_USAGE).to_json()

    def _anthropic_usage_json(self, model: str) -> Any:
        with self._lock:
            if model in self._raw_usage:
                return self._raw_usage[model]
            return self._anthropic_usage.get(model, _DEFAULT_ANTHROPIC_USAGE).to_json()

    def _sleep(self, seconds: float) -> bool:
        """Sleep unless stopping; return True when the fake is stopping."""
        if seconds <= 0:
            return self._stopping.is_set()
        return self._stopping.wait(seconds)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    provider: FakeProvider

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(cast(socket.socket, request))
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(cast(socket.socket, request))
        super().shutdown_request(request)

    def close_all_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet: clients hanging up mid-reply are expected in timeout tests."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "tokencost-fake/1.0"
    sys_version = ""
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Log nothing (and so never any header)."""

    # ------------------------------------------------------------------ dispatch

    def do_POST(self) -> None:
        self._dispatch()

    def do_GET(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        provider = self.server.provider
        path = self.path.split("?", 1)[0].split("#", 1)[0]
        try:
            raw = self._read_body()
        except ValueError:
            self._send_json(400, _openai_error(400, "unreadable request body"))
            self.close_connection = True
            return
        body = _parse_json(raw)
        has_auth = any(self.headers.get(name) for name in ("Authorization", "x-api-key", "api-key"))
        stream = isinstance(body, dict) and body.get("stream") is True
        request = RecordedRequest(self.command, path, body, has_auth, stream)
        provider._record(request)
        try:
            delay, _ = provider._delays()
            if provider._sleep(delay):
                self.close_connection = True
                return
            failure = provider._take_failure(path)
            if failure is not None:
                self._send_failure(path, failure)
            elif self.command == "POST" and path == LINKUP_SEARCH_PATH:
                self._linkup(body)
            elif self.command == "POST" and path == CHAT_PATH:
                self._chat(request)
            elif self.command == "POST" and path == EMBEDDINGS_PATH:
                self._embeddings(body)
            elif self.command == "POST" and path == MESSAGES_PATH:
                self._messages(request)
            else:
                self._send_json(404, _openai_error(404, f"no route for {self.command} {path}"))
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts: list[bytes] = []
            total = 0
            while True:
                size_line = self.rfile.readline(1024)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                total += size
                if total > _MAX_BODY_BYTES:
                    raise ValueError("body too large")
                parts.append(self.rfile.read(size))
                self.rfile.readline(1024)
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > _MAX_BODY_BYTES:
            raise ValueError("bad Content-Length")
        return self.rfile.read(length) if length else b""

    # ------------------------------------------------------------------ responses

    def _send_bytes(self, status: int, payload: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _send_json(self, status: int, body: Any) -> None:
        self._send_bytes(status, json.dumps(body).encode(), "application/json")

    def _send_failure(self, path: str, failure: _Failure) -> None:
        if isinstance(failure.body, bytes):
            self._send_bytes(failure.status, failure.body, "text/plain; charset=utf-8")
            return
        body = failure.body
        if body is None:
            message = f"fake provider error {failure.status}"
            if path.startswith(MESSAGES_PATH):
                body = _anthropic_error(failure.status, message)
            elif path.startswith(LINKUP_SEARCH_PATH):
                body = _linkup_default_error(failure.status)
            else:
                body = _openai_error(failure.status, message)
        self._send_json(failure.status, body)

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def _send_event(self, data: str, event: str | None = None) -> bool:
        """Write one SSE event after the chunk delay; return False when the fake is stopping."""
        provider = self.server.provider
        _, chunk_delay = provider._delays()
        if provider._sleep(chunk_delay):
            return False
        prefix = f"event: {event}\n" if event is not None else ""
        self.wfile.write(f"{prefix}data: {data}\n\n".encode())
        self.wfile.flush()
        return True

    # ------------------------------------------------------------------ OpenAI

    def _reply_or_fail(self, request: RecordedRequest, anthropic: bool) -> Reply | None:
        try:
            return self.server.provider._answer(request)
        except Exception as exc:  # the user's reply function failed: answer like a provider's server error
            message = f"the fake's reply function raised {type(exc).__name__}: {exc}"
            self._send_json(500, _anthropic_error(500, message) if anthropic else _openai_error(500, message))
            return None

    def _chat(self, request: RecordedRequest) -> None:
        body = request.body
        if not isinstance(body, dict):
            self._send_json(400, _openai_error(400, "the request body must be a JSON object"))
            return
        answer = self._reply_or_fail(request, anthropic=False)
        if answer is None:
            return
        model = str(body.get("model", ""))
        usage = self.server.provider._openai_usage_json(model)
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        tool_calls = [
            (call.id or f"call_{uuid.uuid4().hex[:24]}", call.name, call.arguments_json()) for call in answer.tool_calls
        ]
        finish_reason = "tool_calls" if tool_calls else "stop"
        if body.get("stream") is not True:
            message: dict[str, Any] = {"role": "assistant", "content": answer.text or None, "refusal": None}
            if tool_calls:
                message["tool_calls"] = [
                    {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
                    for call_id, name, arguments in tool_calls
                ]
            self._send_json(
                200,
                {
                    "id": completion_id,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
                    "usage": usage,
                    "system_fingerprint": "fp_fake",
                },
            )
            return
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True

        def chunk(choices: list[dict[str, Any]], chunk_usage: Any = None) -> str:
            payload: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_fake",
                "choices": choices,
            }
            if include_usage:
                payload["usage"] = chunk_usage
            return json.dumps(payload)

        def delta_choice(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}

        self._start_stream()
        events = [chunk([delta_choice({"role": "assistant", "content": "", "refusal": None})])]
        events += [chunk([delta_choice({"content": piece})]) for piece in _pieces(answer.text)]
        for index, (call_id, name, arguments) in enumerate(tool_calls):
            start = {"index": index, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
            events.append(chunk([delta_choice({"tool_calls": [start]})]))
            events.append(
                chunk([delta_choice({"tool_calls": [{"index": index, "function": {"arguments": arguments}}]})])
            )
        events.append(chunk([delta_choice({}, finish_reason)]))
        if include_usage:
            events.append(chunk([], usage))
        events.append("[DONE]")
        for event in events:
            if not self._send_event(event):
                return

    def _embeddings(self, body: Any) -> None:
        if not isinstance(body, dict):
            self._send_json(400, _openai_error(400, "the request body must be a JSON object"))
            return
        model = str(body.get("model", ""))
        raw_input = body.get("input")
        count = len(raw_input) if isinstance(raw_input, list) and raw_input else 1
        if isinstance(raw_input, list) and raw_input and isinstance(raw_input[0], int):
            count = 1  # a single tokenized input
        as_base64 = body.get("encoding_format") == "base64"
        data: list[dict[str, Any]] = []
        for index in range(count):
            vector = [round(0.1 * (index + 1) + 0.01 * d, 6) for d in range(_EMBEDDING_DIMENSIONS)]
            embedding: Any = (
                base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode() if as_base64 else vector
            )
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        provider = self.server.provider
        with provider._lock:
            raw_set = model in provider._raw_usage
            usage: Any = provider._raw_usage.get(model)
            prompt_tokens = provider._openai_usage.get(model, _DEFAULT_OPENAI_USAGE).prompt_tokens
        if not raw_set:
            usage = {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}
        self._send_json(200, {"object": "list", "data": data, "model": model, "usage": usage})

    # ------------------------------------------------------------------ Anthropic

    def _messages(self, request: RecordedRequest) -> None:
        body = request.body
        if not isinstance(body, dict):
            self._send_json(400, _anthropic_error(400, "the request body must be a JSON object"))
            return
        answer = self._reply_or_fail(request, anthropic=True)
        if answer is None:
            return
        model = str(body.get("model", ""))
        usage = self.server.provider._anthropic_usage_json(model)
        message_id = f"msg_{uuid.uuid4().hex[:24]}"
        blocks: list[dict[str, Any]] = [{"type": "text", "text": answer.text}] if answer.text else []
        blocks += [
            {
                "type": "tool_use",
                "id": call.id or f"toolu_{uuid.uuid4().hex[:24]}",
                "name": call.name,
                "input": call.arguments_object(),
            }
            for call in answer.tool_calls
        ]
        stop_reason = "tool_use" if answer.tool_calls else "end_turn"
        if body.get("stream") is not True:
            self._send_json(
                200,
                {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": blocks,
                    "stop_reason": stop_reason,
                    "stop_sequence": None,
                    "usage": usage,
                },
            )
            return
        if isinstance(usage, dict):
            # As Anthropic streams it: message_start carries the prompt side (and the cache_creation split,
            # service_tier, inference_geo), message_delta the output tokens and the server tool use.
            start_usage: Any = {
                "input_tokens": usage.get("input_tokens"),
                "cache_creation_input_tokens": usage.get("cache_creation_input_tokens"),
                "cache_read_input_tokens": usage.get("cache_read_input_tokens"),
                "output_tokens": 1,
                **{k: usage[k] for k in ("cache_creation", "service_tier", "inference_geo") if k in usage},
            }
            delta_usage: Any = {
                "output_tokens": usage.get("output_tokens"),
                **{k: usage[k] for k in ("server_tool_use",) if k in usage},
            }
        else:
            start_usage = delta_usage = usage
        events: list[tuple[str, dict[str, Any]]] = [
            (
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": message_id,
                        "type": "message",
                        "role": "assistant",
                        "model": model,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": start_usage,
                    },
                },
            ),
        ]
        if not blocks:
            events.append(("ping", {"type": "ping"}))
        for index, block in enumerate(blocks):
            if block["type"] == "text":
                start_block: dict[str, Any] = {"type": "text", "text": ""}
                deltas = [{"type": "text_delta", "text": piece} for piece in _pieces(block["text"])]
            else:
                start_block = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
                deltas = [{"type": "input_json_delta", "partial_json": json.dumps(block["input"])}]
            events.append(
                ("content_block_start", {"type": "content_block_start", "index": index, "content_block": start_block})
            )
            if index == 0:  # the real service pings after the first block starts
                events.append(("ping", {"type": "ping"}))
            events += [
                ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
                for delta in deltas
            ]
            events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        events += [
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                    "usage": delta_usage,
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
        self._start_stream()
        for name, payload in events:
            if not self._send_event(json.dumps(payload), event=name):
                return

    # ------------------------------------------------------------------ Linkup

    def _linkup(self, body: Any) -> None:
        provider = self.server.provider
        expected = f"Bearer {provider.linkup_api_key}".encode()
        given = (self.headers.get("Authorization") or "").encode()
        if not hmac.compare_digest(given, expected):
            self._send_json(
                401,
                FakeProvider.linkup_error(401, "UNAUTHORIZED", "Unauthorized action: invalid API key"),
            )
            return
        reply = provider._take_linkup_reply()
        if reply is not None:
            if provider._sleep(reply.hang):
                self.close_connection = True
                return
            if isinstance(reply.body, bytes):
                self._send_bytes(reply.status, reply.body, "text/html; charset=utf-8")
                return
            if reply.body is not None:
                self._send_json(reply.status, reply.body)
                return
            if reply.status != 200:
                self._send_json(reply.status, _linkup_default_error(reply.status))
                return
        if not isinstance(body, dict) or not isinstance(body.get("q"), str) or not body["q"].strip():
            self._send_json(
                400,
                {
                    "statusCode": 400,
                    "error": {
                        "code": "VALIDATION_ERROR",
                        "message": "Validation failed",
                        "details": [{"field": "q", "message": "q must be a non-empty string"}],
                    },
                },
            )
            return
        answer = provider._linkup_answer(body.get("depth"))
        if answer is None:
            message = "The query did not yield any result"
            self._send_json(400, FakeProvider.linkup_error(400, "SEARCH_QUERY_NO_RESULT", message))
            return
        if body.get("outputType") == "structured" and body.get("includeSources") is not True:
            self._send_json(200, answer.data)
            return
        self._send_json(200, {"data": answer.data, "sources": answer.sources})


@contextlib.contextmanager
def recording_tracker(**options: Any) -> Iterator[CostTracker]:
    """A :class:`~tokencost.CostTracker` that records in memory, registered with litellm for the block.

    The tracker is added to ``litellm.callbacks`` on entry and closed on exit (which takes it out of every litellm
    list again). Its defaults suit tests: ``store="memory://"``, ``print_summary=False`` and no price discovery
    over the network (``linkup_api_key=False``); any :class:`~tokencost.CostTracker` argument can be given::

        with recording_tracker(budget="0.01") as tracker:
            ...

    Args:
        **options: Arguments of :class:`~tokencost.CostTracker`.

    Yields:
        The registered tracker.
    """
    import litellm

    from tokencost.tracker import CostTracker

    options.setdefault("print_summary", False)
    options.setdefault("linkup_api_key", False)
    tracker = CostTracker(**options)
    litellm.callbacks = [*litellm.callbacks, tracker]
    try:
        yield tracker
    finally:
        tracker.close()


def recorded_calls(tracker: CostTracker, model: str | None = None) -> list[dict[str, Any]]:
    """The calls ``tracker`` recorded (its ``history`` entries), oldest first, after a :meth:`flush`.

    Args:
        tracker: The tracker.
        model: Only the calls of this model; ``"openai/gpt-4o"`` and ``"gpt-4o"`` both match ``gpt-4o``.

    Returns:
        The ``history`` dicts (``cost`` a ``Decimal``, ``status``, token counts, ``metadata``...).
    """
    tracker.flush(timeout=10)
    calls = tracker.history
    if model is None:
        return calls
    names = {model, model.split("/", 1)[-1]}
    return [call for call in calls if call["model"] in names]


def assert_cost(
    tracker: CostTracker,
    expected: Decimal | int | str,
    *,
    calls: int | None = None,
    model: str | None = None,
    allow_unpriced: bool = False,
) -> Decimal:
    """Assert what ``tracker`` recorded: the exact total cost, and optionally the number of calls.

    Money is compared exactly as ``Decimal`` (give ``expected`` as text or ``Decimal``, not float: ``"0.000075"``).

    Args:
        tracker: The tracker (e.g. from :func:`recording_tracker`).
        expected: The expected total in USD.
        calls: The expected number of recorded calls; None does not check it.
        model: Only count the calls of this model (see :func:`recorded_calls`).
        allow_unpriced: Accept calls no price source knew (recorded with ``priced=False``); by default they fail.

    Returns:
        The recorded total, as ``Decimal``.

    Raises:
        AssertionError: With the recorded calls listed, when the total, the count or the pricing differ.
        TypeError: For a float ``expected``.
    """
    if isinstance(expected, (float, bool)) or not isinstance(expected, (Decimal, int, str)):
        raise TypeError(f"expected must be a Decimal, int or str, not {type(expected).__name__}")
    want = Decimal(expected)
    recorded = recorded_calls(tracker, model)
    total = sum((call["cost"] for call in recorded if call["cost"] is not None), Decimal(0))
    problems = []
    if total != want:
        problems.append(f"cost {total} != expected {want}")
    if calls is not None and len(recorded) != calls:
        problems.append(f"{len(recorded)} calls recorded, expected {calls}")
    unpriced = [call for call in recorded if not call["priced"]]
    if unpriced and not allow_unpriced:
        problems.append(f"{len(unpriced)} unpriced call(s)")
    if problems:
        listing = "\n".join(
            f"  {call['model']}: {call['prompt_tokens']} in, {call['completion_tokens']} out, cost {call['cost']},"
            f" status {call['status']}" + ("" if call["priced"] else f", unpriced ({call['reason']})")
            for call in recorded
        )
        raise AssertionError("; ".join(problems) + (f"\nrecorded calls:\n{listing}" if recorded else ", none recorded"))
    return total


def _pieces(text: str | None) -> list[str]:
    """Split a reply's text into stream chunks (the default text into the pieces the tests know)."""
    if not text:
        return []
    if text == REPLY_TEXT:
        return list(_REPLY_PIECES)
    words = text.split(" ")
    return [words[0]] + [" " + word for word in words[1:]]


def _parse_json(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        return None


def _openai_error(status: int, message: str) -> dict[str, Any]:
    error_type = _OPENAI_ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": error_type, "param": None, "code": None}}


def _anthropic_error(status: int, message: str) -> dict[str, Any]:
    error_type = _ANTHROPIC_ERROR_TYPES.get(status, "api_error")
    return {"type": "error", "error": {"type": error_type, "message": message}}


def _linkup_default_error(status: int) -> dict[str, Any]:
    code = _LINKUP_CODES.get(status, "INTERNAL_SERVER_ERROR" if status >= 500 else "VALIDATION_ERROR")
    return FakeProvider.linkup_error(status, code, f"fake Linkup error {status}")

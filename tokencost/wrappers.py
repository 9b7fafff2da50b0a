"""Calls made outside litellm: raw responses (``track_response``) and the OpenAI and Anthropic SDK clients.

``wrap_openai(tracker, client)`` and ``wrap_anthropic(tracker, client)`` return a proxy that looks like the
client (every attribute passes through, ``isinstance(proxy, OpenAI)`` holds; only ``type()`` differs) and
intercepts the calls that cost money:

=====================  ===============================================================================
OpenAI                 ``chat.completions.create`` / ``.parse``, ``responses.create`` / ``.parse``,
                       ``embeddings.create`` (sync and async, ``stream=True`` included)
Anthropic              ``messages.create`` / ``.parse`` / ``.stream``, the same under ``beta.messages``
=====================  ===============================================================================

Each call is admitted against the tracker's budgets before its request is sent (``BudgetExceededError``,
nothing sent) and recorded when its response (or its stream) ends. Reading the usage never breaks the call:
a malformed payload is recorded unpriced with the reason. Not intercepted (so neither refused nor recorded):
``with_raw_response`` / ``with_streaming_response``, OpenAI's ``.stream()`` helpers, batches.
"""

from __future__ import annotations

import contextvars
import copy
import dataclasses
import functools
import inspect
import logging
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from tokencost.budgets import current_scope
from tokencost.errors import BudgetExceededError
from tokencost.extractors import NO_USAGE, extract_usage, usage_extractor
from tokencost.metadata import call_metadata
from tokencost.providers import billed_model
from tokencost.response_cache import CacheProbe, ResponseCache, open_cache
from tokencost.usage import Usage, UsageError, read_field
from tokencost.worst_case import WorstCaseRequest

if TYPE_CHECKING:
    from tokencost.engine import Tracking
    from tokencost.events import Event

__all__ = ["ESTIMATED", "track_response", "wrap_anthropic", "wrap_openai"]

log = logging.getLogger("tokencost")

_C = TypeVar("_C")
# What ``cache=`` takes: "memory", "disk", a folder path, a litellm ``Cache``, or None (no caching).
CacheSpec = Any

ESTIMATED = "estimated: no usage in response"
_BROKEN = "stream broken off before its end"
# What of an Anthropic stream's message_start and message_delta usages is merged (the later one wins).
_ANTHROPIC_USAGE_KEYS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "cache_creation",
    "server_tool_use",
    "service_tier",
    "inference_geo",
)
# Chunks read after the caller stops at the last choice, to reach the usage chunk that follows it.
_TAIL_CHUNKS = 8


# -- track_response -----------------------------------------------------------------------------------------
def track_response(
    tracker: Tracking,
    provider: str,
    model: str,
    response: Any,
    *,
    estimate_missing: bool = False,
    metadata: Mapping[str, Any] | None = None,
    messages: Any = None,
) -> Event:
    """Record a call made outside litellm from its raw response (SDK object, JSON dict or JSON text).

    The usage is read by the extractor registered for ``provider`` (see ``register_usage_extractor``) and priced
    by the tracker's chain. A response without usage is recorded unpriced with the reason
    ``"no usage in response"``; with ``estimate_missing=True`` its tokens are counted with litellm's token
    counter instead (the prompt from ``messages``, the output from the response's text), and the event's reason
    says ``"estimated: no usage in response"``. A malformed usage is recorded unpriced with the reason. The
    ``scope()`` metadata of the caller is merged under ``metadata``.

    Example::

        response = anthropic_client.messages.create(model="claude-sonnet-4-5", ...)
        event = track_response(tracker, "anthropic", "claude-sonnet-4-5", response)
        event.cost  # Decimal("0.0177") for 100 input + 2,000 cache write + 8,000 cache read + 500 output

    Raises:
        TypeError: for a provider or model that is not a non-empty str, or metadata that is not a mapping.
    """
    if not isinstance(provider, str) or not provider.strip():
        raise TypeError("provider must be a non-empty str")
    if not isinstance(model, str) or not model:
        raise TypeError("model must be a non-empty str")
    if metadata is not None and not isinstance(metadata, Mapping):
        raise TypeError("metadata must be a mapping or None")
    meta = call_metadata(current_scope(), metadata)
    provider = provider.strip().lower()
    model = billed_model(provider, model, _response_model(response))
    try:
        usage = extract_usage(provider, response)
    except UsageError as exc:
        if estimate_missing and str(exc) == NO_USAGE:
            estimate = _estimate(model, messages, _response_text(response))
            if estimate is not None:
                return tracker.record_usage(model, estimate, provider=provider, metadata=meta, reason=ESTIMATED)
        _warn_unpriced(tracker, model, str(exc))
        return tracker.record_usage(model, None, provider=provider, metadata=meta, reason=str(exc))
    return tracker.record_usage(model, usage, provider=provider, metadata=meta)


# -- wrapping ---------------------------------------------------------------------------------------------------
def wrap_openai(
    tracker: Tracking,
    client: _C,
    *,
    provider: str = "openai",
    estimate_missing: bool = False,
    cache: CacheSpec = None,
) -> _C:
    """Return ``client`` (``openai.OpenAI`` or ``AsyncOpenAI``) with every costly call tracked by ``tracker``.

    Streams get ``stream_options={"include_usage": True}`` when the caller did not set ``stream_options``'
    ``include_usage``, and the usage-only chunk that adds is not shown to that caller. ``provider`` names the
    price list for OpenAI-compatible servers (e.g. ``"groq"`` with ``base_url`` pointing there).

    ``cache`` (``"memory"``, ``"disk"``, a folder path or a litellm ``Cache``) answers an identical
    ``chat.completions.create``, ``responses.create`` or ``embeddings.create`` call from the cache: nothing is
    sent, the SDK's own object (or a replayed stream of its chunks) is returned, and the call is recorded with
    status ``cache_hit``, cost 0 and the saving of the call it replaces (see ``tokencost.response_cache``).

    Example::

        client = wrap_openai(tracker, openai.OpenAI())
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        tracker.total_cost

    Raises:
        TypeError: for a provider that is not a non-empty str, or a cache that is not one of the above.
    """
    return cast(_C, _wrap(tracker, client, provider, estimate_missing, _OPENAI_METHODS, cache))


def wrap_anthropic(
    tracker: Tracking,
    client: _C,
    *,
    provider: str = "anthropic",
    estimate_missing: bool = False,
    cache: CacheSpec = None,
) -> _C:
    """Return ``client`` (``anthropic.Anthropic`` or ``AsyncAnthropic``) with every costly call tracked.

    Streams are priced from ``message_start`` (input and cache tokens) and ``message_delta`` (output tokens).
    ``cache`` works as in ``wrap_openai``, for ``messages.create`` and ``beta.messages.create``.

    Example::

        client = wrap_anthropic(tracker, anthropic.Anthropic())
        client.messages.create(model="claude-sonnet-4-5", max_tokens=512, messages=[...])

    Raises:
        TypeError: for a provider that is not a non-empty str, or a cache that is not one of ``wrap_openai``'s.
    """
    return cast(_C, _wrap(tracker, client, provider, estimate_missing, _ANTHROPIC_METHODS, cache))


_OPENAI_METHODS: dict[tuple[str, ...], str] = {
    ("chat", "completions", "create"): "chat",
    ("chat", "completions", "parse"): "chat",
    ("responses", "create"): "responses",
    ("responses", "parse"): "responses",
    ("embeddings", "create"): "embeddings",
}
_ANTHROPIC_METHODS: dict[tuple[str, ...], str] = {
    ("messages", "create"): "messages",
    ("messages", "parse"): "messages",
    ("messages", "stream"): "messages_stream",
    ("beta", "messages", "create"): "messages",
    ("beta", "messages", "parse"): "messages",
    ("beta", "messages", "stream"): "messages_stream",
}
# Client methods that return a new client configured like this one: the copy is tracked too.
_CLIENT_COPIES = frozenset({"with_options", "copy"})


def _wrap(
    tracker: Tracking, client: Any, provider: str, estimate_missing: bool, methods: Any, cache: CacheSpec = None
) -> _Proxy:
    if not callable(getattr(tracker, "record_usage", None)) or not hasattr(tracker, "enforcer"):
        raise TypeError(f"tracker must be a CostTracker, not {type(tracker).__name__}")
    if not isinstance(provider, str) or not provider.strip():
        raise TypeError("provider must be a non-empty str")
    if isinstance(client, _Proxy):
        client = object.__getattribute__(client, "_tc_target")
    is_async = inspect.iscoroutinefunction(getattr(type(client), "post", None)) or type(client).__name__.startswith(
        "Async"
    )
    hooks = _Hooks(tracker, provider.strip().lower(), bool(estimate_missing), is_async, methods)
    hooks.cache = open_cache(tracker, cache)
    hooks.base_url = _base_url(client)
    return _Proxy(client, hooks, ())


class _Hooks:
    """What a wrapped client intercepts, and for which tracker."""

    def __init__(
        self,
        tracker: Tracking,
        provider: str,
        estimate_missing: bool,
        is_async: bool,
        methods: dict[tuple[str, ...], str],
    ) -> None:
        self.tracker = tracker
        self.provider = provider
        self.estimate_missing = estimate_missing
        self.is_async = is_async
        self.methods = methods
        self.prefixes = frozenset(path[:i] for path in methods for i in range(1, len(path)))
        self.cache: ResponseCache | None = None
        self.base_url = ""  # part of a cache key: the same call to another server is another answer

    def for_client(self, client: Any) -> _Hooks:
        """These hooks for a copy of the client (``with_options``), which may talk to another server."""
        base_url = _base_url(client)
        if base_url == self.base_url:
            return self
        hooks = copy.copy(self)
        hooks.base_url = base_url
        return hooks


class _Proxy:
    """Stand in for a client (or one of its resources): attributes pass through, costly methods are wrapped."""

    __slots__ = ("__weakref__", "_tc_hooks", "_tc_path", "_tc_target")

    def __init__(self, target: Any, hooks: _Hooks, path: tuple[str, ...]) -> None:
        object.__setattr__(self, "_tc_target", target)
        object.__setattr__(self, "_tc_hooks", hooks)
        object.__setattr__(self, "_tc_path", path)

    # isinstance(proxy, OpenAI) looks at __class__ when type() does not match.
    @property  # type: ignore[misc]
    def __class__(self) -> type:
        return type(object.__getattribute__(self, "_tc_target"))

    def __getattr__(self, name: str) -> Any:
        target = object.__getattribute__(self, "_tc_target")
        hooks: _Hooks = object.__getattribute__(self, "_tc_hooks")
        value = getattr(target, name)
        path = (*object.__getattribute__(self, "_tc_path"), name)
        kind = hooks.methods.get(path)
        if kind is not None and callable(value):
            return _tracked_method(hooks, kind, value, path)
        if path in hooks.prefixes:
            return _Proxy(value, hooks, path)
        if len(path) == 1 and name in _CLIENT_COPIES and callable(value):
            return _copying(hooks, value)
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(object.__getattribute__(self, "_tc_target"), name, value)

    def __delattr__(self, name: str) -> None:
        delattr(object.__getattribute__(self, "_tc_target"), name)

    def __dir__(self) -> list[str]:
        return dir(object.__getattribute__(self, "_tc_target"))

    def __repr__(self) -> str:
        return repr(object.__getattribute__(self, "_tc_target"))

    def __enter__(self) -> _Proxy:
        object.__getattribute__(self, "_tc_target").__enter__()
        return self

    def __exit__(self, *exc: Any) -> Any:
        return object.__getattribute__(self, "_tc_target").__exit__(*exc)

    async def __aenter__(self) -> _Proxy:
        await object.__getattribute__(self, "_tc_target").__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> Any:
        return await object.__getattribute__(self, "_tc_target").__aexit__(*exc)


def _copying(hooks: _Hooks, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def copy(*args: Any, **kwargs: Any) -> Any:
        client = method(*args, **kwargs)
        return _Proxy(client, hooks.for_client(client), ())

    return copy


# -- one call ---------------------------------------------------------------------------------------------------
def _is_given(value: Any) -> bool:
    """Whether an SDK argument was given (the SDKs use ``NOT_GIVEN`` / ``omit`` sentinels for "absent")."""
    return value is not None and type(value).__name__ not in ("NotGiven", "Omit")


class _Call:
    """One intercepted call: admitted before the request, recorded (or released) exactly once after it."""

    def __init__(self, hooks: _Hooks, kind: str, kwargs: dict[str, Any], *, admit: bool = True) -> None:
        self.hooks = hooks
        self.kind = kind
        model = kwargs.get("model")
        self.model = model if isinstance(model, str) and model else ""
        self.metadata = current_scope()
        try:
            self.messages = _prompt_messages(kind, kwargs)
            user = _user_of(kind, kwargs)
        except Exception as exc:  # odd arguments are the SDK's to judge, not ours
            log.debug("tokencost: could not read the request's prompt: %r", exc)
            self.messages, user = None, None
        if user:
            self.metadata.setdefault("user", user)
        # Recording may happen later (a stream's end) or elsewhere (a finalizer): keep the caller's context,
        # so budget() blocks active at the call are charged.
        self.context = contextvars.copy_context()
        # An OpenAI-compatible provider nobody registered an extractor for is read as the SDK's own shape.
        builtin = "anthropic" if kind.startswith("messages") else "openai"
        self.extractor = hooks.provider if usage_extractor(hooks.provider) is not None else builtin
        self.stream = kwargs.get("stream") is True or kind == "messages_stream"
        self.hide_usage_chunk = False
        self.admission: Any = None
        self.sent = False
        self.recorded: Usage | None = None  # the usage recorded with status ok (what a cache entry keeps)
        self._done = False
        self._lock = threading.Lock()  # guards _done
        if not admit:  # a cache hit: nothing is sent, so no budget is checked
            return
        max_tokens = next(
            (
                kwargs[k]
                for k in ("max_completion_tokens", "max_tokens", "max_output_tokens")
                if _is_given(kwargs.get(k))
            ),
            None,
        )
        try:
            self.admission = hooks.tracker.enforcer.admit(
                self.model,
                hooks.provider,
                self.metadata,
                call_id=None,
                messages=self.messages,
                max_tokens=max_tokens,
                request=WorstCaseRequest.from_kwargs(kwargs),
            )
        except BudgetExceededError:
            raise  # the refusal: nothing has been sent
        except Exception as exc:
            hooks.tracker.ledger.warn("wrapper-admit", "tokencost: budget check failed (the call goes on): %r", exc)

    def prepare(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Return the kwargs to send: an OpenAI chat stream asks for its usage chunk."""
        if self.kind != "chat" or not self.stream:
            return kwargs
        options = kwargs.get("stream_options")
        if not _is_given(options):
            kwargs = {**kwargs, "stream_options": {"include_usage": True}}
            self.hide_usage_chunk = True
        elif isinstance(options, Mapping) and "include_usage" not in options:
            kwargs = {**kwargs, "stream_options": {**options, "include_usage": True}}
            self.hide_usage_chunk = True
        return kwargs

    def claim(self) -> bool:
        """Return True once: the caller of this records or releases the call."""
        with self._lock:
            if self._done:
                return False
            self._done = True
            return True

    @property
    def done(self) -> bool:
        return self._done

    def release(self) -> None:
        """The request failed or was never sent: drop the reservation; nothing is recorded."""
        if not self.claim():
            return
        try:
            self.hooks.tracker.enforcer.release(self.admission)
        except Exception as exc:
            log.warning("tokencost: could not release a reservation: %r", exc)

    def record(self, usage: Usage | None, *, status: str = "ok", reason: str | None = None, model: str = "") -> None:
        """Record the call once; never raise."""
        if not self.claim():
            return
        if status == "ok" and reason is None:
            self.recorded = usage
        try:
            self.context.run(
                self.hooks.tracker.record_usage,
                billed_model(self.hooks.provider, self.model or model or "unknown", model),
                usage,
                provider=self.hooks.provider,
                metadata=self.metadata,
                reason=reason,
                status=status,
                admission=self.admission,
            )
        except Exception as exc:
            self.hooks.tracker.ledger.warn(
                f"wrapper-record:{type(exc).__name__}",
                "tokencost: could not record a call (the call goes on): %r",
                exc,
                level=logging.ERROR,
            )

    def record_response(self, response: Any) -> None:
        """Record a complete (non-stream) response from its usage; never raise."""
        try:
            model = _response_model(response)
            usage = extract_usage(self.extractor, response)
        except UsageError as exc:
            self._record_missing(str(exc), _response_text(response), model=model)
            return
        except Exception as exc:
            self.unpriced(f"could not read usage: {type(exc).__name__}", model)
            return
        self.record(usage, model=model)

    def _record_missing(self, reason: str, text: str, *, model: str = "") -> None:
        if self.hooks.estimate_missing and reason == NO_USAGE:
            estimate = _estimate(self.model or model, self.messages, text)
            if estimate is not None:
                self.record(estimate, reason=ESTIMATED, model=model)
                return
        self.unpriced(reason, model)

    def unpriced(self, reason: str, model: str = "") -> None:
        """Record the call without usage, saying why (logged once per model and reason)."""
        _warn_unpriced(self.hooks.tracker, self.model or model, reason)
        self.record(None, reason=reason, model=model)


def _tracked_method(hooks: _Hooks, kind: str, method: Callable[..., Any], path: tuple[str, ...]) -> Callable[..., Any]:
    if hooks.is_async and kind == "messages_stream":

        @functools.wraps(method)
        def open_async_stream(*args: Any, **kwargs: Any) -> Any:
            call = _Call(hooks, kind, kwargs)
            try:
                manager = method(*args, **kwargs)
            except BaseException:
                call.release()
                raise
            return _AsyncStreamManager(manager, call)

        return open_async_stream

    if hooks.is_async:

        @functools.wraps(method)
        async def tracked_async(*args: Any, **kwargs: Any) -> Any:
            probe = _probe(hooks, path, kwargs, args)
            if probe is not None:
                try:
                    entry = await probe.aget()
                except Exception as exc:
                    _cache_failed(hooks, "get", exc)
                    entry = None
                if entry is not None:
                    served = _serve_hit(hooks, kind, kwargs, probe, entry)
                    if served is not _MISS:
                        return served
            call = _Call(hooks, kind, kwargs)
            try:
                result = await method(*args, **call.prepare(kwargs))
            except BaseException:
                call.release()
                raise
            call.sent = True
            if call.stream:
                return _AsyncStream(result, _Watch(call, probe))
            call.record_response(result)
            if probe is not None and call.recorded is not None:
                try:
                    await probe.aput(probe.entry(_response_model(result), call.recorded, result))
                except Exception as exc:
                    _cache_failed(hooks, "put", exc)
            return result

        return tracked_async

    @functools.wraps(method)
    def tracked(*args: Any, **kwargs: Any) -> Any:
        probe = _probe(hooks, path, kwargs, args)
        if probe is not None:
            try:
                entry = probe.get()
            except Exception as exc:
                _cache_failed(hooks, "get", exc)
                entry = None
            if entry is not None:
                served = _serve_hit(hooks, kind, kwargs, probe, entry)
                if served is not _MISS:
                    return served
        call = _Call(hooks, kind, kwargs)
        try:
            result = method(*args, **call.prepare(kwargs))
        except BaseException:
            call.release()
            raise
        if kind == "messages_stream":
            return _StreamManager(result, call)
        call.sent = True
        if call.stream:
            return _SyncStream(result, _Watch(call, probe))
        call.record_response(result)
        if probe is not None and call.recorded is not None:
            try:
                probe.put(probe.entry(_response_model(result), call.recorded, result))
            except Exception as exc:
                _cache_failed(hooks, "put", exc)
        return result

    return tracked


# -- response cache -----------------------------------------------------------------------------------------------
_MISS = object()


def _probe(hooks: _Hooks, path: tuple[str, ...], kwargs: dict[str, Any], args: tuple[Any, ...]) -> CacheProbe | None:
    """The cache lookup of a call, or None (no cache, a method or arguments that are not cached)."""
    if hooks.cache is None or args:
        return None
    try:
        return hooks.cache.probe(path, hooks.provider, hooks.base_url, kwargs)
    except Exception as exc:
        _cache_failed(hooks, "key", exc)
        return None


def _serve_hit(hooks: _Hooks, kind: str, kwargs: dict[str, Any], probe: CacheProbe, entry: Any) -> Any:
    """Return the cached answer (recorded as a ``cache_hit``), or ``_MISS`` when the entry does not read back."""
    try:
        result, usage, model = probe.rebuild(entry, is_async=hooks.is_async)
    except Exception as exc:
        _cache_failed(hooks, "read", exc)
        return _MISS
    # Recorded before the caller sees it (current at return); never refused: nothing is sent or billed.
    _Call(hooks, kind, kwargs, admit=False).record(usage, status="cache_hit", model=model)
    return result


def _cache_failed(hooks: _Hooks, what: str, exc: Exception) -> None:
    """A cache that fails never fails the call: it is sent (and not cached); logged once per kind of failure."""
    hooks.tracker.ledger.warn(
        f"response-cache:{what}:{type(exc).__name__}",
        "tokencost: the response cache failed (%s: %r); the call is sent",
        what,
        exc,
    )


def _base_url(client: Any) -> str:
    try:
        return str(getattr(client, "base_url", "") or "")
    except Exception:
        return ""


# -- streams ----------------------------------------------------------------------------------------------------
class _Watch:
    """What a stream has shown so far; records the call when the stream ends or is dropped."""

    def __init__(self, call: _Call, probe: CacheProbe | None = None) -> None:
        self.call = call
        self.probe = probe  # a stream read to its end is cached: every item the caller saw, in order
        self.seen: list[Any] | None = [] if probe is not None else None
        self.usage: Any = None  # OpenAI: the usage chunk's usage; Responses: the final response's usage
        self.service_tier: Any = None  # an OpenAI chat stream's service_tier, read with its usage chunk
        self.start_usage: Any = None  # Anthropic message_start usage
        self.delta_usage: list[Any] = []  # Anthropic message_delta usages
        self.text: list[str] = []
        self.model = ""
        self.finished_choices = False  # OpenAI: every choice has a finish_reason (the usage chunk is next)
        self.ended = False  # Anthropic message_stop / Responses completed

    # -- observe -----------------------------------------------------------------------------------------
    def observe(self, item: Any) -> bool:
        """Note what ``item`` carries; return whether the caller sees it. Never raises."""
        shown = True
        try:
            kind = self.call.kind
            if kind == "chat":
                shown = self._observe_chat(item)
            elif kind == "responses":
                self._observe_responses(item)
            else:
                self._observe_messages(item)
        except Exception as exc:
            log.debug("tokencost: could not read a stream item: %r", exc)
        if shown and self.seen is not None:
            self.seen.append(item)
        return shown

    def _cache_entry(self) -> tuple[CacheProbe, str] | None:
        """The cache entry of a stream read to its end and recorded with its usage (else None), once."""
        probe, seen, usage = self.probe, self.seen, self.call.recorded
        self.probe = self.seen = None
        if probe is None or seen is None or usage is None:
            return None
        try:
            return probe, probe.entry(self.model, usage, seen)
        except Exception as exc:
            _cache_failed(self.call.hooks, "entry", exc)
            return None

    def save(self) -> None:
        """Cache a stream that was read to its end (sync clients). Never raises."""
        found = self._cache_entry()
        if found is not None:
            try:
                found[0].put(found[1])
            except Exception as exc:
                _cache_failed(self.call.hooks, "put", exc)

    async def asave(self) -> None:
        """Cache a stream that was read to its end (async clients). Never raises."""
        found = self._cache_entry()
        if found is not None:
            try:
                await found[0].aput(found[1])
            except Exception as exc:
                _cache_failed(self.call.hooks, "put", exc)

    def _observe_chat(self, chunk: Any) -> bool:
        if not self.model:
            self.model = _response_model(chunk)
        usage = read_field(chunk, "usage")
        if usage is None:
            usage = read_field(read_field(chunk, "x_groq"), "usage")
        choices = read_field(chunk, "choices")
        if usage is not None:
            self.usage = usage
            self.service_tier = read_field(chunk, "service_tier")  # the tier that served it, on each chunk
        if isinstance(choices, list):
            finished = True
            for choice in choices:
                content = read_field(read_field(choice, "delta"), "content")
                if isinstance(content, str):
                    self.text.append(content)
                finished = finished and read_field(choice, "finish_reason") is not None
            if choices and finished:
                self.finished_choices = True
            if not choices and usage is not None and self.call.hide_usage_chunk:
                return False
        return True

    def _observe_responses(self, event: Any) -> None:
        kind = read_field(event, "type")
        if kind == "response.output_text.delta":
            delta = read_field(event, "delta")
            if isinstance(delta, str):
                self.text.append(delta)
        elif kind in ("response.completed", "response.incomplete", "response.failed"):
            response = read_field(event, "response")
            self.model = self.model or _response_model(response)
            self.usage = read_field(response, "usage")
            self.ended = True

    def _observe_messages(self, event: Any) -> None:
        kind = read_field(event, "type")
        if kind == "message_start":
            message = read_field(event, "message")
            self.model = self.model or _response_model(message)
            self.start_usage = read_field(message, "usage")
        elif kind == "message_delta":
            usage = read_field(event, "usage")
            if usage is not None:
                self.delta_usage.append(usage)
        elif kind == "content_block_delta":
            delta = read_field(event, "delta")
            for key in ("text", "thinking", "partial_json"):
                piece = read_field(delta, key)
                if isinstance(piece, str):
                    self.text.append(piece)
        elif kind == "message_stop":
            self.ended = True

    # -- finish ------------------------------------------------------------------------------------------
    def finish(self, *, complete: bool) -> None:
        """Record the call: ``complete`` when the stream was read to its end. Idempotent; never raises."""
        call = self.call
        if call.done:
            return
        try:
            if call.kind == "messages" or call.kind == "messages_stream":
                self._finish_messages(complete)
            else:
                self._finish_openai(complete)
        except Exception as exc:
            call.record(None, reason=f"could not read the stream's usage: {type(exc).__name__}", model=self.model)

    def _finish_openai(self, complete: bool) -> None:
        call = self.call
        if self.usage is not None:
            try:
                usage = extract_usage(call.extractor, {"usage": self.usage, "service_tier": self.service_tier})
            except UsageError as exc:
                call.unpriced(str(exc), self.model)
                return
            call.record(usage, model=self.model)
            return
        if complete:
            call._record_missing(NO_USAGE, "".join(self.text), model=self.model)
            return
        self._record_broken(None)

    def _finish_messages(self, complete: bool) -> None:
        call = self.call
        if self.start_usage is None:
            if complete:
                call._record_missing(NO_USAGE, "".join(self.text), model=self.model)
            else:
                self._record_broken(None)
            return
        merged: dict[str, Any] = {}
        for part in (self.start_usage, *self.delta_usage):
            for key in _ANTHROPIC_USAGE_KEYS:
                value = read_field(part, key)
                if value is not None:
                    merged[key] = value
        try:
            usage = extract_usage(call.extractor, {"usage": merged})
        except UsageError as exc:
            call.unpriced(str(exc), self.model)
            return
        if complete and self.delta_usage:
            call.record(usage, model=self.model)
        else:
            self._record_broken(usage)

    def _record_broken(self, seen: Usage | None) -> None:
        """Record a stream broken off early: what it reported, the rest estimated from what it showed."""
        call = self.call
        model = call.model or self.model
        estimate = _estimate(model, call.messages if seen is None else None, "".join(self.text))
        if seen is None and estimate is None:
            call.record(None, status="incomplete", reason=f"{_BROKEN}: no usage seen", model=self.model)
            return
        if seen is None:
            assert estimate is not None
            usage = estimate
            reason = f"{_BROKEN}: prompt and output tokens estimated"
        else:
            output = max(seen.output, estimate.output if estimate is not None else 0)
            usage = dataclasses.replace(seen, output=output)
            reason = f"{_BROKEN}: output tokens estimated"
        call.record(usage, status="incomplete", reason=reason, model=self.model)


class _StreamBase:
    """Shared parts of the stream proxies: attribute pass-through and ``isinstance`` of the SDK's stream."""

    def __init__(self, stream: Any, watch: _Watch) -> None:
        object.__setattr__(self, "_tc_target", stream)
        object.__setattr__(self, "_tc_watch", watch)
        self._tc_on_drop(stream, watch)

    def _tc_on_drop(self, stream: Any, watch: _Watch) -> None:
        # A stream dropped without being read to its end (or closed) is recorded with what it showed.
        weakref.finalize(self, watch.finish, complete=False)

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        return type(object.__getattribute__(self, "_tc_target"))

    def __getattr__(self, name: str) -> Any:
        return getattr(object.__getattribute__(self, "_tc_target"), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(object.__getattribute__(self, "_tc_target"), name, value)

    def __repr__(self) -> str:
        return repr(object.__getattribute__(self, "_tc_target"))


class _SyncStream(_StreamBase):
    """A sync SDK stream whose items are watched (and the hidden usage chunk skipped)."""

    _tc_target: Any
    _tc_watch: _Watch

    def _tc_on_drop(self, stream: Any, watch: _Watch) -> None:
        weakref.finalize(self, _sync_dropped, watch, stream)

    def __iter__(self) -> _SyncStream:
        return self

    def __next__(self) -> Any:
        watch = self._tc_watch
        while True:
            try:
                item = self._tc_target.__next__()
            except StopIteration:
                watch.finish(complete=True)
                watch.save()
                raise
            except BaseException:
                watch.finish(complete=False)
                raise
            if watch.observe(item):
                return item

    def close(self) -> None:
        """Close the response; a stream not read to its end is recorded as incomplete."""
        watch = self._tc_watch
        _drain_tail(watch, self._tc_target)
        try:
            self._tc_target.close()
        finally:
            watch.finish(complete=False)

    def __enter__(self) -> _SyncStream:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class _AsyncStream(_StreamBase):
    """An async SDK stream whose items are watched (and the hidden usage chunk skipped)."""

    _tc_target: Any
    _tc_watch: _Watch

    def __aiter__(self) -> _AsyncStream:
        return self

    async def __anext__(self) -> Any:
        watch = self._tc_watch
        while True:
            try:
                item = await self._tc_target.__anext__()
            except StopAsyncIteration:
                watch.finish(complete=True)
                await watch.asave()
                raise
            except BaseException:
                watch.finish(complete=False)
                raise
            if watch.observe(item):
                return item

    async def close(self) -> None:
        """Close the response; a stream not read to its end is recorded as incomplete."""
        watch = self._tc_watch
        if _wants_tail(watch):
            try:
                for _ in range(_TAIL_CHUNKS):
                    watch.observe(await self._tc_target.__anext__())
            except StopAsyncIteration:
                watch.finish(complete=True)
            except Exception:
                pass
        try:
            await self._tc_target.close()
        finally:
            watch.finish(complete=False)

    async def aclose(self) -> None:
        """Same as ``close()`` (OpenAI's async streams have both)."""
        await self.close()

    async def __aenter__(self) -> _AsyncStream:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


def _wants_tail(watch: _Watch) -> bool:
    """Whether the caller stopped at the last choice, right before the usage chunk we asked for."""
    return not watch.call.done and watch.finished_choices and watch.usage is None and watch.call.hide_usage_chunk


def _drain_tail(watch: _Watch, stream: Any) -> None:
    """Read the few chunks left after the last choice (the usage chunk), so a stopped stream is priced exactly."""
    if not _wants_tail(watch):
        return
    try:
        for _ in range(_TAIL_CHUNKS):
            watch.observe(stream.__next__())
    except StopIteration:
        watch.finish(complete=True)
    except Exception as exc:
        log.debug("tokencost: could not read the end of a stream: %r", exc)


def _sync_dropped(watch: _Watch, stream: Any) -> None:
    _drain_tail(watch, stream)
    watch.finish(complete=False)


def _abandon(call: _Call) -> None:
    """A stream manager dropped: release the call if its request never went out."""
    if not call.sent:
        call.release()


class _ManagerBase:
    """An Anthropic ``messages.stream()`` manager, passed through; the raw event stream inside it is watched."""

    def __init__(self, manager: Any, call: _Call) -> None:
        self._tc_target = manager
        self._tc_call = call
        self._tc_watch = _Watch(call)
        self._tc_stream: Any = None
        weakref.finalize(self, _abandon, call)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tc_target, name)


class _StreamManager(_ManagerBase):
    """Anthropic's sync ``messages.stream()`` manager."""

    def __enter__(self) -> Any:
        try:
            stream = self._tc_target.__enter__()
        except BaseException:
            self._tc_call.release()
            raise
        self._tc_call.sent = True
        self._tc_stream = stream
        _watch_message_stream(stream, self._tc_watch, is_async=False)
        return stream

    def __exit__(self, *exc: Any) -> Any:
        try:
            return self._tc_target.__exit__(*exc)
        finally:
            _finish_message_stream(self._tc_watch, self._tc_stream)


class _AsyncStreamManager(_ManagerBase):
    """Anthropic's async ``messages.stream()`` manager."""

    async def __aenter__(self) -> Any:
        try:
            stream = await self._tc_target.__aenter__()
        except BaseException:
            self._tc_call.release()
            raise
        self._tc_call.sent = True
        self._tc_stream = stream
        _watch_message_stream(stream, self._tc_watch, is_async=True)
        return stream

    async def __aexit__(self, *exc: Any) -> Any:
        try:
            return await self._tc_target.__aexit__(*exc)
        finally:
            _finish_message_stream(self._tc_watch, self._tc_stream)


def _finish_message_stream(watch: _Watch, stream: Any) -> None:
    """The ``with`` block of a ``messages.stream()`` ended: record what the stream showed.

    When the raw events could not be watched, the SDK's accumulated message snapshot gives the usage.
    """
    if not watch.call.done and watch.start_usage is None and stream is not None:
        try:
            snapshot = stream.current_message_snapshot
            usage = snapshot.usage
        except Exception:
            usage = snapshot = None
        if usage is not None:
            watch.start_usage = usage
            watch.delta_usage.append(usage)
            watch.finish(complete=read_field(snapshot, "stop_reason") is not None)
            return
    watch.finish(complete=False)


def _watch_message_stream(stream: Any, watch: _Watch, *, is_async: bool) -> None:
    """Put a watching proxy around the raw event stream a ``MessageStream`` reads (every way of reading it,
    ``text_stream`` and ``get_final_message()`` included, goes through it)."""
    try:
        raw = stream._raw_stream
        stream._raw_stream = _AsyncStream(raw, watch) if is_async else _SyncStream(raw, watch)
    except Exception as exc:
        watch.call.hooks.tracker.ledger.warn(
            "message-stream",
            "tokencost: cannot watch this anthropic SDK's MessageStream (%r); its usage is read when the block exits",
            exc,
        )


# -- helpers ----------------------------------------------------------------------------------------------------
def _warn_unpriced(tracker: Tracking, model: str, reason: str) -> None:
    tracker.ledger.warn(f"usage:{model}:{reason}", "tokencost: %s for %s; recorded unpriced", reason, model)


def _response_model(response: Any) -> str:
    try:
        model = read_field(response, "model")
    except Exception:
        return ""
    return model if isinstance(model, str) else ""


def _prompt_messages(kind: str, kwargs: Mapping[str, Any]) -> list[Any] | None:
    """Return the request's prompt as chat messages for litellm's token counter (None when unknown).

    Only lists are used: an iterator would be consumed here and sent empty.
    """
    messages: list[Any] = []
    if kind in ("messages", "messages_stream"):
        system = kwargs.get("system")
        if isinstance(system, str) and system:
            messages.append({"role": "system", "content": system})
        elif isinstance(system, list):
            text = " ".join(str(read_field(block, "text") or "") for block in system)
            messages.append({"role": "system", "content": text})
        given = kwargs.get("messages")
    elif kind == "responses":
        instructions = kwargs.get("instructions")
        if isinstance(instructions, str) and instructions:
            messages.append({"role": "system", "content": instructions})
        given = kwargs.get("input")
        if isinstance(given, str):
            given = [{"role": "user", "content": given}]
    elif kind == "embeddings":
        given = kwargs.get("input")
        if isinstance(given, str):
            given = [given]
        if isinstance(given, list) and all(isinstance(item, str) for item in given):
            given = [{"role": "user", "content": item} for item in given]
        else:
            given = None
    else:
        given = kwargs.get("messages")
    if not isinstance(given, (list, tuple)):
        return messages or None
    return [*messages, *given]


def _user_of(kind: str, kwargs: Mapping[str, Any]) -> str | None:
    """The end user the request names (OpenAI ``user=``, Anthropic ``metadata.user_id``), for per-user budgets."""
    user = read_field(kwargs.get("metadata"), "user_id") if kind.startswith("messages") else kwargs.get("user")
    return user if isinstance(user, str) and user else None


def _estimate(model: str, messages: Any, text: str) -> Usage | None:
    """Count tokens with litellm's token counter: the prompt from ``messages``, the output from ``text``."""
    import litellm

    try:
        prompt = int(litellm.token_counter(model=model, messages=messages)) if messages else 0
        output = int(litellm.token_counter(model=model, text=text, count_response_tokens=True)) if text else 0
    except Exception as exc:
        log.debug("tokencost: could not estimate tokens for %s: %r", model, exc)
        return None
    if prompt <= 0 and output <= 0:
        return None
    return Usage(input=max(0, prompt), output=max(0, output))


_TEXT_KEYS = frozenset({"text", "content", "output_text", "thinking"})


def _response_text(response: Any) -> str:
    """Collect the generated text of a response (any provider's shape) for a token estimate. Never raises."""
    try:
        if hasattr(response, "model_dump") and callable(response.model_dump):
            response = response.model_dump()
        elif hasattr(response, "to_dict") and callable(response.to_dict):
            response = response.to_dict()
        pieces: list[str] = []
        _collect_text(response, pieces, 0, in_text=False)
        return "".join(pieces)
    except Exception:
        return ""


def _collect_text(value: Any, out: list[str], depth: int, *, in_text: bool) -> None:
    if depth > 12 or len(out) > 10_000:
        return
    if isinstance(value, str):
        if in_text:
            out.append(value)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if key in ("usage", "usage_metadata", "usageMetadata", "meta"):
                continue
            _collect_text(item, out, depth + 1, in_text=key in _TEXT_KEYS)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _collect_text(item, out, depth + 1, in_text=in_text)

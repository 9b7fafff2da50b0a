"""The litellm adapter's state of one tracker: calls seen before their request, until their event is recorded.

* ``log_pre_api_call`` runs in the caller's thread before the request: the call is registered as pending with
  the caller's ``scope()`` metadata and ``budget()`` blocks (contextvars are only readable there).
* Sync success events run on litellm's thread pool *after* ``completion()`` returns. A thread reading a view
  cannot be inside a call at the same time, so views wait for the pending calls the reading thread started:
  totals are current at return, without waiting on other threads' calls still in flight.
* Both success hooks fire for some calls: events are de-duplicated by ``litellm_call_id``.
* A stream broken off before its end gets no success event, though the provider billed it: it is recorded as
  ``incomplete`` (``stream_gone``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tokencost.context import current_scope
from tokencost.enforcement import Enforcer
from tokencost.events import Event
from tokencost.ledger import Ledger
from tokencost.metadata import call_metadata
from tokencost.providers import billed_model, provider_of
from tokencost.recording import Recorder
from tokencost.scoped import active_budgets
from tokencost.usage import Usage, UsageError, from_litellm_usage, read_field, read_service_tier

if TYPE_CHECKING:
    from tokencost.scoped import ScopedBudget

__all__ = ["STREAM_ESTIMATED", "LitellmCalls", "Pending"]

# How long a view waits for the success events of calls the reading thread has made (they fire on litellm's
# pool a few ms after return). Past it the view answers with what is recorded and logs once.
RETURN_WAIT_S = 5.0
# The reason of a stream whose provider sent no usage because the caller did not ask: litellm counted its tokens.
STREAM_ESTIMATED = "estimated: the stream did not ask for its usage (stream_options.include_usage)"
# Providers whose streams carry usage only when ``stream_options.include_usage`` asks for it (OpenAI's API and
# servers that follow it); Anthropic, Gemini, Bedrock, Vertex AI, Groq and Mistral always send it.
_USAGE_ON_REQUEST = frozenset(
    {
        "openai",
        "azure",
        "text-completion-openai",
        "custom_openai",
        "openai_like",
        "hosted_vllm",
        "deepseek",
        "together_ai",
        "fireworks_ai",
        "deepinfra",
    }
)
# Call ids remembered for de-duplication: both success hooks fire within milliseconds of each other.
_SEEN_MAX = 100_000
# litellm's call types of its blocking entry points. Such a call has returned before its thread runs anything
# else, even inside a running event loop (litellm 1.109's sync Router.completion runs litellm.completion inside a
# loop of its own), and its success event comes from litellm's thread pool, never from the loop.
_SYNC_CALL_TYPES = frozenset({"completion", "embedding", "text_completion", "image_generation", "moderation"})


@dataclass(eq=False)
class Pending:
    """A call seen before its request went out, waiting for its success or failure event."""

    thread: int
    stream: bool
    model: str
    scope: Mapping[str, Any]
    budgets: tuple[ScopedBudget, ...]
    messages: Any = None
    ended: bool = False
    in_loop: bool = False  # set up inside a running event loop (an async call, in flight while the loop runs)


class LitellmCalls:
    """Follow one tracker's litellm calls from set-up to their recorded event."""

    def __init__(self, ledger: Ledger, recorder: Recorder, enforcer: Enforcer) -> None:
        self.ledger = ledger
        self.recorder = recorder
        self.enforcer = enforcer
        self.created = dt.datetime.now()  # litellm stamps calls with a naive local datetime.now()
        self.closed = False
        # Guards _pending and _seen; ``returned`` waits on it.
        self.lock = threading.Lock()
        self.returned = threading.Condition(self.lock)
        self._pending: dict[str, Pending] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()

    # -- a call is set up ---------------------------------------------------------------------------------
    def pre_api_call(self, model: Any, messages: Any, kwargs: Any) -> str | None:
        """Register a call as pending; return its call id when it is a stream to follow, else None."""
        call_id = kwargs.get("litellm_call_id")
        if not call_id:
            return None
        stream = bool(kwargs.get("stream"))
        pending = Pending(
            thread=threading.get_ident(),
            stream=stream,
            model=str(model),
            scope=current_scope(),
            budgets=active_budgets(),
            messages=messages if stream else None,
            in_loop=_in_loop(kwargs.get("call_type")),
        )
        with self.lock:
            if call_id in self._seen or call_id in self._pending:
                return None
            self._pending[call_id] = pending
        return call_id if stream else None

    def expect_event(self, call_id: str, model: str, call_type: Any = None) -> bool:
        """A call submitted its sync success event (caller's thread) without a request tokencost saw start:
        a cache hit, a mocked embedding. Register it as pending so views wait for it; False if already known.
        ``call_type`` is litellm's (``"completion"``, ``"acompletion"``...), when known.
        """
        if self.closed or call_id in self._seen or call_id in self._pending:  # read again under the lock below
            return False
        pending = Pending(
            thread=threading.get_ident(),
            stream=False,
            model=model,
            scope=current_scope(),
            budgets=active_budgets(),
            in_loop=_in_loop(call_type),
        )
        with self.lock:
            if call_id in self._seen or call_id in self._pending:
                return False
            self._pending[call_id] = pending
        return True

    def started_before(self, start_time: Any) -> bool:
        """Whether a call began before this tracker existed.

        litellm hands a queued event to whoever is registered when its worker gets to it, even the calls of an
        earlier event loop; those are not this tracker's.
        """
        return isinstance(start_time, dt.datetime) and start_time.tzinfo is None and start_time < self.created

    # -- a call ends --------------------------------------------------------------------------------------
    def on_deployment_success(self, request_data: Mapping[str, Any], response: Any) -> None:
        """Record an async non-stream call from litellm's post-call deployment hook (the caller's task)."""
        try:
            logging_obj = request_data.get("litellm_logging_obj")
            details = getattr(logging_obj, "model_call_details", None)
            kwargs = dict(details) if isinstance(details, Mapping) else dict(request_data)
            kwargs.setdefault("litellm_call_id", request_data.get("litellm_call_id"))
            if getattr(response, "usage", None) is not None and not kwargs.get("stream"):
                self.on_success(kwargs, response)
        except Exception as exc:
            self.ledger.bug("async_post_call_success_deployment_hook", exc)

    def on_success(self, kwargs: Any, response_obj: Any) -> None:
        """Record a finished call once (whichever of litellm's hooks delivers it first)."""
        call_id = kwargs.get("litellm_call_id") if isinstance(kwargs, Mapping) else None
        if isinstance(call_id, str) and call_id in self._seen:  # litellm's second delivery of a recorded call
            return
        try:
            call_id = call_id or uuid.uuid4().hex
            with self.lock:
                if call_id in self._seen:
                    return
                self._seen[call_id] = None
                if len(self._seen) > _SEEN_MAX:
                    self._seen.popitem(last=False)
                pending = self._pending.get(call_id)
            admission = self.enforcer.take(call_id)
            try:
                event = self.event_from_litellm(call_id, kwargs, response_obj, pending)
            except Exception as exc:
                self.ledger.bug("pricing", exc)
                event = Event(
                    call_id,
                    self.ledger.clock(),
                    str(kwargs.get("model") or "unknown"),
                    "unknown",
                    Usage(),
                    None,
                    reason=f"tokencost could not read this call: {type(exc).__name__}",
                )
            self.recorder.commit(event, pending.budgets if pending else (), admission)
        except Exception as exc:
            self.ledger.bug("success event", exc)
        finally:
            self.resolve(kwargs)

    def on_failure(self, kwargs: Any) -> None:
        """Forget a failed call (the provider did not bill it) and release its reservation."""
        try:
            self.enforcer.release(self.enforcer.take(kwargs.get("litellm_call_id")))
        except Exception as exc:
            self.ledger.bug("failure event", exc)
        finally:
            self.resolve(kwargs)

    def resolve(self, kwargs: Any) -> None:
        """A call's event was handled (or will never come): views stop waiting for it."""
        call_id = kwargs.get("litellm_call_id") if isinstance(kwargs, Mapping) else None
        with self.lock:
            if call_id is not None:
                self._pending.pop(call_id, None)
            self.returned.notify_all()

    def event_from_litellm(
        self, call_id: str, kwargs: Mapping[str, Any], response: Any, pending: Pending | None
    ) -> Event:
        """Build the priced event of a litellm call from its success kwargs and response."""
        params = kwargs.get("litellm_params") or {}
        model = str(
            kwargs.get("model") or read_field(response, "model") or (pending.model if pending else "") or "unknown"
        )
        provider = str(
            kwargs.get("custom_llm_provider") or read_field(params, "custom_llm_provider") or provider_of(model)
        )
        model = billed_model(provider, model, read_field(response, "model"), _base_model(kwargs))
        scope = pending.scope if pending else current_scope()
        metadata = call_metadata(scope, read_field(params, "metadata"), kwargs.get("user"))
        complete = kwargs.get("complete_streaming_response")
        usage_obj = read_field(complete, "usage") if complete is not None else None
        if usage_obj is None:
            usage_obj = read_field(response, "usage")
        try:
            read = from_litellm_usage(usage_obj, provider, complete if complete is not None else response)
            if read.service_tier is None:  # the tier the request asked for, when the response does not say
                read.service_tier = read_service_tier(kwargs.get("service_tier") or _optional(kwargs, "service_tier"))
            usage: Usage | None = read
            reason = STREAM_ESTIMATED if complete is not None and _usage_not_asked(kwargs, provider) else None
        except UsageError as exc:
            usage, reason = None, str(exc)
            self.ledger.warn(f"usage:{model}:{reason}", "tokencost: %s for %s; recorded unpriced", reason, model)
        return self.recorder.price_event(
            call_id,
            model,
            provider,
            usage,
            metadata,
            response_cost=_response_cost(kwargs, complete if complete is not None else response),
            cache_hit=bool(kwargs.get("cache_hit")),
            reason=reason,
        )

    # -- streams ------------------------------------------------------------------------------------------
    def mark_stream_ended(self, call_id: str) -> None:
        """The consumer's thread reached a stream's end (litellm's pool also restores after each chunk)."""
        with self.lock:
            pending = self._pending.get(call_id)
            if pending is not None and pending.thread == threading.get_ident():
                pending.ended = True

    def is_unended_stream(self, call_id: str) -> bool:
        """Whether ``call_id`` is a pending call whose consumer has not reached its end."""
        with self.lock:
            pending = self._pending.get(call_id)
            return pending is not None and not pending.ended

    def unfinished_streams(self) -> list[str]:
        """The call ids of streams still open (at exit they were broken off)."""
        with self.lock:
            return [call_id for call_id, p in self._pending.items() if p.stream and not p.ended]

    def stream_gone(self, call_id: str) -> None:
        """A stream's logging object was collected: if it never finished, record it as incomplete."""
        with self.lock:
            pending = self._pending.get(call_id)
            if pending is None or call_id in self._seen:
                return
            self._seen[call_id] = None
            self._pending.pop(call_id, None)
        admission = self.enforcer.take(call_id)
        try:
            prompt = 0
            if pending.messages:
                import litellm

                try:
                    prompt = int(litellm.token_counter(model=pending.model, messages=pending.messages))
                except Exception:
                    prompt = 0
            event = self.recorder.price_event(
                call_id, pending.model, provider_of(pending.model), Usage(input=prompt), dict(pending.scope)
            )
            event = Event(
                event.call_id,
                event.timestamp,
                event.model,
                event.provider,
                event.usage,
                event.cost_units,
                event.price_source,
                event.price,
                0,
                event.metadata,
                "incomplete",
                "stream broken off before its end: prompt tokens estimated, output unknown",
            )
            self.recorder.commit(event, pending.budgets, admission)
        except Exception as exc:
            self.ledger.bug("broken stream", exc)
        finally:
            with self.lock:
                self.returned.notify_all()

    # -- current at return --------------------------------------------------------------------------------
    def await_returned(self) -> None:
        """Wait for the success events of calls the current thread has made (and so has returned from).

        Inside a running event loop only the thread's calls set up outside a loop are waited for (their events
        land on litellm's pool within milliseconds); the loop's own calls may still be in flight.
        """
        if not self._pending:
            return
        if not self.wait_returned(time.monotonic() + RETURN_WAIT_S, in_loop=_loop_running()):
            self.ledger.warn("late-events", "tokencost: litellm's success events are late; totals may lag")

    def wait_returned(self, deadline: float, *, in_loop: bool = False) -> bool:
        """Wait until no returned call waits for its event, or ``deadline`` (monotonic); False when it passed."""
        with self.lock:
            while self._has_returned_pending(in_loop):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.returned.wait(left)
        return True

    def _has_returned_pending(self, in_loop: bool = False) -> bool:
        """Whether a call that has returned still waits for its success event (call with ``lock`` held).

        Calls made by this thread, or by threads that have ended, have returned; a live thread's pending call
        may still be in flight. A stream has returned once the consumer's thread ended it. ``in_loop``: the
        caller runs in an event loop, where only this thread's calls made outside a loop have surely returned.
        """
        me = threading.get_ident()
        if in_loop:
            return any(p.thread == me and not p.in_loop and (not p.stream or p.ended) for p in self._pending.values())
        alive = {t.ident for t in threading.enumerate()} - {me}
        return any(p.thread not in alive and (not p.stream or p.ended) for p in self._pending.values())


def _optional(kwargs: Mapping[str, Any], key: str) -> Any:
    """One of litellm's ``optional_params`` of a call (what is sent to the provider), or None."""
    params = kwargs.get("optional_params")
    return params.get(key) if isinstance(params, Mapping) else None


def _usage_not_asked(kwargs: Mapping[str, Any], provider: str) -> bool:
    """Whether a stream's provider sent no usage because the call did not ask (litellm then counts the tokens)."""
    if provider not in _USAGE_ON_REQUEST:
        return False
    options = kwargs.get("stream_options")
    return not (isinstance(options, Mapping) and options.get("include_usage") is True)


def _response_cost(kwargs: Mapping[str, Any], response: Any) -> Any:
    """litellm's ``response_cost`` of a call, or a function computing it from the response when it is not set yet."""
    cost = kwargs.get("response_cost")
    if cost is not None or response is None:
        return cost

    def compute() -> Any:
        import litellm

        return litellm.completion_cost(completion_response=response)

    return compute


def _base_model(kwargs: Mapping[str, Any]) -> str | None:
    """litellm's ``base_model`` of a call (``litellm_params.base_model`` or ``model_info.base_model``), or None.

    Read from the call's ``litellm_params`` (where every supported litellm puts it), then through litellm's own
    ``get_base_model_from_metadata`` (which finds it in 1.110 but not in 1.98).
    """
    params = kwargs.get("litellm_params") or {}
    found: Any = read_field(params, "base_model")
    for holder in (read_field(params, "model_info"), read_field(read_field(params, "metadata"), "model_info")):
        if not found:
            found = read_field(holder, "base_model")
    if not found:
        try:
            found = _litellm_base_model()(model_call_details=kwargs)
        except Exception:  # an older or newer litellm without it: no base model
            return None
    if not isinstance(found, str) or not found:
        return None
    # litellm names it with its provider prefix ("azure/gpt-4o"), as in its map.
    return found.split("/", 1)[1] if found.startswith(("azure/", "azure_ai/")) else found


@functools.cache
def _litellm_base_model() -> Callable[..., Any]:
    """litellm's ``get_base_model_from_metadata`` (imported once: every call's event asks for it)."""
    from litellm.utils import get_base_model_from_metadata

    return get_base_model_from_metadata  # type: ignore[no-any-return]


def _in_loop(call_type: Any) -> bool:
    """Whether a call set up now may still be in flight while this thread's event loop runs.

    An async call inside a running loop may be; a blocking call (by litellm's ``call_type``) never is.
    """
    return str(getattr(call_type, "value", call_type)) not in _SYNC_CALL_TYPES and _loop_running()


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True

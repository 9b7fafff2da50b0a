"""The litellm adapter: the ``CustomLogger`` hooks litellm calls on a tracker, each handing the call to the part
that does the work (``LitellmCalls`` follows calls from set-up to their event, ``Enforcer`` admits or refuses).

``CostTracker`` inherits these hooks; it is what users hand to ``litellm.callbacks``. docs/litellm.md lists which
hook litellm calls when, with the version it was checked on and the test guarding it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litellm.integrations.custom_logger import CustomLogger

from tokencost._litellm_glue import watch_stream

if TYPE_CHECKING:
    from tokencost.enforcement import Enforcer
    from tokencost.ledger import Ledger
    from tokencost.litellm_calls import LitellmCalls

__all__ = ["LitellmHooks"]


class LitellmHooks(CustomLogger):  # type: ignore[misc]
    """litellm's hooks on a tracker; they only delegate to the tracker's parts."""

    calls: LitellmCalls
    enforcer: Enforcer
    ledger: Ledger

    def log_pre_api_call(self, model: Any, messages: Any, kwargs: Any) -> None:
        """Register the call as pending, capturing the caller's scope (runs in the caller's thread)."""
        try:
            stream_id = self.calls.pre_api_call(model, messages, kwargs)
            if stream_id is not None:
                watch_stream(self.calls, stream_id)
        except Exception as exc:
            self.ledger.bug("log_pre_api_call", exc)

    def log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        """Record a finished call (litellm's thread pool, after ``completion()`` returned)."""
        if self.calls.started_before(start_time):
            self.calls.resolve(kwargs)
        else:
            self.calls.on_success(kwargs, response_obj)

    async def async_log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        """Record a finished async call (litellm's background worker); de-duplicated by call id."""
        self.log_success_event(kwargs, response_obj, start_time, end_time)

    def log_failure_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        """Forget a failed call: the provider did not bill it; release its reservation."""
        self.calls.on_failure(kwargs)

    async def async_log_failure_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        """Forget a failed async call and release its reservation."""
        self.calls.on_failure(kwargs)

    async def async_post_call_success_deployment_hook(
        self, request_data: dict[str, Any], response: Any, call_type: Any
    ) -> Any:
        """Record an async non-stream call in the caller's task, before ``await`` returns."""
        self.calls.on_deployment_success(request_data, response)
        return None

    async def async_pre_call_deployment_hook(self, kwargs: dict[str, Any], call_type: Any) -> dict[str, Any] | None:
        """Refuse an async call (or Router call) whose budget is spent, before its request is sent."""
        self.enforcer.admit_kwargs(kwargs)
        return None

    def pre_call_check(self, deployment: dict[str, Any]) -> dict[str, Any] | None:
        """Refuse a sync Router call whose tracker-wide or ``scope()`` budget is spent."""
        self.enforcer.check_deployment(deployment)
        return None

    async def async_pre_call_check(
        self, deployment: dict[str, Any], parent_otel_span: Any = None
    ) -> dict[str, Any] | None:
        """Refuse an async Router call whose tracker-wide or ``scope()`` budget is spent."""
        return self.pre_call_check(deployment)

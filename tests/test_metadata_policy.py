"""One metadata policy on every entry point: secrets never stored, internal keys dropped, the same call attributed
the same way plain or streamed, and the tags a budget checks are the tags recorded."""

from __future__ import annotations

import asyncio
from typing import Any

import litellm
import pytest

from tokencost import Budget, CostTracker
from tokencost.testing import FakeProvider

MESSAGES = [{"role": "user", "content": "hello"}]
SECRET = "sk-proj-" + "A1b2C3d4" * 4

# What litellm's proxy puts in a request's metadata beside the caller's own (abridged from a real event).
PROXY_METADATA: dict[str, Any] = {
    "user_api_key_hash": "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b",
    "user_api_key_alias": None,
    "user_api_key_team_id": "team-1",
    "user_api_key_user_id": "default_user_id",
    "user_api_key_org_id": None,
    "user_api_key_team_alias": None,
    "user_api_key_end_user_id": None,
    "user_api_end_user_max_budget": None,
    "litellm_api_version": "1.110.2",
    "global_max_parallel_requests": None,
    "headers": {"content-type": "application/json", "authorization": f"Bearer {SECRET}"},
    "requester_ip_address": "127.0.0.1",
    "spend_logs_metadata": None,
    "applied_guardrails": [],
    "_pipeline_managed_guardrails": None,
    "model_group": "main",
    "deployment": "openai/gpt-4o",
    "model_info": {"id": "abc", "db_model": False},
    "api_base": "http://127.0.0.1:1/v1",
    "caching_groups": None,
}


def _kw(fake: FakeProvider, **extra: Any) -> dict[str, Any]:
    return {
        "model": "openai/gpt-4o",
        "messages": MESSAGES,
        "api_base": fake.openai_base,
        "api_key": SECRET,
        "max_retries": 0,
        **extra,
    }


def _stored(tracker: CostTracker) -> list[dict[str, Any]]:
    return [dict(event.metadata) for event in tracker.events()]


def test_track_keeps_attribution_and_drops_secrets_and_internal_keys() -> None:
    tracker = CostTracker(print_summary=False)
    tracker.track(
        model="gpt-4o",
        prompt_tokens=10,
        completion_tokens=5,
        metadata={
            "user": "alice",
            "feature": "search",
            "tags": ["batch", "User-Agent: OpenAI/Python 1.99.0"],
            "openai_api_key": SECRET,
            "token": SECRET,  # a harmless key name holding a key
            "auth": f"Bearer {SECRET}",
            "hidden_params": {"api_base": "http://x"},
            "_internal": 1,
            "litellm_call_id": "abc",
        },
    )
    assert _stored(tracker) == [{"user": "alice", "feature": "search", "tags": ["batch"]}]
    assert SECRET not in repr(tracker.history)


def test_track_response_and_the_litellm_path_apply_the_same_policy(fake: FakeProvider) -> None:
    tracker = CostTracker(print_summary=False)
    litellm.callbacks = [tracker]
    meta = {"user": "bob", **PROXY_METADATA}
    litellm.completion(**_kw(fake, metadata=dict(meta)))
    response = {"model": "gpt-4o", "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}
    tracker.track_response("openai", "gpt-4o", response, metadata=dict(meta))
    tracker.track(model="gpt-4o", prompt_tokens=10, completion_tokens=5, metadata=dict(meta))
    stored = _stored(tracker)
    assert stored == [{"user": "bob", "model_group": "main"}] * 3
    assert SECRET not in repr(tracker.history)


def test_a_streamed_call_is_attributed_like_a_plain_one(fake: FakeProvider) -> None:
    """Plain, streamed, async and async-streamed calls with the same metadata record the same metadata."""
    tracker = CostTracker(budgets=[Budget(limit_usd=10, per="tag")], print_summary=False)
    litellm.callbacks = [tracker]
    meta = {"tags": ["batch"], "user": "carol"}
    litellm.completion(**_kw(fake, metadata=dict(meta)))
    list(litellm.completion(**_kw(fake, metadata=dict(meta), stream=True, stream_options={"include_usage": True})))

    async def both() -> None:
        await litellm.acompletion(**_kw(fake, metadata=dict(meta)))
        stream = await litellm.acompletion(
            **_kw(fake, metadata=dict(meta), stream=True, stream_options={"include_usage": True})
        )
        async for _ in stream:
            pass

    asyncio.run(both())
    asyncio.run(tracker.aflush(10))
    assert _stored(tracker) == [meta] * 4
    assert [line.label for line in tracker.budget_lines()] == ["tag=batch"]  # no phantom User-Agent line


@pytest.mark.parametrize(
    "value",
    [SECRET, f"Bearer {SECRET}", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl"],
    ids=["api-key", "bearer", "jwt"],
)
def test_secret_shaped_values_are_never_stored(value: str) -> None:
    tracker = CostTracker(print_summary=False)
    tracker.track(model="gpt-4o", prompt_tokens=1, completion_tokens=1, metadata={"note": value, "list": [value]})
    assert _stored(tracker) == [{}]


def test_header_derived_tags_are_not_recorded(fake: FakeProvider) -> None:
    """litellm derives "User-Agent: ..." request tags from the proxy's request headers; admission never sees
    them, so recording them made a per-tag budget show a scope that no check enforced."""
    tracker = CostTracker(budgets=[Budget(limit_usd=10, per="tag")], print_summary=False)
    litellm.callbacks = [tracker]
    headers = {"user-agent": "OpenAI/Python 1.99.0", "authorization": f"Bearer {SECRET}"}
    litellm.completion(**_kw(fake, metadata={"user": "dave"}, proxy_server_request={"headers": headers}))
    list(
        litellm.completion(
            **_kw(fake, metadata={"user": "dave"}, proxy_server_request={"headers": headers}, stream=True)
        )
    )
    tracker.flush(10)
    assert _stored(tracker) == [{"user": "dave"}] * 2
    assert tracker.budget_lines() == []
    assert SECRET not in repr(tracker.history)

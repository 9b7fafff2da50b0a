"""tokencost.testing for users' tests: the fake's reply function (text, tool calls) and the tracker helpers."""

from __future__ import annotations

import json
import os
from decimal import Decimal
from typing import Any

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import httpx
import litellm
import pytest

from tokencost import BudgetExceededError
from tokencost.testing import (
    FakeProvider,
    RecordedRequest,
    Reply,
    ToolCall,
    assert_cost,
    recorded_calls,
    recording_tracker,
)

MESSAGES = [{"role": "user", "content": "What is the weather in Paris?"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]


def weather_agent(request: RecordedRequest) -> Reply | str:
    """Ask for the tool until a tool result is in the conversation, then answer with text."""
    messages = request.body.get("messages", [])
    seen_result = any(
        m.get("role") == "tool"
        or (isinstance(m.get("content"), list) and any(part.get("type") == "tool_result" for part in m["content"]))
        for m in messages
    )
    if seen_result:
        return "Sunny, 21 degrees."
    return Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"}, id="call_1")])


def usd_per_token(model: str, key: str) -> Decimal:
    """A price straight from litellm's map, as the exact decimal it is written with."""
    return Decimal(str(litellm.model_cost[model][key]))


def gpt4o_cost(prompt: int, completion: int) -> Decimal:
    return prompt * usd_per_token("gpt-4o", "input_cost_per_token") + completion * usd_per_token(
        "gpt-4o", "output_cost_per_token"
    )


def test_openai_tool_call_then_text_through_litellm(fake: FakeProvider) -> None:
    fake.set_reply(weather_agent)
    first = litellm.completion(
        model="openai/gpt-4o", messages=MESSAGES, tools=TOOLS, api_base=fake.openai_base, api_key="sk-fake"
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert (call.id, call.function.name, json.loads(call.function.arguments)) == (
        "call_1",
        "get_weather",
        {"city": "Paris"},
    )
    follow_up = [
        *MESSAGES,
        choice.message.model_dump(),
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    second = litellm.completion(
        model="openai/gpt-4o", messages=follow_up, tools=TOOLS, api_base=fake.openai_base, api_key="sk-fake"
    )
    assert second.choices[0].message.content == "Sunny, 21 degrees."
    assert second.choices[0].finish_reason == "stop"


def test_openai_streamed_tool_call_assembles(fake: FakeProvider) -> None:
    fake.set_reply(lambda request: Reply(text="Let me look.", tool_calls=[ToolCall("get_weather", '{"city": "Oslo"}')]))
    stream = litellm.completion(
        model="openai/gpt-4o",
        messages=MESSAGES,
        tools=TOOLS,
        stream=True,
        api_base=fake.openai_base,
        api_key="sk-fake",
    )
    built = litellm.stream_chunk_builder(list(stream))
    message = built.choices[0].message
    assert message.content == "Let me look."
    assert message.tool_calls[0].function.name == "get_weather"
    assert json.loads(message.tool_calls[0].function.arguments) == {"city": "Oslo"}


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_tool_use_through_litellm(fake: FakeProvider, stream: bool) -> None:
    fake.set_reply(weather_agent)
    response = litellm.completion(
        model="anthropic/claude-sonnet-4-5",
        messages=MESSAGES,
        tools=TOOLS,
        stream=stream,
        api_base=fake.anthropic_base,
        api_key="fake",
    )
    if stream:
        response = litellm.stream_chunk_builder(list(response))
    call = response.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert fake.requests[-1].body["tools"][0]["name"] == "get_weather"


def test_reply_function_gets_the_request_and_plain_text_is_the_answer(fake: FakeProvider) -> None:
    seen: list[RecordedRequest] = []

    def echo(request: RecordedRequest) -> str:
        seen.append(request)
        return "echo: " + request.body["messages"][-1]["content"]

    fake.set_reply(echo)
    response = litellm.completion(
        model="openai/gpt-4o", messages=MESSAGES, api_base=fake.openai_base, api_key="sk-fake"
    )
    assert response.choices[0].message.content == "echo: What is the weather in Paris?"
    assert [r.path for r in seen] == ["/v1/chat/completions"]
    fake.reset()  # back to the default answer
    response = litellm.completion(
        model="openai/gpt-4o", messages=MESSAGES, api_base=fake.openai_base, api_key="sk-fake"
    )
    assert response.choices[0].message.content == "Hello from the fake provider."


def test_a_failing_reply_function_answers_500(fake: FakeProvider) -> None:
    def broken(request: RecordedRequest) -> str:
        raise KeyError("oops")

    fake.set_reply(broken)
    answer = httpx.post(fake.openai_base + "/chat/completions", json={"model": "gpt-4o", "messages": []})
    assert answer.status_code == 500
    assert "KeyError" in answer.json()["error"]["message"]


def test_recording_tracker_and_assert_cost(fake: FakeProvider) -> None:
    fake.set_openai_usage("gpt-4o", prompt_tokens=1_000, completion_tokens=200)
    found = list(litellm.callbacks)
    with recording_tracker() as tracker:
        assert tracker in litellm.callbacks
        for _ in range(3):
            litellm.completion(model="openai/gpt-4o", messages=MESSAGES, api_base=fake.openai_base, api_key="sk-fake")
        expected = 3 * gpt4o_cost(1_000, 200)
        assert assert_cost(tracker, expected, calls=3) == expected
        assert_cost(tracker, expected, calls=3, model="openai/gpt-4o")
        assert [call["prompt_tokens"] for call in recorded_calls(tracker, "gpt-4o")] == [1_000] * 3
        assert recorded_calls(tracker, "claude-sonnet-4-5") == []
        with pytest.raises(AssertionError, match=r"cost .* != expected") as failed:
            assert_cost(tracker, expected + Decimal("0.000001"))
        assert "gpt-4o: 1000 in, 200 out" in str(failed.value)
        with pytest.raises(AssertionError, match="3 calls recorded, expected 2"):
            assert_cost(tracker, expected, calls=2)
        with pytest.raises(TypeError):
            assert_cost(tracker, 0.1)  # type: ignore[arg-type]
    assert tracker not in litellm.callbacks
    assert list(litellm.callbacks) == found


def test_assert_cost_fails_on_unpriced_calls(fake: FakeProvider) -> None:
    with recording_tracker() as tracker:
        litellm.completion(
            model="openai/no-such-model-xyz", messages=MESSAGES, api_base=fake.openai_base, api_key="sk-fake"
        )
        with pytest.raises(AssertionError, match="1 unpriced call"):
            assert_cost(tracker, 0, calls=1)
        assert_cost(tracker, 0, calls=1, allow_unpriced=True)


def test_recording_tracker_takes_tracker_options(fake: FakeProvider) -> None:
    fake.set_openai_usage("gpt-4o", prompt_tokens=1_000, completion_tokens=200)
    kwargs: dict[str, Any] = {"api_base": fake.openai_base, "api_key": "sk-fake"}
    with recording_tracker(budget=gpt4o_cost(1_000, 200) / 2) as tracker:
        litellm.completion(model="openai/gpt-4o", messages=MESSAGES, **kwargs)  # the crossing call completes
        with pytest.raises(BudgetExceededError):
            litellm.completion(model="openai/gpt-4o", messages=MESSAGES, **kwargs)
        assert fake.request_count("/v1/chat") == 1
        assert_cost(tracker, gpt4o_cost(1_000, 200), calls=1)

"""LangChain's ``langchain_litellm.ChatLiteLLM``: invoke, stream, ainvoke, astream and a tool call, through litellm.

What the user catches on a refusal: tokencost's ``BudgetExceededError`` itself (ChatLiteLLM lets it through
unwrapped, and does not retry it).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_litellm import ChatLiteLLM

from tokencost import BudgetExceededError
from tokencost.testing import FakeProvider, RecordedRequest, Reply, ToolCall, recording_tracker

from . import (
    CACHED_TOKENS,
    COMPLETION_TOKENS,
    MODEL,
    PROMPT_TOKENS,
    ExitRuns,
    assert_each_call_once,
    assert_one_summary,
    call_cost,
    chat_requests,
)

# What the exit-summary test runs in a fresh interpreter (conftest starts every selected one at once).
EXIT_SCRIPT = """
from langchain_litellm import ChatLiteLLM
chat = ChatLiteLLM(model="openai/" + MODEL, api_base=fake.openai_base, api_key="sk-fake")
chat.invoke("hello")
list(chat.stream("hello"))
"""


def _chat(fake: FakeProvider) -> ChatLiteLLM:
    return ChatLiteLLM(model=f"openai/{MODEL}", api_base=fake.openai_base, api_key="sk-fake")


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"18C in {city}"


def _weather_reply(request: RecordedRequest) -> Reply | str:
    if any(m.get("role") == "tool" for m in request.body["messages"]):
        return "It is 18C in Paris."
    return Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"}, id="call_1")])


def test_invoke_stream_ainvoke_astream_and_a_tool_call_are_each_counted_once(priced: FakeProvider) -> None:
    """Every ChatLiteLLM entry point is counted once at the exact cost, current right after it returns; LangChain's
    own usage report agrees with what was recorded; streams ask for their usage (recorded exactly, not estimated)."""
    chat = _chat(priced)
    with recording_tracker() as tracker:
        reply = chat.invoke("hello")
        assert reply.usage_metadata is not None
        assert (reply.usage_metadata["input_tokens"], reply.usage_metadata["output_tokens"]) == (
            PROMPT_TOKENS,
            COMPLETION_TOKENS,
        )
        assert reply.usage_metadata.get("input_token_details", {}).get("cache_read") == CACHED_TOKENS
        assert_each_call_once(tracker, priced, 1)

        chunks = list(chat.stream("hello"))
        assert "".join(str(c.content) for c in chunks) == "Hello from the fake provider."
        assert_each_call_once(tracker, priced, 2)

        async def in_the_loop() -> tuple[Any, ...]:
            await chat.ainvoke("hello")
            after_ainvoke = (tracker.request_count, tracker.total_cost)
            async for _ in chat.astream("hello"):
                pass
            return after_ainvoke, (tracker.request_count, tracker.total_cost)

        after_ainvoke, after_astream = asyncio.run(in_the_loop())
        assert after_ainvoke == (3, call_cost() * 3)  # read inside the event loop, right after the await
        assert after_astream == (4, call_cost() * 4)
        assert_each_call_once(tracker, priced, 4)
        assert [r.body.get("stream_options") for r in priced.requests if r.stream] == [{"include_usage": True}] * 2

        priced.set_reply(_weather_reply)
        with_tools = chat.bind_tools([get_weather])
        messages: list[Any] = [HumanMessage("Weather in Paris?")]
        first = with_tools.invoke(messages)
        assert isinstance(first, AIMessage)
        assert [call["name"] for call in first.tool_calls] == ["get_weather"]
        messages += [first, ToolMessage(get_weather.invoke(first.tool_calls[0]["args"]), tool_call_id="call_1")]
        assert with_tools.invoke(messages).content == "It is 18C in Paris."
        assert_each_call_once(tracker, priced, 6)


@pytest.mark.parametrize("entry", ["invoke", "stream", "ainvoke", "astream"])
def test_a_spent_budget_refuses_the_next_call_with_our_error_and_sends_nothing(
    priced: FakeProvider, entry: str
) -> None:
    """A budget of exactly one call: the first call spends it, the next one raises tokencost's BudgetExceededError
    out of ChatLiteLLM as it is, and no request reaches the fake."""
    chat = _chat(priced)

    async def astream() -> None:
        async for _ in chat.astream("hello"):
            pass

    entries = {
        "invoke": lambda: chat.invoke("hello"),
        "stream": lambda: list(chat.stream("hello")),
        "ainvoke": lambda: asyncio.run(chat.ainvoke("hello")),
        "astream": lambda: asyncio.run(astream()),
    }
    with recording_tracker(budget=str(call_cost())) as tracker:
        entries[entry]()
        assert tracker.total_cost == tracker.budget == call_cost()
        with pytest.raises(BudgetExceededError) as refused:
            entries[entry]()
        assert refused.value.scope == "total"
        assert chat_requests(priced) == 1
        assert tracker.request_count == 1


def test_the_exit_summary_is_printed_once(exit_runs: ExitRuns) -> None:
    """A program using ChatLiteLLM (invoke and stream) prints one exit summary, with both calls at their cost."""
    done = exit_runs[__name__].result()
    assert_one_summary(done.stderr, calls=2)

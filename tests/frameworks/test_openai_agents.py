"""The OpenAI Agents SDK with ``agents.extensions.models.litellm_model.LitellmModel``: ``Runner.run`` and
``Runner.run_streamed``, an agent calling a tool, through litellm.

What the user catches on a refusal: tokencost's ``BudgetExceededError`` itself, out of ``await Runner.run(...)``
and out of ``async for event in result.stream_events()`` (the SDK does not wrap it, and does not retry it).
Streamed runs ask for their usage only with ``ModelSettings(include_usage=True)``; without it litellm counts the
tokens and the call is recorded as estimated.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from agents import Agent, ModelSettings, Runner, function_tool, set_tracing_disabled
from agents.extensions.models.litellm_model import LitellmModel

from tokencost import BudgetExceededError, CostTracker
from tokencost.litellm_calls import STREAM_ESTIMATED
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

set_tracing_disabled(True)  # the SDK would export traces to OpenAI's servers


# What the exit-summary test runs in a fresh interpreter (conftest starts every selected one at once).
EXIT_SCRIPT = """
import asyncio
from agents import Agent, ModelSettings, Runner, set_tracing_disabled
from agents.extensions.models.litellm_model import LitellmModel
set_tracing_disabled(True)
model = LitellmModel(model="openai/" + MODEL, base_url=fake.openai_base, api_key="sk-fake")
agent = Agent(name="a", instructions="Answer.", model=model, model_settings=ModelSettings(include_usage=True))
Runner.run_sync(agent, "hello")

async def streamed():
    async for _ in Runner.run_streamed(agent, "hello").stream_events():
        pass

asyncio.run(streamed())
"""


def _weather_reply(request: RecordedRequest) -> Reply | str:
    if any(m.get("role") == "tool" for m in request.body["messages"]):
        return "It is 18C in Paris."
    return Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"})])


def _agent(fake: FakeProvider, tool_calls: list[str], **settings: Any) -> Agent[Any]:
    @function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        tool_calls.append(city)
        return f"18C in {city}"

    model = LitellmModel(model=f"openai/{MODEL}", base_url=fake.openai_base, api_key="sk-fake")
    return Agent(
        name="weather",
        instructions="Answer briefly.",
        tools=[get_weather],
        model=model,
        model_settings=ModelSettings(**settings),
    )


async def _streamed(agent: Agent[Any], tracker: CostTracker) -> tuple[Any, tuple[int, Any]]:
    result = Runner.run_streamed(agent, "Weather in Paris?")
    async for _ in result.stream_events():
        pass
    return result, (tracker.request_count, tracker.total_cost)


def test_run_and_run_streamed_count_every_model_call_once(priced: FakeProvider) -> None:
    """A run calling one tool makes two model calls: both are counted once at the exact cost, current inside the
    event loop right after the run returns (or its events end), and the SDK's own usage agrees."""
    priced.set_reply(_weather_reply)
    tools: list[str] = []
    agent = _agent(priced, tools, include_usage=True)
    with recording_tracker() as tracker:

        async def run() -> tuple[Any, tuple[int, Any]]:
            result = await Runner.run(agent, "Weather in Paris?")
            return result, (tracker.request_count, tracker.total_cost)

        result, at_return = asyncio.run(run())
        assert result.final_output == "It is 18C in Paris."
        assert tools == ["Paris"]
        assert at_return == (2, call_cost() * 2)
        usage = result.context_wrapper.usage
        assert (usage.requests, usage.input_tokens, usage.output_tokens) == (
            2,
            2 * PROMPT_TOKENS,
            2 * COMPLETION_TOKENS,
        )
        assert usage.input_tokens_details.cached_tokens == 2 * CACHED_TOKENS
        assert_each_call_once(tracker, priced, 2)

        streamed, at_end = asyncio.run(_streamed(agent, tracker))
        assert streamed.final_output == "It is 18C in Paris."
        assert at_end == (4, call_cost() * 4)
        assert_each_call_once(tracker, priced, 4)
        assert [r.body.get("stream_options") for r in priced.requests if r.stream] == [{"include_usage": True}] * 2


def test_a_streamed_run_without_include_usage_is_recorded_as_estimated(priced: FakeProvider) -> None:
    """Without ModelSettings(include_usage=True) the provider sends no usage on a stream: both calls are recorded
    once, with the reason saying litellm estimated them (their cost is not the provider's)."""
    priced.set_reply(_weather_reply)
    agent = _agent(priced, [])
    with recording_tracker() as tracker:
        asyncio.run(_streamed(agent, tracker))
        assert chat_requests(priced) == tracker.request_count == 2
        assert [e["reason"] for e in tracker.history] == [STREAM_ESTIMATED] * 2


@pytest.mark.parametrize("entry", ["run", "run_streamed"])
def test_a_spent_budget_refuses_the_next_run_with_our_error_and_sends_nothing(priced: FakeProvider, entry: str) -> None:
    """A budget of exactly one call: the first run spends it, the next one raises tokencost's BudgetExceededError
    out of the SDK as it is, and no request reaches the fake."""
    agent = _agent(priced, [], include_usage=True)

    async def go() -> None:
        if entry == "run":
            await Runner.run(agent, "hello")
        else:
            async for _ in Runner.run_streamed(agent, "hello").stream_events():
                pass

    with recording_tracker(budget=str(call_cost())) as tracker:
        asyncio.run(go())
        assert tracker.total_cost == call_cost()
        with pytest.raises(BudgetExceededError) as refused:
            asyncio.run(go())
        assert refused.value.scope == "total"
        assert chat_requests(priced) == tracker.request_count == 1


def test_a_budget_spent_by_the_first_model_call_stops_the_run_before_the_second(priced: FakeProvider) -> None:
    """The agent's first call (asking for the tool) spends the budget: the tool runs, the call after it is refused,
    the run raises our error, and the fake got one request."""
    priced.set_reply(_weather_reply)
    tools: list[str] = []
    agent = _agent(priced, tools)
    with recording_tracker(budget=str(call_cost())) as tracker:
        with pytest.raises(BudgetExceededError):
            asyncio.run(Runner.run(agent, "Weather in Paris?"))
        assert tools == ["Paris"]
        assert_each_call_once(tracker, priced, 1)


def test_the_exit_summary_is_printed_once(exit_runs: ExitRuns) -> None:
    """A program running an agent (run and run_streamed) prints one exit summary, with its calls at their cost."""
    done = exit_runs[__name__].result()
    assert_one_summary(done.stderr, calls=2)

"""smolagents with ``LiteLLMModel``: a ``ToolCallingAgent`` calling a tool (plain and with streamed outputs), a
``CodeAgent``, and the model's own calls, through litellm.

What the user catches on a refusal: out of ``agent.run(...)``, smolagents' ``AgentGenerationError``, raised from
tokencost's ``BudgetExceededError`` (its ``__cause__``); out of ``model.generate(...)`` /
``model.generate_stream(...)``, ``BudgetExceededError`` itself. smolagents retries rate-limit errors only, so a
refusal is not retried.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from smolagents import CodeAgent, LiteLLMModel, ToolCallingAgent, tool
from smolagents.utils import AgentGenerationError

from tokencost import BudgetExceededError
from tokencost.testing import FakeProvider, RecordedRequest, Reply, ToolCall, recording_tracker

from . import (
    COMPLETION_TOKENS,
    MODEL,
    PROMPT_TOKENS,
    ExitRuns,
    assert_each_call_once,
    assert_one_summary,
    budget_error_in,
    call_cost,
    chat_requests,
)

QUIET = -1  # smolagents' LogLevel.OFF
HELLO: list[dict[str, Any]] = [{"role": "user", "content": [{"type": "text", "text": "hello"}]}]


# What the exit-summary test runs in a fresh interpreter (conftest starts every selected one at once).
EXIT_SCRIPT = """
from smolagents import CodeAgent, LiteLLMModel
fake.set_reply(lambda request: "Thought: easy.\\n<code>\\nfinal_answer('Paris')\\n</code>")
model = LiteLLMModel(model_id="openai/" + MODEL, api_base=fake.openai_base, api_key="sk-fake")
assert CodeAgent(tools=[], model=model, max_steps=2, verbosity_level=-1).run("Capital?") == "Paris"
"""


def _model(fake: FakeProvider) -> LiteLLMModel:
    return LiteLLMModel(model_id=f"openai/{MODEL}", api_base=fake.openai_base, api_key="sk-fake")


def _tool_agent(fake: FakeProvider, tool_calls: list[str], **options: Any) -> ToolCallingAgent:
    @tool
    def get_weather(city: str) -> str:
        """The weather in a city.

        Args:
            city: The city's name.
        """
        tool_calls.append(city)
        return f"18C in {city}"

    return ToolCallingAgent(tools=[get_weather], model=_model(fake), max_steps=4, verbosity_level=QUIET, **options)


def _weather_reply(request: RecordedRequest) -> Reply | str:
    """Ask for the tool, then (its result is in the conversation) give the final answer, as a tool call too."""
    if "18C in Paris" in json.dumps(request.body["messages"]):
        return Reply(tool_calls=[ToolCall("final_answer", {"answer": "18C in Paris"})])
    return Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"})])


@pytest.mark.parametrize("stream_outputs", [False, True], ids=["generate", "generate_stream"])
def test_a_tool_calling_agent_run_counts_every_model_call_once(
    priced: FakeProvider, stream_outputs: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run calling one tool then answering makes two model calls: both counted once at the exact cost, current
    when run() returns, and smolagents' own token counts agree (streamed outputs ask for their usage)."""
    priced.set_reply(_weather_reply)
    tools: list[str] = []
    agent = _tool_agent(priced, tools, stream_outputs=stream_outputs)
    with recording_tracker() as tracker:
        assert agent.run("Weather in Paris?") == "18C in Paris"
        assert tools == ["Paris"]
        assert_each_call_once(tracker, priced, 2)
        counts = agent.monitor.get_total_token_counts()
        assert (counts.input_tokens, counts.output_tokens) == (2 * PROMPT_TOKENS, 2 * COMPLETION_TOKENS)
        assert [r.stream for r in priced.requests] == [stream_outputs] * 2
        if stream_outputs:
            assert {json.dumps(r.body.get("stream_options")) for r in priced.requests} == {'{"include_usage": true}'}


def test_a_code_agent_run_and_model_calls_are_each_counted_once(priced: FakeProvider) -> None:
    """A CodeAgent answering in one step, then model.generate and model.generate_stream: three calls, each counted
    once at the exact cost, current at return."""
    priced.set_reply(lambda request: "Thought: I know it.\n<code>\nfinal_answer('Paris')\n</code>")
    model = _model(priced)
    agent = CodeAgent(tools=[], model=model, max_steps=2, verbosity_level=QUIET)
    with recording_tracker() as tracker:
        assert agent.run("The capital of France?") == "Paris"
        assert_each_call_once(tracker, priced, 1)
        message = model.generate(HELLO)
        assert message.token_usage is not None
        assert (message.token_usage.input_tokens, message.token_usage.output_tokens) == (
            PROMPT_TOKENS,
            COMPLETION_TOKENS,
        )
        assert_each_call_once(tracker, priced, 2)
        assert "".join(delta.content or "" for delta in model.generate_stream(HELLO)).startswith("Thought:")
        assert_each_call_once(tracker, priced, 3)


def test_a_spent_budget_refuses_the_next_run_and_model_call_with_our_error_and_sends_nothing(
    priced: FakeProvider,
) -> None:
    """A budget of exactly one call: after the run that spends it, agent.run raises AgentGenerationError from
    tokencost's BudgetExceededError, model.generate and generate_stream raise ours as it is; nothing is sent."""
    priced.set_reply(lambda request: "Thought: I know it.\n<code>\nfinal_answer('Paris')\n</code>")
    model = _model(priced)
    agent = CodeAgent(tools=[], model=model, max_steps=2, verbosity_level=QUIET)
    with recording_tracker(budget=str(call_cost())) as tracker:
        agent.run("The capital of France?")
        assert tracker.total_cost == call_cost()
        with pytest.raises(AgentGenerationError) as wrapped:
            agent.run("And of Italy?")
        assert isinstance(wrapped.value.__cause__, BudgetExceededError)
        with pytest.raises(BudgetExceededError):
            model.generate(HELLO)
        with pytest.raises(BudgetExceededError):
            list(model.generate_stream(HELLO))
        assert chat_requests(priced) == tracker.request_count == 1


def test_a_budget_spent_by_the_first_step_stops_the_run_at_the_second(priced: FakeProvider) -> None:
    """The first step's call (asking for the tool) spends the budget: the tool runs, the second step's call is
    refused, run() raises AgentGenerationError from our error, and the fake got one request."""
    priced.set_reply(_weather_reply)
    tools: list[str] = []
    agent = _tool_agent(priced, tools)
    with recording_tracker(budget=str(call_cost())) as tracker:
        with pytest.raises(AgentGenerationError) as wrapped:
            agent.run("Weather in Paris?")
        refusal = budget_error_in(wrapped.value)
        assert refusal is not None and refusal.scope == "total"
        assert tools == ["Paris"]
        assert_each_call_once(tracker, priced, 1)


def test_the_exit_summary_is_printed_once(exit_runs: ExitRuns) -> None:
    """A program running a CodeAgent prints one exit summary, with its call at its cost."""
    done = exit_runs[__name__].result()
    assert_one_summary(done.stderr, calls=1)

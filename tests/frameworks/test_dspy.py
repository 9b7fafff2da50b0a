"""DSPy's ``dspy.LM`` with ``engine="litellm"``: ``Predict``, ``ReAct`` calling a tool, the LM called directly, sync
and async, through litellm.

DSPy 3.4's default engine (``"auto"``) sends every call its native lm15 client can make (an OpenAI model with an
``api_base``, say) straight to the provider, past litellm: tokencost sees none of them. ``engine="litellm"`` keeps
DSPy on litellm. tokencost warns once when the LM configured in DSPy uses such an engine (``tokencost.frameworks``).

What the user catches on a refusal: DSPy's ``dspy.LMBillingError``, raised from lm15's ``BillingError``, raised
from tokencost's ``BudgetExceededError`` (walk ``__cause__``). DSPy does not retry it.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterator
from typing import Any

import dspy
import pytest

from tokencost import BudgetExceededError
from tokencost.frameworks import forget_warnings
from tokencost.testing import FakeProvider, RecordedRequest, recording_tracker

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

# What the exit-summary test runs in a fresh interpreter (conftest starts every selected one at once).
EXIT_SCRIPT = """
import dspy
fake.set_reply(lambda request: "[[ ## answer ## ]]\\nParis\\n\\n[[ ## completed ## ]]")
where = dict(api_base=fake.openai_base, api_key="sk-fake", cache=False)
dspy.configure(lm=dspy.LM("openai/" + MODEL, engine="litellm", **where))
assert dspy.Predict("question -> answer")(question="Capital of France?").answer == "Paris"
dspy.configure(lm=dspy.LM("openai/" + MODEL, **where))
"""


def _lm(fake: FakeProvider, **options: Any) -> dspy.LM:
    options.setdefault("engine", "litellm")
    return dspy.LM(f"openai/{MODEL}", api_base=fake.openai_base, api_key="sk-fake", cache=False, **options)


def _fields(**values: str) -> str:
    """An answer in DSPy's chat adapter format: each output field under its ``[[ ## name ## ]]`` header."""
    return "".join(f"[[ ## {name} ## ]]\n{value}\n\n" for name, value in values.items()) + "[[ ## completed ## ]]"


def _weather(city: str) -> str:
    """The weather in a city."""
    return f"18C in {city}"


def _program_reply(request: RecordedRequest) -> str:
    """Answer Predict("question -> answer") and ReAct (pick the tool, then finish, then extract) as a model would."""
    system = request.body["messages"][0]["content"]
    conversation = str(request.body["messages"])
    if "Your output fields are:" not in system:
        return "Hello."  # a plain prompt
    outputs = re.findall(r"^\d+\. `(\w+)`", system.split("Your output fields are:", 1)[1], flags=re.MULTILINE)
    if "next_tool_name" in outputs:
        tool = re.findall(r"Literal\['(\w+)', 'finish'\]", system)[0]
        if "18C in Paris" in conversation:
            return _fields(next_thought="I know it now.", next_tool_name="finish", next_tool_args="{}")
        return _fields(next_thought="Ask the tool.", next_tool_name=tool, next_tool_args='{"city": "Paris"}')
    return _fields(**{name: "It is 18C in Paris." if name == "answer" else "Because." for name in outputs})


@pytest.fixture
def no_framework_warnings() -> Iterator[None]:
    forget_warnings()
    yield
    forget_warnings()


def test_predict_react_and_direct_lm_calls_are_each_counted_once(priced: FakeProvider) -> None:
    """Predict (one call), ReAct calling a tool (three calls) and the LM called directly (one): each counted once at
    the exact cost, current when the program returns; DSPy's own usage record agrees."""
    priced.set_reply(_program_reply)
    lm = _lm(priced)
    with recording_tracker() as tracker, dspy.context(lm=lm):
        assert dspy.Predict("question -> answer")(question="Weather in Paris?").answer == "It is 18C in Paris."
        assert_each_call_once(tracker, priced, 1)
        usage = lm.history[-1]["usage"]
        assert (usage["prompt_tokens"], usage["completion_tokens"]) == (PROMPT_TOKENS, COMPLETION_TOKENS)

        react = dspy.ReAct("question -> answer", tools=[_weather], max_iters=3)
        prediction = react(question="Weather in Paris?")
        assert prediction.answer == "It is 18C in Paris."
        assert prediction.trajectory["observation_0"] == "18C in Paris"
        assert_each_call_once(tracker, priced, 4)

        assert lm("hello") == ["Hello."]
        assert_each_call_once(tracker, priced, 5)


def test_async_calls_are_current_inside_the_event_loop(priced: FakeProvider) -> None:
    """``await Predict(...).acall()`` and ``await lm.acall()``: counted, at the exact cost, right after the await."""
    priced.set_reply(_program_reply)
    lm = _lm(priced)
    with recording_tracker() as tracker:

        async def main() -> list[tuple[int, Any]]:
            seen = []
            with dspy.context(lm=lm):
                await dspy.Predict("question -> answer").acall(question="Weather in Paris?")
                seen.append((tracker.request_count, tracker.total_cost))
                await lm.acall("hello")
                seen.append((tracker.request_count, tracker.total_cost))
            return seen

        assert asyncio.run(main()) == [(1, call_cost()), (2, call_cost() * 2)]
        assert_each_call_once(tracker, priced, 2)


@pytest.mark.parametrize("entry", ["predict", "lm", "acall"])
def test_a_spent_budget_refuses_the_next_call_with_our_error_and_sends_nothing(
    priced: FakeProvider, entry: str
) -> None:
    """A budget of exactly one call: the first call spends it; the next raises dspy.LMBillingError raised from
    tokencost's BudgetExceededError, and no request reaches the fake."""
    priced.set_reply(_program_reply)
    lm = _lm(priced)
    entries = {
        "predict": lambda: dspy.Predict("question -> answer")(question="Weather?"),
        "lm": lambda: lm("hello"),
        "acall": lambda: asyncio.run(lm.acall("hello")),
    }
    with recording_tracker(budget=str(call_cost())) as tracker, dspy.context(lm=lm):
        entries[entry]()
        assert tracker.total_cost == call_cost()
        with pytest.raises(dspy.LMBillingError) as refused:
            entries[entry]()
        refusal = budget_error_in(refused.value)
        assert isinstance(refusal, BudgetExceededError) and refusal.scope == "total"
        assert str(refusal) in str(refused.value)
        assert chat_requests(priced) == tracker.request_count == 1


def test_a_budget_spent_by_reacts_first_call_stops_it_at_the_next(priced: FakeProvider) -> None:
    """ReAct's first call (picking the tool) spends the budget: the tool runs, the next call is refused, ReAct
    raises dspy.LMBillingError from our error, and the fake got one request."""
    priced.set_reply(_program_reply)
    cities: list[str] = []

    def weather(city: str) -> str:
        """The weather in a city."""
        cities.append(city)
        return _weather(city)

    react = dspy.ReAct("question -> answer", tools=[weather], max_iters=3)
    with recording_tracker(budget=str(call_cost())) as tracker, dspy.context(lm=_lm(priced)):
        with pytest.raises(dspy.LMBillingError) as refused:
            react(question="Weather in Paris?")
        assert budget_error_in(refused.value) is not None
        assert cities == ["Paris"]
        assert_each_call_once(tracker, priced, 1)


def test_the_default_engine_bypasses_litellm_and_a_tracker_says_so_once(
    priced: FakeProvider, caplog: pytest.LogCaptureFixture, no_framework_warnings: None
) -> None:
    """DSPy's default engine reaches the provider without litellm: the request is sent, nothing is recorded. With
    such an LM configured, the tracker built next warns once (not again for the next tracker); with
    engine="litellm" configured, nothing is said."""
    bypassing = _lm(priced, engine="auto")
    with caplog.at_level(logging.WARNING, logger="tokencost"):
        with recording_tracker() as tracker:
            assert bypassing("hello") == ["Hello from the fake provider."]
            assert (chat_requests(priced), tracker.request_count) == (1, 0)
        assert caplog.records == []  # not configured in DSPy: not seen

        with dspy.context(lm=_lm(priced)), recording_tracker():
            pass
        assert caplog.records == []

        with dspy.context(lm=bypassing), recording_tracker(), recording_tracker():
            pass
        (warning,) = caplog.records
        assert "engine='auto'" in warning.getMessage()
        assert 'engine="litellm"' in warning.getMessage()


def test_the_exit_summary_is_printed_once_and_a_default_engine_configured_later_is_warned_about(
    exit_runs: ExitRuns,
) -> None:
    """A DSPy program (tracker first, LM configured after) prints one exit summary with its call at its cost; an LM
    on the default engine configured after the tracker was built is warned about at exit."""
    done = exit_runs[__name__].result()
    assert_one_summary(done.stderr, calls=1)
    assert done.stderr.count("engine='auto'") == 1

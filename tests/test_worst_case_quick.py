"""The quick bound of a strict budget's worst case never counts less than the exact count it stands in for.

A small plain-text prompt is bounded by its UTF-8 size instead of running litellm's tokenizer (the exact count,
``WorstCaseRequest.prompt_tokens`` without ``quick``, is the reference); a call the bound does not fit is
counted exactly before it is refused.
"""

from __future__ import annotations

import os

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

from typing import Any

import litellm
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokencost import Budget, BudgetExceededError, CostTracker
from tokencost.worst_case import QUICK_BOUND_BYTES, WorstCaseRequest, quick_bound

# An OpenAI model (litellm counts with its own tokenizer) and models litellm counts with another one.
MODELS = [("gpt-4o", None), ("claude-sonnet-4-5", "anthropic"), ("gemini/gemini-2.5-flash", "gemini")]

text = st.text(max_size=300)
part = st.builds(lambda t: {"type": "text", "text": t}, text)
message = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "assistant"]), "content": st.one_of(text, st.lists(part, max_size=3))},
    optional={"name": st.text(alphabet="abcdefghij_", min_size=1, max_size=12)},
)
tool = st.builds(
    lambda name, description: {
        "type": "function",
        "function": {"name": name, "description": description, "parameters": {"type": "object", "properties": {}}},
    },
    st.text(alphabet="abcdefghij_", min_size=1, max_size=20),
    text,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(message, min_size=1, max_size=5), st.lists(tool, max_size=2), st.sampled_from(MODELS))
def test_the_quick_bound_never_counts_less_than_the_tokenizer(
    messages: list[dict[str, Any]], tools: list[dict[str, Any]], model: tuple[str, str | None]
) -> None:
    name, provider = model
    request = WorstCaseRequest(tools=tuple(tools), provider=provider)
    exact = request.prompt_tokens(name, messages)
    quick = request.prompt_tokens(name, messages, quick=True)
    assert quick >= exact
    if quick_bound(messages, tuple(tools)) is None:  # too big or not plain text: the tokenizer counted it
        assert quick == exact


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "user", "content": "x" * (QUICK_BOUND_BYTES + 1)}],
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}],
        [{"role": "assistant", "content": None, "tool_calls": [{"id": "1", "type": "function"}]}],
        "not a list",
    ],
)
def test_requests_that_are_not_small_plain_text_are_counted_exactly(messages: Any) -> None:
    assert quick_bound(messages) is None


def test_a_call_the_bound_does_not_fit_is_admitted_on_its_exact_count() -> None:
    """1,500 bytes of English: about 250 tokens as counted, 1,500 by the bound.

    gpt-4o at $2.50 / $10 per million: counted, the worst case is about 251 x 2.5 + 10 x 10 = $0.00073; bounded,
    about 1,524 x 2.5 + 100 = $0.0039. A strict $0.002 budget admits the call (on the count), and still refuses
    one whose exact worst case passes it.
    """
    tracker = CostTracker(budgets=[Budget(limit_usd="0.002", strict=True)], print_summary=False)
    litellm.callbacks = [tracker]
    prompt = [{"role": "user", "content": "hello " * 250}]
    assert quick_bound(prompt) is not None and quick_bound(prompt) > 1_500  # type: ignore[operator]
    response = litellm.completion(model="gpt-4o", messages=prompt, max_tokens=10, mock_response="ok")
    assert response.choices and tracker.request_count == 1
    with pytest.raises(BudgetExceededError):
        litellm.completion(model="gpt-4o", messages=prompt, max_tokens=200, mock_response="ok")  # $0.0026 worst
    assert tracker.request_count == 1
    tracker.close()

"""tokencost in one minute, offline: real litellm calls against a loopback fake provider, priced exactly.

Run: python examples/quickstart.py
"""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no fetch of litellm's price map

import litellm

import tokencost
from tokencost import BudgetExceededError, CostTracker
from tokencost.testing import FakeProvider


def main() -> None:
    """Make a few calls through litellm, hit a budget, and print the summary."""
    tracker = CostTracker(budget="0.05")  # prints a summary on stderr at exit
    litellm.callbacks = [tracker]
    messages = [{"role": "user", "content": "Say hello"}]

    with FakeProvider() as fake:  # an OpenAI- and Anthropic-shaped server on 127.0.0.1
        fake.set_openai_usage("gpt-4o", prompt_tokens=10_000, completion_tokens=500, cached_tokens=8_000)
        fake.set_anthropic_usage(
            "claude-sonnet-4-5",
            input_tokens=100,
            output_tokens=500,
            cache_creation_input_tokens=2_000,
            cache_read_input_tokens=8_000,
        )
        openai = {"api_base": fake.openai_base, "api_key": "sk-fake"}
        anthropic = {"api_base": fake.anthropic_base, "api_key": "fake"}

        litellm.completion(model="openai/gpt-4o", messages=messages, **openai)
        print(f"after one gpt-4o call:  ${tracker.total_cost}")  # 0.02, current at return

        with tokencost.scope(user="alice", tags=["demo"]):
            for _ in litellm.completion(
                model="anthropic/claude-sonnet-4-5", messages=messages, stream=True, **anthropic
            ):
                pass
        print(f"after a claude stream: ${tracker.total_cost}")  # + 0.0177

        litellm.completion(model="openai/gpt-4o", messages=messages, **openai)  # crosses the $0.05 budget
        try:
            litellm.completion(model="openai/gpt-4o", messages=messages, **openai)
        except BudgetExceededError as exc:
            print(f"refused before sending: {exc}")
        print(f"requests the provider saw: {fake.request_count()}")

    print(f"by model: {tracker.cost_by_model}")
    print(f"by user:  {tracker.cost_by('user')}")


if __name__ == "__main__":
    main()

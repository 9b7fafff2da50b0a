"""The worst case a strict budget reserves before a call: every prompt part counted, every possible output token.

A strict budget must never be exceeded by what the provider can honestly bill, so the reservation counts what
litellm's token counter sees of the request (messages, tool and function definitions, a ``response_format``
schema) and ``n`` times the output limit (``max_tokens``, else the model's maximum output).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tokencost.money import from_units

__all__ = ["WorstCase", "WorstCaseRequest", "count_prompt"]

# Tokens a provider adds around each tool definition and schema beyond their text (names, braces, framing).
_PER_TOOL_TOKENS = 16
# litellm counts with OpenAI's tokenizer where it has no other; other providers' tokenizers can count more.
_FOREIGN_TOKENIZER_MARGIN = 1.25


@dataclass(frozen=True)
class WorstCaseRequest:
    """The parts of a call's arguments that change how much it can be billed, besides messages and max_tokens."""

    n: int = 1
    tools: tuple[Any, ...] = ()
    response_format: Any = None
    provider: str | None = None

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any]) -> WorstCaseRequest:
        """Read ``n``, ``tools``/``functions`` and ``response_format`` from litellm call kwargs."""
        n = kwargs.get("n")
        tools = [*(kwargs.get("tools") or ()), *(kwargs.get("functions") or ())]
        return cls(
            n=n if isinstance(n, int) and not isinstance(n, bool) and n > 1 else 1,
            tools=tuple(tools),
            response_format=kwargs.get("response_format"),
            provider=kwargs.get("custom_llm_provider") or None,
        )

    def prompt_tokens(self, model: str, messages: Any) -> int:
        """Count the prompt as the provider will see it, never less than litellm's counter says."""
        import litellm

        count = count_prompt(model, messages, chars_per_token=2)
        for part in (*self.tools, self.response_format):
            if part is None:
                continue
            try:
                text = part if isinstance(part, str) else json.dumps(_plain(part), default=str)
                count += int(litellm.token_counter(model=model, text=text)) + _PER_TOOL_TOKENS
            except Exception:
                count += len(str(part)) // 2 + _PER_TOOL_TOKENS
        if not _counts_natively(model, self.provider):
            count = int(count * _FOREIGN_TOKENIZER_MARGIN) + 1
        return count


def count_prompt(model: str, messages: Any, *, chars_per_token: int = 4) -> int:
    """Count the tokens of ``messages`` with litellm's counter (``chars_per_token`` when it cannot count)."""
    if not messages:
        return 0
    import litellm

    try:
        return int(litellm.token_counter(model=model, messages=messages))
    except Exception:
        return len(str(messages)) // chars_per_token + 1


@dataclass(frozen=True)
class WorstCase:
    """What a call can be billed at most: pico-dollars (None when no price is known) and tokens."""

    units: int | None
    tokens: int
    prompt_tokens: int
    output_tokens: int
    max_tokens_given: bool

    def describe(self) -> str:
        """Say what this call would reserve, and how to make it smaller."""
        money = "" if self.units is None else f"${from_units(self.units)} "
        text = f"this call would reserve {money}({self.prompt_tokens:,} prompt + {self.output_tokens:,} output tokens)"
        if not self.max_tokens_given:
            text += "; no max_tokens was given, so the model's whole output limit is reserved: pass max_tokens"
            text += " to reserve less and let the call fit"
        return text


def _plain(value: Any) -> Any:
    """A pydantic model or other object with ``model_dump`` as plain data (for counting its JSON)."""
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        try:
            return dump()
        except Exception:
            return str(value)
    if isinstance(value, type):
        schema = getattr(value, "model_json_schema", None)
        if callable(schema):
            try:
                return schema()
            except Exception:
                return str(value)
    return value


def _counts_natively(model: str, provider: str | None) -> bool:
    """Whether litellm's counter uses this model's own tokenizer (OpenAI's models and their hosts)."""
    name = model.rsplit("/", 1)[-1].lower()
    return (provider in (None, "openai", "azure", "text-completion-openai")) and name.startswith(
        ("gpt-", "o1", "o3", "o4", "chatgpt", "text-embedding", "davinci", "babbage")
    )

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

__all__ = ["QUICK_BOUND_BYTES", "QUICK_ROOM", "WorstCase", "WorstCaseRequest", "count_prompt", "quick_bound"]

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

    def prompt_tokens(self, model: str, messages: Any, *, quick: bool = False) -> int:
        """Count the prompt as the provider will see it, never less than litellm's counter says.

        ``quick``: a small, plain-text request is bounded by its UTF-8 size instead (``quick_bound``), which
        never counts less than this method without it; the caller counts exactly when the bound does not fit.
        """
        if quick:
            bound = quick_bound(messages, self.tools, self.response_format)
            if bound is not None:
                return bound if _counts_natively(model, self.provider) else int(bound * _FOREIGN_TOKENIZER_MARGIN) + 1
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


# The largest request (UTF-8 bytes of its text) the quick bound is used for: it reserves at most this many input
# tokens more than the exact count while the call is in flight (about 3 times the count of English text).
QUICK_BOUND_BYTES = 2048
# The bound is reserved only while a budget has room for this many calls of it; nearer the limit, the exact count.
QUICK_ROOM = 8
# Tokens litellm's counter and the providers add per message (role framing, names) and per request, at most.
_QUICK_PER_MESSAGE = 8
_QUICK_PER_REQUEST = 16


def quick_bound(messages: Any, tools: tuple[Any, ...] = (), response_format: Any = None) -> int | None:
    """An upper bound of the prompt tokens of a small, plain-text request, without running a tokenizer.

    A token of any tokenizer litellm counts with stands for at least one byte of the text, so the UTF-8 size of
    every string in the messages (roles, names and contents, text parts only), plus the framing tokens per
    message and per request, is never less than the exact count. None when a message holds anything but text
    (images, audio, tool calls) or the request passes ``QUICK_BOUND_BYTES``: then the tokenizer counts it.
    ``WorstCaseRequest.prompt_tokens`` without ``quick`` is the reference it is tested against.
    """
    if not isinstance(messages, (list, tuple)):
        return None
    size = 0
    for message in messages:
        if not isinstance(message, Mapping):
            return None
        for value in message.values():
            if isinstance(value, str):
                size += len(value.encode())
            elif isinstance(value, list):
                for part in value:
                    if not (
                        isinstance(part, Mapping) and part.get("type") == "text" and isinstance(part.get("text"), str)
                    ):
                        return None
                    size += len(part["text"].encode()) + len("text")
            elif value is not None:
                return None
        if size > QUICK_BOUND_BYTES:
            return None
    count = size + _QUICK_PER_MESSAGE * len(messages) + _QUICK_PER_REQUEST
    for part in (*tools, response_format):
        if part is None:
            continue
        if not isinstance(part, (str, Mapping)):
            return None  # a pydantic model or class: the exact path dumps it
        try:
            text = part if isinstance(part, str) else json.dumps(part, default=str)
        except Exception:
            return None
        size += len(text.encode())
        count += len(text.encode()) + _PER_TOOL_TOKENS
        if size > QUICK_BOUND_BYTES:
            return None
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

"""Usage extractors: read the token usage out of a provider's raw response, SDK object or JSON dict.

An extractor is ``fn(response) -> Usage``; one is registered per provider name. Built in:

==========================  ==================================================================================
``openai``                  chat completions (``usage.prompt_tokens`` including ``prompt_tokens_details``
                            ``.cached_tokens``; ``completion_tokens`` including ``completion_tokens_details``
                            ``.reasoning_tokens``), the Responses API (``usage.input_tokens`` / ``output_tokens``
                            with ``input_tokens_details.cached_tokens`` and ``output_tokens_details``
                            ``.reasoning_tokens``), embeddings; also for ``azure``, ``groq``, ``mistral``,
                            ``together``, ``openrouter``, ``deepseek``, ``fireworks``, ``deepinfra``,
                            ``cerebras`` (OpenAI-compatible APIs); read by ``usage.read_openai_usage``, as on
                            the litellm path
``xai``                     OpenAI's shape, but ``completion_tokens`` *excludes* ``reasoning_tokens``
``anthropic``               Messages: ``usage.input_tokens`` *excludes* ``cache_read_input_tokens`` and
                            ``cache_creation_input_tokens``
``gemini``                  ``usage_metadata`` / ``usageMetadata``: ``promptTokenCount`` *includes*
                            ``cachedContentTokenCount``; ``thoughtsTokenCount`` is billed as output and is
                            *not* in ``candidatesTokenCount``; the audio part of the cache
                            (``cacheTokensDetails``) is ``cache_read_audio``; also ``google``
``openrouter``              OpenAI's shape; ``usage.cost`` is OpenRouter's own bill, and the call is priced at it
``bedrock``                 Converse: ``usage.inputTokens`` *excludes* ``cacheReadInputTokens`` and
                            ``cacheWriteInputTokens``; an InvokeModel body in Anthropic's or OpenAI's shape
``vertex_ai``               Gemini's ``usageMetadata``, or Claude on Vertex in Anthropic's Messages shape
``cohere``                  ``meta.billed_units`` (v1) or ``usage.billed_units`` (v2): what Cohere bills
==========================  ==================================================================================

``extract_usage(provider, response)`` never raises anything but ``UsageError``, whatever the payload: a
response is data from the network, and reading it must not break the caller's program.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from typing import Any

from tokencost.usage import (
    BUCKETS,
    Usage,
    UsageError,
    from_openai_counts,
    read_billing_facts,
    read_count,
    read_openai_usage,
    split_cache_reads,
    split_cache_writes,
)

__all__ = [
    "UsageExtractor",
    "anthropic_usage",
    "bedrock_usage",
    "cohere_usage",
    "extract_usage",
    "gemini_usage",
    "openai_usage",
    "openrouter_usage",
    "register_usage_extractor",
    "registered_providers",
    "usage_extractor",
    "vertex_usage",
    "xai_usage",
]

UsageExtractor = Callable[[Any], Usage]

# More tokens than this in one bucket of one call is not a usage report but garbage (or an overflow waiting
# to happen in a store's 64-bit integers once multiplied by a price in pico-dollars).
MAX_TOKENS = 10**12
NO_USAGE = "no usage in response"
# A provider's bill above $1M for one call is garbage too (pico-dollars).
MAX_BILL = 10**18


def _field(obj: Any, *names: str) -> Any:
    """Return the first of ``names`` that ``obj`` has and is not None (a mapping key or an attribute)."""
    if obj is None:
        return None
    for name in names:
        value = obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)
        if value is not None:
            return value
    return None


def _has_any(obj: Any, *names: str) -> bool:
    return _field(obj, *names) is not None


def _count(obj: Any, *names: str) -> int:
    """Read one count (0 when absent) stored under any of ``names``."""
    return read_count(_field(obj, *names), names[0])


def _empty(obj: Any) -> bool:
    """Whether ``obj`` is an empty JSON object or list (an absent usage, as some providers send it)."""
    return isinstance(obj, (Mapping, list, tuple)) and not obj


def _items(value: Any) -> list[Any]:
    """Return a JSON list (or SDK list) as a Python list; anything else as an empty one."""
    if isinstance(value, (list, tuple)):
        return list(value)
    return []


# -- OpenAI and compatible ------------------------------------------------------------------------------------
_CHAT_KEYS = ("prompt_tokens", "completion_tokens")
_RESPONSES_KEYS = ("input_tokens", "output_tokens")


def _openai_usage_object(response: Any) -> Any:
    usage = _field(response, "usage")
    if usage is None:
        # Groq puts the usage of a stream's last chunk under x_groq.
        usage = _field(_field(response, "x_groq"), "usage")
    if usage is None and _has_any(response, *_CHAT_KEYS, *_RESPONSES_KEYS):
        usage = response  # the caller passed ``response.usage`` itself
    return usage


def openai_usage(response: Any) -> Usage:
    """Read an OpenAI (or OpenAI-compatible) chat completion, Responses API response or embedding.

    The counts are read by ``usage.read_openai_usage``, the reader the litellm path uses too.

    Raises:
        UsageError: when the response has no usage or a count cannot be read.
    """
    usage = _openai_usage_object(response)
    if usage is None or _empty(usage):
        raise UsageError(NO_USAGE)
    return read_openai_usage(usage, response=response)


def xai_usage(response: Any) -> Usage:
    """Read an xAI chat completion: OpenAI's shape, but ``completion_tokens`` leaves the reasoning tokens out.

    (``total_tokens`` counts them: a payload where ``total_tokens == prompt_tokens + completion_tokens`` was
    already normalized, e.g. by litellm, and is read as OpenAI's.)

    Raises:
        UsageError: when the response has no usage or a count cannot be read.
    """
    usage = _openai_usage_object(response)
    if usage is None or _empty(usage):
        raise UsageError(NO_USAGE)
    return read_openai_usage(usage, reasoning_outside_completion=True, response=response)


def openrouter_usage(response: Any) -> Usage:
    """Read an OpenRouter chat completion: OpenAI's shape, plus ``usage.cost``, OpenRouter's own bill in USD.

    The bill is kept as ``Usage.billed_units``: the call is priced at what OpenRouter charged
    (``price_source`` "provider"), whichever upstream served it.

    Raises:
        UsageError: when the response has no usage or a count cannot be read.
    """
    usage = _openai_usage_object(response)
    if usage is None or _empty(usage):
        raise UsageError(NO_USAGE)
    return read_openai_usage(usage, billed_in_usage=True, response=response)


# -- Anthropic --------------------------------------------------------------------------------------------------
def anthropic_usage(response: Any) -> Usage:
    """Read an Anthropic Messages response (or a ``message_start`` event, or ``response.usage`` itself).

    ``input_tokens`` excludes the cache reads and writes, which are billed at their own prices. The 1-hour cache
    writes (``cache_creation.ephemeral_1h_input_tokens``) go to ``cache_write_1h``; web searches
    (``server_tool_use.web_search_requests``), ``service_tier`` and ``inference_geo`` are read too.

    Raises:
        UsageError: when the response has no usage or a count cannot be read.
    """
    usage = _field(response, "usage")
    if usage is None:
        usage = _field(_field(response, "message"), "usage")  # a message_start stream event
    if usage is None and _has_any(response, "input_tokens", "output_tokens"):
        usage = response
    if usage is None or _empty(usage):
        raise UsageError(NO_USAGE)
    if not _has_any(usage, "input_tokens") and _has_any(usage, "prompt_tokens"):
        return read_openai_usage(usage, response=response)  # normalized by litellm: the prompt includes the cache
    if not _has_any(usage, "input_tokens"):
        raise UsageError("usage has no input_tokens")
    split = _field(usage, "cache_creation")
    cache_write = _count(usage, "cache_creation_input_tokens")
    if not cache_write:
        cache_write = _count(split, "ephemeral_5m_input_tokens") + _count(split, "ephemeral_1h_input_tokens")
    result = Usage(
        input=_count(usage, "input_tokens"),
        cache_read=_count(usage, "cache_read_input_tokens"),
        cache_write=cache_write,
        output=_count(usage, "output_tokens"),
    )
    split_cache_writes(result, _count(split, "ephemeral_1h_input_tokens"))
    read_billing_facts(result, usage, response)
    return result


# -- Gemini -----------------------------------------------------------------------------------------------------
_PROMPT = ("prompt_token_count", "promptTokenCount")
_CANDIDATES = ("candidates_token_count", "candidatesTokenCount")
_CACHED = ("cached_content_token_count", "cachedContentTokenCount")
_THOUGHTS = ("thoughts_token_count", "thoughtsTokenCount")
_TOOL_USE = ("tool_use_prompt_token_count", "toolUsePromptTokenCount")
_TOTAL = ("total_token_count", "totalTokenCount")


def _modality_count(details: Any, modality: str) -> int:
    """Sum the ``tokenCount`` of one modality in a ``*TokensDetails`` list."""
    total = 0
    for item in _items(details):
        name = _field(item, "modality")
        # The SDK gives an enum (MediaModality.AUDIO), JSON gives "AUDIO".
        label = getattr(name, "value", name)
        if isinstance(label, str) and label.upper() == modality:
            total += _count(item, "token_count", "tokenCount")
    return total


def _search_grounded(response: Any) -> bool:
    """Whether Google Search grounding ran: its retrieved tokens are billed per query, not as input tokens."""
    for candidate in _items(_field(response, "candidates")):
        grounding = _field(candidate, "grounding_metadata", "groundingMetadata")
        if _items(_field(grounding, "web_search_queries", "webSearchQueries")):
            return True
    return False


def gemini_usage(response: Any) -> Usage:
    """Read a Gemini ``generateContent`` response (google-genai SDK object or REST JSON).

    ``promptTokenCount`` includes ``cachedContentTokenCount``; ``thoughtsTokenCount`` is billed as output and is
    not part of ``candidatesTokenCount`` (when the counts show it is, as some Vertex versions report, it is taken
    out); tool-use prompt tokens are billed as input unless Google Search grounding ran. The audio part of the
    cached tokens (``cacheTokensDetails``, modality ``AUDIO``) is ``cache_read_audio``, at its own price.

    Raises:
        UsageError: when the response has no usage metadata or a count cannot be read.
    """
    meta = _field(response, "usage_metadata", "usageMetadata")
    if meta is None and _has_any(response, *_PROMPT, *_CANDIDATES, *_TOTAL):
        meta = response
    if meta is None or _empty(meta) or not _has_any(meta, *_PROMPT, *_CANDIDATES, *_TOTAL):
        raise UsageError(NO_USAGE)
    prompt = _count(meta, *_PROMPT)
    candidates = _count(meta, *_CANDIDATES)
    cached = _count(meta, *_CACHED)
    thoughts = _count(meta, *_THOUGHTS)
    tool_use = _count(meta, *_TOOL_USE)
    total = _count(meta, *_TOTAL)
    if thoughts and _has_any(meta, *_TOTAL) and prompt + candidates + tool_use == total:
        candidates -= thoughts  # this report counts the thoughts inside the candidates
        if candidates < 0:
            raise UsageError("thoughtsTokenCount exceeds candidatesTokenCount")
    billed_tool_use = 0 if _search_grounded(response) else tool_use
    prompt_audio = _modality_count(_field(meta, "prompt_tokens_details", "promptTokensDetails"), "AUDIO")
    cached_audio = _modality_count(_field(meta, "cache_tokens_details", "cacheTokensDetails"), "AUDIO")
    audio_out = _modality_count(_field(meta, "candidates_tokens_details", "candidatesTokensDetails"), "AUDIO")
    result = from_openai_counts(
        prompt + billed_tool_use,
        candidates + thoughts,
        cache_read_tokens=cached,
        reasoning_tokens=thoughts,
        audio_in_tokens=max(0, prompt_audio - cached_audio),
        audio_out_tokens=min(audio_out, candidates),
    )
    split_cache_reads(result, cached_audio)
    return result


# -- Bedrock and Vertex AI: several model families, told apart by the payload's shape -------------------------
def bedrock_usage(response: Any) -> Usage:
    """Read an Amazon Bedrock response: Converse (``usage.inputTokens``, or a stream's ``metadata.usage``) or an
    InvokeModel body (Anthropic's Messages shape for Claude, OpenAI's for the others).

    Converse's ``inputTokens`` *excludes* ``cacheReadInputTokens`` and ``cacheWriteInputTokens`` (InvokeModel:
    ``cacheReadInputTokenCount`` / ``cacheWriteInputTokenCount``), each billed at its own price.

    Raises:
        UsageError: when the response has no usage or a count cannot be read.
    """
    usage = _field(response, "usage")
    if usage is None:
        usage = _field(_field(response, "metadata"), "usage")  # a ConverseStream metadata event
    if usage is None and _has_any(response, "inputTokens", "outputTokens"):
        usage = response
    if usage is None or _empty(usage):
        raise UsageError(NO_USAGE)
    if _has_any(usage, "inputTokens", "outputTokens"):
        if not _has_any(usage, "inputTokens"):
            raise UsageError("usage has no inputTokens")
        result = Usage(
            input=_count(usage, "inputTokens"),
            cache_read=_count(usage, "cacheReadInputTokens", "cacheReadInputTokenCount"),
            cache_write=_count(usage, "cacheWriteInputTokens", "cacheWriteInputTokenCount"),
            output=_count(usage, "outputTokens"),
        )
        # cacheDetails: the cache writes by TTL ("5m", "1h").
        one_hour = sum(
            _count(d, "inputTokens") for d in _items(_field(usage, "cacheDetails")) if _field(d, "ttl") == "1h"
        )
        split_cache_writes(result, one_hour)
        return result
    if _has_any(usage, "input_tokens") and not _has_any(usage, "prompt_tokens"):
        return anthropic_usage(response if _field(response, "usage") is not None else {"usage": usage})
    return read_openai_usage(usage)


def vertex_usage(response: Any) -> Usage:
    """Read a Vertex AI response: Gemini (``usageMetadata``), Claude (Anthropic's Messages shape, ``usage``
    with ``input_tokens``) or a partner model in OpenAI's shape.

    Raises:
        UsageError: when the response has no usage or a count cannot be read.
    """
    if _field(response, "usage_metadata", "usageMetadata") is not None or _has_any(response, *_PROMPT, *_TOTAL):
        return gemini_usage(response)
    usage = _field(response, "usage")
    if usage is None and _has_any(response, "input_tokens", "output_tokens"):
        usage = response
    if usage is None:
        usage = _field(_field(response, "message"), "usage")  # a Claude message_start stream event
        if usage is not None:
            return anthropic_usage(response)
    if usage is None or _empty(usage):
        raise UsageError(NO_USAGE)
    if _has_any(usage, "input_tokens") and not _has_any(usage, "prompt_tokens"):
        return anthropic_usage(response)
    return read_openai_usage(usage)


# -- Cohere -----------------------------------------------------------------------------------------------------
def cohere_usage(response: Any) -> Usage:
    """Read a Cohere chat or embed response: the billed units (v1 ``meta``, v2 ``usage``).

    Cohere bills ``billed_units``, not ``tokens`` (which also counts the tokens it adds itself).

    Raises:
        UsageError: when the response has no billed units or a count cannot be read.
    """
    billed = None
    # v1 ``meta``, v2 ``usage``, a v1 stream-end event's ``response.meta``, a v2 message-end event's ``delta.usage``.
    for holder in (
        response,
        _field(response, "response"),
        _field(response, "delta"),
    ):
        for key in ("meta", "usage"):
            billed = _field(_field(holder, key), "billed_units")
            if billed is not None:
                break
        if billed is not None:
            break
    if billed is None and _has_any(response, "billed_units"):
        billed = _field(response, "billed_units")
    if billed is None or _empty(billed):
        raise UsageError(NO_USAGE)
    if not _has_any(billed, "input_tokens", "output_tokens"):
        raise UsageError("billed_units has no input_tokens or output_tokens (search units are not tokens)")
    return Usage(input=_count(billed, "input_tokens"), output=_count(billed, "output_tokens"))


# -- registry ---------------------------------------------------------------------------------------------------
# Guards _EXTRACTORS: provider name (lower case) -> extractor.
_lock = threading.Lock()
_EXTRACTORS: dict[str, UsageExtractor] = {}
_OPENAI_COMPATIBLE = (
    "openai",
    "azure",
    "azure_openai",
    "groq",
    "mistral",
    "together",
    "together_ai",
    "deepseek",
    "fireworks",
    "fireworks_ai",
    "deepinfra",
    "cerebras",
)


def _install_builtins() -> None:
    for name in _OPENAI_COMPATIBLE:
        _EXTRACTORS[name] = openai_usage
    _EXTRACTORS["xai"] = xai_usage
    _EXTRACTORS["openrouter"] = openrouter_usage
    for name in ("bedrock", "bedrock_converse", "aws_bedrock"):
        _EXTRACTORS[name] = bedrock_usage
    _EXTRACTORS["anthropic"] = anthropic_usage
    for name in ("gemini", "google", "google_genai"):
        _EXTRACTORS[name] = gemini_usage
    for name in ("vertex_ai", "vertex_ai_beta", "vertex"):
        _EXTRACTORS[name] = vertex_usage
    for name in ("cohere", "cohere_chat"):
        _EXTRACTORS[name] = cohere_usage


_install_builtins()


def _key(provider: object) -> str:
    if not isinstance(provider, str) or not provider.strip():
        raise TypeError("provider must be a non-empty str")
    return provider.strip().lower()


def register_usage_extractor(provider: str, fn: UsageExtractor) -> None:
    """Add (or replace) the usage extractor of ``provider``; ``fn(response)`` returns a ``Usage``.

    ``fn`` may raise ``UsageError`` with a reason when a response has no usable counts; any other exception
    it raises is turned into one, so a buggy extractor never breaks a call.

    Example::

        def acme_usage(response):
            counts = response["billing"]
            return Usage(input=counts["in"], output=counts["out"])

        register_usage_extractor("acme", acme_usage)

    Raises:
        TypeError: for a provider that is not a non-empty str, or an ``fn`` that is not callable.
    """
    key = _key(provider)
    if not callable(fn):
        raise TypeError(f"fn must be callable, not {type(fn).__name__}")
    with _lock:
        _EXTRACTORS[key] = fn


def usage_extractor(provider: str) -> UsageExtractor | None:
    """Return the extractor registered for ``provider`` (case-insensitive), or None."""
    try:
        key = _key(provider)
    except TypeError:
        return None
    with _lock:
        return _EXTRACTORS.get(key)


def registered_providers() -> list[str]:
    """Return the provider names that have an extractor, sorted."""
    with _lock:
        return sorted(_EXTRACTORS)


def extract_usage(provider: str, response: Any) -> Usage:
    """Read the token usage of ``response`` with the extractor registered for ``provider``.

    ``response`` is an SDK object, a dict parsed from JSON, or the JSON text itself. A provider with no
    extractor registered (Perplexity, Ollama, any OpenAI-compatible service) is read as OpenAI-shaped usage.

    Raises:
        UsageError: and nothing else, for any input: no usage in the response (reason
            ``"no usage in response"``), a count that is not a non-negative whole number, parts that exceed the
            whole, or, for a provider with no extractor, usage that is not OpenAI-shaped.
    """
    try:
        fn = usage_extractor(provider)
        default = fn is None
        if fn is None:
            fn = openai_usage
        if isinstance(response, (str, bytes, bytearray)):
            try:
                response = json.loads(response)
            except (ValueError, RecursionError):
                raise UsageError("response is text that is not JSON") from None
        if response is None:
            raise UsageError(NO_USAGE)
        try:
            usage = fn(response)
        except UsageError as exc:
            if not default or str(exc) == NO_USAGE:
                raise
            raise UsageError(
                f"no usage extractor registered for provider {provider!r}, and its usage is not OpenAI's: {exc}"
            ) from None
        return _checked(usage)
    except UsageError:
        raise
    except Exception as exc:
        # Payloads from the network (and user extractors) can fail in any way; the reason names how.
        raise UsageError(f"could not read usage: {type(exc).__name__}") from None


def _checked(usage: object) -> Usage:
    if not isinstance(usage, Usage):
        raise UsageError(f"the usage extractor returned {type(usage).__name__}, not Usage")
    for bucket in BUCKETS:
        value = getattr(usage, bucket)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise UsageError(f"{bucket} is not a non-negative int: {value!r}")
        if value > MAX_TOKENS:
            raise UsageError(f"{bucket} is implausibly large: {value}")
    billed = usage.billed_units
    if billed is not None and (isinstance(billed, bool) or not isinstance(billed, int) or not 0 <= billed <= MAX_BILL):
        raise UsageError(f"billed_units is not a plausible bill in pico-dollars: {billed!r}")
    return usage

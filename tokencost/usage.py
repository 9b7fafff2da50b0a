"""Normalized usage: the token buckets a call is billed in, and the conversion from each provider's convention.

A bucket is billed at one price and never overlaps another:

=============  =================================================================
``input``      prompt tokens that were neither read from nor written to a cache
``cache_read`` prompt tokens read from the provider's prompt cache (text; cached audio is ``cache_read_audio``)
``cache_write`` prompt tokens written to the prompt cache (the default, 5-minute TTL)
``cache_write_1h`` prompt tokens written to the prompt cache with a 1-hour TTL (Anthropic; dearer)
``cache_read_audio`` audio prompt tokens read from the prompt cache (Gemini, OpenAI realtime; their own price)
``output``     completion tokens that are not reasoning tokens
``reasoning``  completion tokens spent thinking
``audio_in`` / ``audio_out`` / ``image``  tokens of those modalities (billed at their own price when known)
=============  =================================================================

Besides the token buckets a ``Usage`` carries what else a call is billed by: ``web_search_requests`` (a count of
paid web searches, not tokens: in no token total), ``service_tier`` (``"flex"``, ``"priority"`` or ``"batch"``,
``None`` for the standard tier) and ``inference_geo`` (where the provider ran the call, e.g. Anthropic's ``"us"``).

Conventions handled here, once:

* OpenAI: ``prompt_tokens`` *includes* ``prompt_tokens_details.cached_tokens`` (and audio tokens);
  ``completion_tokens`` *includes* ``completion_tokens_details.reasoning_tokens``.
* Anthropic raw payloads: ``input_tokens`` *excludes* ``cache_read_input_tokens`` and
  ``cache_creation_input_tokens``. After litellm normalizes a response, ``prompt_tokens`` includes them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from tokencost.money import to_units

__all__ = [
    "BILLED_IN_USAGE",
    "BUCKETS",
    "Usage",
    "UsageError",
    "from_litellm_usage",
    "from_openai_counts",
    "read_billed_units",
    "read_billing_facts",
    "read_count",
    "read_field",
    "read_openai_usage",
    "read_service_tier",
    "split_cache_reads",
    "split_cache_writes",
]

# Providers whose ``usage.cost`` is their own bill for the call (OpenRouter: credits are USD).
BILLED_IN_USAGE = frozenset({"openrouter"})
BUCKETS = (
    "input",
    "cache_read",
    "cache_write",
    "output",
    "reasoning",
    "audio_in",
    "audio_out",
    "image",
    "cache_write_1h",
    "cache_read_audio",
)


class UsageError(ValueError):
    """A usage payload could not be read (missing, negative, not a number); the event is recorded unpriced."""


@dataclass(slots=True)
class Usage:
    """Token counts of one call, split into non-overlapping billing buckets. Treat it as read-only.

    (Not a frozen dataclass: those cost five times as much to create, and one is built for every call.)
    """

    input: int = 0
    cache_read: int = 0
    cache_write: int = 0
    output: int = 0
    reasoning: int = 0
    audio_in: int = 0
    audio_out: int = 0
    image: int = 0
    cache_write_1h: int = 0
    cache_read_audio: int = 0
    web_search_requests: int = 0
    service_tier: str | None = None
    inference_geo: str | None = None
    # The provider's own bill for the call in pico-dollars, when its usage reports one (OpenRouter's
    # ``usage.cost``): the call is priced at it (``price_source`` "provider"), not from a price list.
    billed_units: int | None = None

    @property
    def prompt_tokens(self) -> int:
        """All prompt-side tokens (OpenAI's ``prompt_tokens``: cache reads and writes included)."""
        return (
            self.input
            + self.cache_read
            + self.cache_write
            + self.cache_write_1h
            + self.cache_read_audio
            + self.audio_in
            + self.image
        )

    @property
    def completion_tokens(self) -> int:
        """All completion-side tokens (OpenAI's ``completion_tokens``: reasoning included)."""
        return self.output + self.reasoning + self.audio_out

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens

    def as_dict(self) -> dict[str, int]:
        """Return the token buckets as a dict (every bucket, zeros included; not the web searches or tier)."""
        return {name: getattr(self, name) for name in BUCKETS}


def read_count(value: object, name: str) -> int:
    """Read one token count from a payload value: a non-negative integral number, ``None`` meaning 0.

    Raises:
        UsageError: for a negative, non-integral, NaN or non-numeric value.
    """
    if value is None:
        return 0
    if isinstance(value, bool):
        raise UsageError(f"{name} is a bool")
    if isinstance(value, int):
        count = value
    elif isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise UsageError(f"{name} is not a whole number: {value!r}")
        count = int(value)
    else:
        raise UsageError(f"{name} is not a number: {type(value).__name__}")
    if count < 0:
        raise UsageError(f"{name} is negative: {count}")
    return count


def from_openai_counts(
    prompt_tokens: int,
    completion_tokens: int,
    *,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
    reasoning_tokens: int = 0,
    audio_in_tokens: int = 0,
    audio_out_tokens: int = 0,
    image_tokens: int = 0,
) -> Usage:
    """Split counts given in OpenAI's convention (prompt includes cache and audio, completion includes reasoning).

    Raises:
        UsageError: when the parts exceed the whole (e.g. more cached tokens than prompt tokens).
    """
    uncached = prompt_tokens - cache_read_tokens - cache_write_tokens - audio_in_tokens - image_tokens
    if uncached < 0:
        raise UsageError(
            f"prompt_tokens ({prompt_tokens}) is less than its cached, audio and image parts "
            f"({prompt_tokens - uncached})"
        )
    visible = completion_tokens - reasoning_tokens - audio_out_tokens
    if visible < 0:
        raise UsageError(
            f"completion_tokens ({completion_tokens}) is less than its reasoning and audio parts "
            f"({completion_tokens - visible})"
        )
    return Usage(
        input=uncached,
        cache_read=cache_read_tokens,
        cache_write=cache_write_tokens,
        output=visible,
        reasoning=reasoning_tokens,
        audio_in=audio_in_tokens,
        audio_out=audio_out_tokens,
        image=image_tokens,
    )


def read_field(obj: Any, key: str, *others: str) -> Any:
    """Read ``key`` of a payload that is a mapping (JSON) or an object (an SDK or litellm model); None if absent.

    With ``others``: the first of the keys the payload has (not None).
    """
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        value = obj.get(key)
    else:
        names = _class_names(type(obj))
        value = getattr(obj, key, None) if names is None else _model_field(obj, key, names)
    if value is None and others:
        return read_field(obj, *others)
    return value


# Usage payloads are mostly pydantic models (litellm's, OpenAI's, Anthropic's SDK objects), and most keys read
# are absent: pydantic's __getattr__ raises AttributeError for each (about 2 us; a litellm call reads a dozen).
# ``_model_field`` reads such a model as getattr(obj, key, None) does, without the exception, knowing the names its
# class defines (remembered per class, when first read). A class that changes attribute access (its own
# __getattr__ or __getattribute__) is read by getattr. tests/test_usage_reader.py compares the two.
_MODEL_CLASSES: dict[type, frozenset[str] | None] = {}


def _class_names(cls: type) -> frozenset[str] | None:
    """The attribute names a plain pydantic model class defines, or None for any other class (remembered)."""
    try:
        return _MODEL_CLASSES[cls]
    except KeyError:
        pass
    base = next((c for c in cls.__mro__ if c.__name__ == "BaseModel" and c.__module__ == "pydantic.main"), None)
    plain = (
        base is not None
        and "__getattr__" in base.__dict__
        and getattr(cls, "__getattr__", None) is base.__dict__["__getattr__"]
        and cls.__getattribute__ is object.__getattribute__  # type: ignore[comparison-overlap]
    )
    names = frozenset(name for c in cls.__mro__ for name in c.__dict__) if plain else None
    if len(_MODEL_CLASSES) < 1_000:
        _MODEL_CLASSES[cls] = names
    return names


def _model_field(obj: Any, key: str, names: frozenset[str]) -> Any:
    """``getattr(obj, key, None)`` of a plain pydantic model whose class defines ``names``: a field, else a class
    attribute (a property, a method) or private attribute through getattr, else an extra field, else None."""
    values = obj.__dict__
    if key in values:
        return values[key]
    if key in names or key[:1] == "_":
        return getattr(obj, key, None)
    extra = obj.__pydantic_extra__
    return extra.get(key) if extra else None


def _count(obj: Any, *keys: str) -> int:
    """Read one count (0 when absent) stored under the first of ``keys`` the payload has."""
    for key in keys:
        value = read_field(obj, key)
        if value is not None:
            return read_count(value, key)
    return 0


def read_billed_units(usage: Any) -> int | None:
    """Read a provider's own bill (``usage.cost``, USD) as pico-dollars; None when absent or not a valid amount."""
    value = read_field(usage, "cost")
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        return None
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        return None
    return to_units(amount) if amount.is_finite() and amount >= 0 else None


def read_openai_usage(
    usage: Any, *, reasoning_outside_completion: bool = False, billed_in_usage: bool = False, response: Any = None
) -> Usage:
    """Read usage in OpenAI's convention: the one reader of that convention, for every entry point.

    The litellm callback (litellm reports every provider this way), ``track_response`` and the SDK wrappers for
    OpenAI and every OpenAI-compatible service all read usage here, so one payload has one cost. Read:

    * chat completions (``prompt_tokens`` / ``completion_tokens`` with ``prompt_tokens_details`` and
      ``completion_tokens_details``), the Responses API (``input_tokens`` / ``output_tokens`` with
      ``input_tokens_details`` / ``output_tokens_details``) and the Realtime API (``input_token_details`` /
      ``output_token_details``);
    * cache reads: ``cached_tokens``, DeepSeek's ``prompt_cache_hit_tokens``, litellm's
      ``cache_read_input_tokens`` (the largest, they name the same tokens);
    * cache writes: ``cache_creation_input_tokens`` or ``prompt_tokens_details.cache_write_tokens`` /
      ``cache_creation_tokens``;
    * audio and image prompt tokens, audio and reasoning completion tokens. Audio read from the cache
      (``cached_tokens_details.audio_tokens``, as litellm reports Gemini and OpenAI's Realtime API reports its
      own) is a cache read of its own (``cache_read_audio``), not audio input or a text cache read too;
    * the 1-hour part of the cache writes (``cache_creation_token_details`` / ``cache_creation``
      ``.ephemeral_1h_input_tokens``) into ``cache_write_1h``; web searches, ``service_tier`` (the usage's, else
      ``response``'s, as OpenAI reports it) and ``inference_geo`` (see ``read_billing_facts``).

    ``reasoning_outside_completion``: the provider's ``completion_tokens`` leaves the reasoning tokens out (xAI);
    they are added unless ``total_tokens`` shows the payload was already normalized. ``billed_in_usage``: the
    usage's ``cost`` is the provider's own bill (OpenRouter), kept as ``billed_units``.

    Raises:
        UsageError: when the usage has neither prompt nor input tokens, or a count cannot be read.
    """
    if usage is None:
        raise UsageError("no usage in response")
    if read_field(usage, "prompt_tokens") is not None:
        prompt = _count(usage, "prompt_tokens")
        completion = _count(usage, "completion_tokens")
        prompt_details = read_field(usage, "prompt_tokens_details")
        completion_details = read_field(usage, "completion_tokens_details")
    elif read_field(usage, "input_tokens") is not None:
        prompt = _count(usage, "input_tokens")
        completion = _count(usage, "output_tokens")
        # The Realtime API names them input_token_details / output_token_details.
        prompt_details = read_field(usage, "input_tokens_details", "input_token_details")
        completion_details = read_field(usage, "output_tokens_details", "output_token_details")
    elif read_field(usage, "completion_tokens") is not None:
        raise UsageError("usage has no prompt_tokens")
    elif read_field(usage, "output_tokens") is not None:
        raise UsageError("usage has no input_tokens")
    else:
        raise UsageError("usage has neither prompt_tokens nor input_tokens")
    cache_read = max(
        _count(prompt_details, "cached_tokens"),
        _count(usage, "prompt_cache_hit_tokens"),  # DeepSeek
        _count(usage, "cache_read_input_tokens"),  # litellm's normalized Anthropic, Bedrock, Gemini
    )
    cache_write = _count(usage, "cache_creation_input_tokens") or _count(
        prompt_details, "cache_write_tokens", "cache_creation_tokens"
    )
    cached_audio = _count(read_field(prompt_details, "cached_tokens_details"), "audio_tokens")
    audio_in = max(0, _count(prompt_details, "audio_tokens") - cached_audio)  # its audio tokens include the cached
    reasoning = _count(completion_details, "reasoning_tokens")
    if reasoning_outside_completion and reasoning:
        total = read_field(usage, "total_tokens")
        if total is None or read_count(total, "total_tokens") != prompt + completion:
            completion += reasoning
    result = from_openai_counts(
        prompt,
        completion,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        reasoning_tokens=reasoning,
        audio_in_tokens=audio_in,
        audio_out_tokens=_count(completion_details, "audio_tokens"),
        image_tokens=_count(prompt_details, "image_tokens"),
    )
    split_cache_writes(
        result,
        _count(read_field(prompt_details, "cache_creation_token_details"), "ephemeral_1h_input_tokens")
        or _count(read_field(usage, "cache_creation"), "ephemeral_1h_input_tokens"),
    )
    split_cache_reads(result, cached_audio)
    read_billing_facts(result, usage, response)
    if billed_in_usage:
        result.billed_units = read_billed_units(usage)
    return result


def split_cache_writes(usage: Usage, one_hour: int) -> None:
    """Move ``one_hour`` of ``usage.cache_write`` (all cache writes) into ``cache_write_1h`` (their 1-hour part).

    Raises:
        UsageError: when the 1-hour writes exceed the cache writes.
    """
    if not one_hour:
        return
    if one_hour > usage.cache_write:
        raise UsageError(f"1-hour cache writes ({one_hour}) exceed the cache writes ({usage.cache_write})")
    usage.cache_write -= one_hour
    usage.cache_write_1h = one_hour


def split_cache_reads(usage: Usage, audio: int) -> None:
    """Move ``audio`` of ``usage.cache_read`` (all cache reads) into ``cache_read_audio`` (their audio part).

    Raises:
        UsageError: when the cached audio tokens exceed the cache reads.
    """
    if not audio:
        return
    if audio > usage.cache_read:
        raise UsageError(f"cached audio tokens ({audio}) exceed the cache reads ({usage.cache_read})")
    usage.cache_read -= audio
    usage.cache_read_audio = audio


_STANDARD_TIERS = frozenset({"standard", "default", "auto", "standard_only", "on_demand"})


def read_service_tier(value: object) -> str | None:
    """The service tier a payload names: ``"flex"``, ``"priority"``, ``"batch"`` (any other non-standard tier
    in lower case), or None for the standard tier or no tier."""
    if not isinstance(value, str) or not value.strip():
        return None
    tier = value.strip().lower()
    return None if tier in _STANDARD_TIERS else tier


def read_billing_facts(usage: Usage, payload: Any, response: Any = None) -> None:
    """Read what else than tokens a call is billed by into ``usage``: web searches
    (``server_tool_use.web_search_requests``), ``service_tier`` (the usage's, else the response's) and
    ``inference_geo``."""
    searches = _count(read_field(payload, "server_tool_use"), "web_search_requests")
    if not searches:
        searches = _count(read_field(payload, "prompt_tokens_details"), "web_search_requests")
    usage.web_search_requests = searches
    tier = read_field(payload, "service_tier")
    if tier is None and response is not None:
        tier = read_field(response, "service_tier")
    usage.service_tier = read_service_tier(tier)
    geo = read_field(payload, "inference_geo")
    usage.inference_geo = geo.strip().lower() if isinstance(geo, str) and geo.strip() else None


def from_litellm_usage(usage: Any, provider: str | None = None, response: Any = None) -> Usage:
    """Normalize a litellm ``Usage`` (or its dict form) into buckets, with ``read_openai_usage``.

    litellm reports every provider in OpenAI's convention. Embeddings have no completion. litellm fills in
    zeros when the provider sent no usage: that is read as no usage, not as a free call. For a provider in
    ``BILLED_IN_USAGE`` the usage's ``cost`` is kept as the provider's bill.

    Raises:
        UsageError: when there is no usage or a count cannot be read.
    """
    if usage is None:
        raise UsageError("no usage in response")
    if read_field(usage, "prompt_tokens") is None and read_field(usage, "input_tokens") is None:
        if read_field(usage, "total_tokens") is None:
            raise UsageError("usage has no prompt_tokens")
        raise UsageError("the response reported no token usage")
    result = read_openai_usage(usage, billed_in_usage=provider in BILLED_IN_USAGE, response=response)
    if result.prompt_tokens == 0 and result.completion_tokens == 0:
        # litellm fills in zeros when the provider sent no usage (absent, null or {}): the cost is unknown,
        # not $0 (every real call has a prompt).
        raise UsageError("the response reported no token usage")
    return result

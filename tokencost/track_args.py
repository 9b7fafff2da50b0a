"""``track()``'s arguments: checked, naming the bad one, and turned into a ``Usage``.

``CostTracker.track`` checks the common call (five ints, no other dimension) inline, for speed, and hands every
other case here: a wrong type is a ``TypeError``, a negative count or a part larger than its whole a
``ValueError``, each naming the argument. Counts follow OpenAI's convention: ``prompt_tokens`` includes the
cache reads, the cache writes (``cache_write_1h_tokens`` is the 1-hour part of ``cache_write_tokens``), the audio
and the image input tokens; ``completion_tokens`` includes the reasoning and the audio output tokens.
"""

from __future__ import annotations

import datetime as dt

from tokencost.usage import Usage, read_service_tier
from tokencost.when import parse_when

__all__ = [
    "SERVICE_TIERS",
    "TRACK_COUNTS",
    "check_service_tier",
    "check_track_counts",
    "check_track_types",
    "read_timestamp",
    "track_usage",
]

# The service tiers ``track(service_tier=...)`` prices; the standard tier's names (what providers answer for a
# call without a tier, as litellm accepts them) mean None.
SERVICE_TIERS = frozenset({"flex", "priority", "batch"})
_STANDARD_NAMES = frozenset({"standard", "default", "auto", "standard_only", "on_demand"})

# The int arguments, in the order check_track_types and check_track_counts take them.
TRACK_COUNTS = (
    "prompt_tokens",
    "completion_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "audio_input_tokens",
    "audio_output_tokens",
    "cache_write_1h_tokens",
    "image_input_tokens",
    "web_search_requests",
)


def check_track_types(model: object, *counts: object) -> None:
    """Raise the TypeError that names track()'s bad argument (``counts`` in ``TRACK_COUNTS``' order)."""
    if not isinstance(model, str) or not model:
        raise TypeError("model must be a non-empty str")
    for count, arg in zip(counts, TRACK_COUNTS[: len(counts)], strict=True):
        if type(count) is not int:
            raise TypeError(f"{arg} must be an int, not {type(count).__name__}")


def check_track_counts(*counts: int) -> None:
    """Raise the ValueError that names track()'s bad count (``counts`` in ``TRACK_COUNTS``' order), if any."""
    for count, arg in zip(counts, TRACK_COUNTS[: len(counts)], strict=True):
        if count < 0:
            raise ValueError(f"{arg} must not be negative, got {count}")
    padded = (*counts, *(0,) * (len(TRACK_COUNTS) - len(counts)))
    prompt, completion, cache_read, cache_write, reasoning, audio_in, audio_out, write_1h, image, _ = padded
    if write_1h > cache_write:
        raise ValueError(
            f"cache_write_1h_tokens ({write_1h}) is more than cache_write_tokens ({cache_write}), which include them"
        )
    parts = cache_read + cache_write + audio_in + image
    if parts > prompt:
        named = ["cache_read_tokens", "cache_write_tokens"]
        named += ["audio_input_tokens"] if audio_in else []
        named += ["image_input_tokens"] if image else []
        raise ValueError(f"prompt_tokens ({prompt}) is less than {' + '.join(named)} ({parts})")
    if reasoning + audio_out > completion:
        label = "reasoning_tokens + audio_output_tokens" if audio_out else "reasoning_tokens"
        raise ValueError(f"completion_tokens ({completion}) is less than {label} ({reasoning + audio_out})")


def track_usage(
    model: object,
    prompt_tokens: int,
    completion_tokens: int,
    cache_read_tokens: int,
    cache_write_tokens: int,
    reasoning_tokens: int,
    audio_input_tokens: int,
    audio_output_tokens: int,
    cache_write_1h_tokens: int,
    image_input_tokens: int,
    web_search_requests: int,
    service_tier: object,
) -> Usage:
    """Check track()'s counts and service tier and return the call's ``Usage`` (OpenAI's convention in).

    Raises:
        TypeError: for a model that is not a non-empty str, a count that is not an int, a tier that is not a str.
        ValueError: for a negative count, parts larger than their whole, or an unknown service tier.
    """
    counts = (
        prompt_tokens,
        completion_tokens,
        cache_read_tokens,
        cache_write_tokens,
        reasoning_tokens,
        audio_input_tokens,
        audio_output_tokens,
        cache_write_1h_tokens,
        image_input_tokens,
        web_search_requests,
    )
    check_track_types(model, *counts)
    check_track_counts(*counts)
    return Usage(
        input=prompt_tokens - cache_read_tokens - cache_write_tokens - audio_input_tokens - image_input_tokens,
        cache_read=cache_read_tokens,
        cache_write=cache_write_tokens - cache_write_1h_tokens,
        output=completion_tokens - reasoning_tokens - audio_output_tokens,
        reasoning=reasoning_tokens,
        audio_in=audio_input_tokens,
        audio_out=audio_output_tokens,
        image=image_input_tokens,
        cache_write_1h=cache_write_1h_tokens,
        web_search_requests=web_search_requests,
        service_tier=check_service_tier(service_tier),
    )


def check_service_tier(value: object) -> str | None:
    """Return the tier ``track(service_tier=...)`` names: ``"flex"``, ``"priority"``, ``"batch"`` or None.

    Raises:
        TypeError: for a value that is neither a str nor None.
        ValueError: for a tier that is neither one of those nor a name of the standard tier.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"service_tier must be a str or None, not {type(value).__name__}")
    tier = read_service_tier(value)
    if tier is None and value.strip().lower() not in _STANDARD_NAMES:
        raise ValueError(f"service_tier must be 'flex', 'priority', 'batch' or None, got {value!r}")
    if tier is not None and tier not in SERVICE_TIERS:
        raise ValueError(f"service_tier must be 'flex', 'priority', 'batch' or None, got {value!r}")
    return tier


def read_timestamp(value: object) -> float | None:
    """Return a call's time (``timestamp=``: epoch seconds or a ``datetime``, naive meaning UTC) as epoch seconds.

    Raises:
        TypeError: for a value that is neither a number, a ``datetime`` nor None (a ``bool`` included).
        ValueError: for a time outside 1970 to 9999, or not finite.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, dt.datetime)):
        raise TypeError(f"timestamp must be epoch seconds or a datetime, not {type(value).__name__}")
    return parse_when(value, "timestamp")

"""``read_field`` reads a pydantic model without pydantic's exception for absent keys: it must answer exactly as
``getattr(obj, key, None)`` does (its plain reference), on every kind of payload object a usage comes in."""

from __future__ import annotations

import types
from typing import Any

import litellm
import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.completion_usage import CompletionUsage

from tokencost.usage import from_litellm_usage, read_field, read_openai_usage

KEYS = [
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "prompt_tokens_details",
    "completion_tokens_details",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "prompt_cache_hit_tokens",
    "server_tool_use",
    "service_tier",
    "inference_geo",
    "cache_creation",
    "cost",
    "model_config",  # a class attribute
    "model_dump",  # a method
    "doubled",  # a property (of Computed)
    "_secret",  # a private attribute (of Computed)
    "__class__",
]


class Computed(pydantic.BaseModel):
    """A model with a property and a private attribute besides its fields, extras allowed."""

    model_config = pydantic.ConfigDict(extra="allow")
    prompt_tokens: int = 0
    _secret: int = pydantic.PrivateAttr(default=7)

    @property
    def doubled(self) -> int:
        return self.prompt_tokens * 2


class Defaulting(pydantic.BaseModel):
    """A model whose own __getattr__ answers every absent name: read through getattr, never the fast path."""

    prompt_tokens: int = 0

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return f"default:{name}"


def payloads(extra: dict[str, int]) -> list[Any]:
    usage = litellm.Usage(prompt_tokens=100, completion_tokens=20, total_tokens=120, **extra)
    return [
        usage,
        litellm.Usage(
            prompt_tokens=2000,
            completion_tokens=10,
            total_tokens=2010,
            cache_read_input_tokens=1500,
            cache_creation_input_tokens=300,
            prompt_tokens_details={"cached_tokens": 1500},
        ),
        CompletionUsage(prompt_tokens=5, completion_tokens=1, total_tokens=6, **extra),  # type: ignore[arg-type]
        Computed(prompt_tokens=3, **extra),
        Defaulting(prompt_tokens=3),
        types.SimpleNamespace(prompt_tokens=4, **extra),
    ]


@settings(max_examples=60, deadline=None)
@given(
    extra=st.dictionaries(
        st.sampled_from(["prompt_cache_hit_tokens", "server_tool_use", "inference_geo", "cost", "vendor_field"]),
        st.integers(0, 10**6),
        max_size=3,
    ),
    keys=st.lists(st.sampled_from([*KEYS, "vendor_field", "no_such_key"]), min_size=1, max_size=6),
)
def test_read_field_answers_as_getattr_does(extra: dict[str, int], keys: list[str]) -> None:
    for obj in payloads(extra):
        for key in keys:
            assert read_field(obj, key) == getattr(obj, key, None), (type(obj).__name__, key)


def test_an_attribute_added_to_an_instance_or_an_extra_is_read() -> None:
    usage = litellm.Usage(prompt_tokens=10, completion_tokens=2, total_tokens=12)
    assert read_field(usage, "cache_creation_input_tokens") == getattr(usage, "cache_creation_input_tokens", None)
    usage.cache_creation_input_tokens = 4  # litellm sets such fields after construction
    assert read_field(usage, "cache_creation_input_tokens") == 4
    assert read_field(Defaulting(), "anything") == "default:anything"
    assert read_field(Computed(prompt_tokens=2), "doubled") == 4
    assert read_field(Computed(), "_secret") == 7


@pytest.mark.parametrize("with_cache", [False, True])
def test_usage_read_from_litellm_objects_equals_usage_read_from_their_dicts(with_cache: bool) -> None:
    extra: dict[str, Any] = (
        {"cache_read_input_tokens": 800, "prompt_tokens_details": {"cached_tokens": 800, "audio_tokens": 3}}
        if with_cache
        else {}
    )
    usage = litellm.Usage(prompt_tokens=1000, completion_tokens=50, total_tokens=1050, **extra)
    assert from_litellm_usage(usage, "openai") == from_litellm_usage(usage.model_dump(), "openai")
    assert read_openai_usage(usage) == read_openai_usage(usage.model_dump())

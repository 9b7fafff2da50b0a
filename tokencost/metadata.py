"""The one metadata policy: what of a call's metadata a ledger keeps, on every entry point.

Kept: the caller's attribution (``user``, ``tags``, ``feature``, any key of their own) whose values are plain
JSON scalars or lists of them. Dropped:

* keys litellm, its Router and its proxy add in place (``deployment``, ``model_info``, ``hidden_params``,
  ``headers``, ``user_api_key_*``, ``litellm_*``, ``_internal`` keys...): not the caller's, and hundreds of bytes
  an event behind the proxy;
* anything that may be a secret: a key naming one (``openai_api_key``, ``password``, ``authorization``...) or a
  value shaped like an API key or a bearer token;
* tags litellm derives from request headers (``User-Agent: OpenAI/...``), which streamed calls get and plain
  calls do not: the tags a budget checks before a call are the tags recorded after it.

``scope()`` metadata, ``metadata=`` of ``track()``/``track_response()``/the SDK wrappers, litellm's
``metadata=`` and the server's ``POST /track`` all pass through ``clean_metadata``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["call_metadata", "clean_metadata", "clean_tags"]

# Metadata keys litellm (its Router and proxy) adds in place: not the caller's attribution.
_DROP_KEYS = frozenset(
    {
        "deployment",
        "model_info",
        "api_base",
        "caching_groups",
        "previous_models",
        "hidden_params",
        "model_group_size",
        "model_group_alias",
        "deployment_model_name",
        "requester_metadata",
        "headers",
        "global_max_parallel_requests",
        "spend_logs_metadata",
        "applied_guardrails",
        "guardrails",
        "mcp_tool_call_metadata",
        "vector_store_request_metadata",
        "prompt_management_metadata",
        "model_api_base",
        "model_region",
        "previous_model_group",
        "user_api_end_user_max_budget",
        "jwt_claims",
        "proxy_server_request",
        "standard_logging_object",
        "preset_cache_key",
        "cache_key",
        "stream_response",
    }
)
_DROP_PREFIXES = ("user_api_key", "litellm_", "requester_", "_", "x-", "x_")
_SECRET_KEY = r"(api[_-]?key|secret|password|passwd|authorization|credential|access[_-]?token|bearer|session[_-]?token)"
_SECRET_VALUE = r"^\s*(bearer\s+\S+|(sk|pk|rk)-[A-Za-z0-9_\-]{12,}|[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.)"
_HEADER_TAG = r"^[A-Za-z][A-Za-z0-9-]*: "  # "User-Agent: OpenAI/Python 1.99"
_patterns: tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]] | None = None


def _compiled() -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    """The secret-key, secret-value and header-tag patterns, compiled on first use (compiling them at import was
    most of this module's import time)."""
    global _patterns
    if _patterns is None:
        _patterns = (re.compile(_SECRET_KEY, re.I), re.compile(_SECRET_VALUE, re.I), re.compile(_HEADER_TAG))
    return _patterns


def clean_tags(tags: Any) -> list[str] | None:
    """Return the caller's tags as a list of str, without header-derived ones; None when not a list."""
    if not isinstance(tags, (list, tuple)):
        return None
    out = [str(t) for t in tags if isinstance(t, (str, int, float)) and not isinstance(t, bool)]
    _, secret_value, header_tag = _patterns or _compiled()
    return [t for t in dict.fromkeys(out) if not header_tag.match(t) and not secret_value.match(t)]


def clean_metadata(raw: object) -> dict[str, Any]:
    """Keep the caller's JSON-able attribution metadata; drop litellm's internals and anything secret."""
    if not isinstance(raw, Mapping):
        return {}
    secret_key, secret_value, _ = _patterns or _compiled()
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if (
            not isinstance(key, str)
            or not key
            or key in _DROP_KEYS
            or key.startswith(_DROP_PREFIXES)
            or secret_key.search(key)
        ):
            continue
        if key == "tags":
            tags = clean_tags(value)
            if tags:
                out["tags"] = tags
        elif value is None or isinstance(value, (bool, int, float)):
            out[key] = value
        elif isinstance(value, str):
            if not secret_value.match(value):
                out[key] = value
        elif isinstance(value, (list, tuple)) and all(
            isinstance(v, (str, int, float, bool)) and not (isinstance(v, str) and secret_value.match(v)) for v in value
        ):
            out[key] = list(value)
    return out


def call_metadata(scope: Mapping[str, Any], raw: object = None, user: object = None) -> dict[str, Any]:
    """Return the metadata one call is checked and recorded with: the caller's ``scope()``, then the call's own
    ``metadata=`` (its keys win; tags add up), then ``user=`` when neither named a user.

    Admission (before the call) and recording (after it) both use this, so a per-tag or per-user budget checks
    exactly the scope the call is recorded in, plain or streamed.
    """
    out = clean_metadata(scope) if scope else {}
    own = clean_metadata(raw)
    if "tags" in own and "tags" in out:
        own["tags"] = list(dict.fromkeys([*out["tags"], *own["tags"]]))
    out.update(own)
    if user and "user" not in out and isinstance(user, (str, int)) and not isinstance(user, bool):
        out["user"] = str(user)
    return out

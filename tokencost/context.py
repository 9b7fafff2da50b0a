"""The caller's context, carried by a contextvar: the ``scope()`` metadata a call is made in.

It is read in the caller's thread or task before a call is sent (admission) and when it is set up (litellm's
``log_pre_api_call``), so they follow the call into threads and tasks started inside the block.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any

__all__ = ["SCOPE", "current_scope", "scope"]

NOSCOPE: Mapping[str, Any] = MappingProxyType({})
SCOPE: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar("tokencost_scope", default=NOSCOPE)


def current_scope() -> dict[str, Any]:
    """Return the metadata of the ``scope()`` blocks the caller is inside (inner keys win; tags add up)."""
    scope = SCOPE.get()
    return dict(scope) if scope else {}  # dict() of the empty default (a MappingProxyType) is slow


@contextmanager
def scope(**metadata: Any) -> Iterator[dict[str, Any]]:
    """Attach metadata to every call made inside the block (also in threads and tasks started inside).

    ``user=`` and ``tags=`` are the usual keys; per-user and per-tag budgets read them before the call is sent,
    so this is how a plain synchronous ``litellm.completion`` is refused per user.

    Example::

        with tokencost.scope(user="alice", tags=["batch"]):
            litellm.completion(...)
    """
    outer = SCOPE.get()
    merged = {**outer, **metadata}
    if "tags" in metadata:
        tags = metadata["tags"]
        if isinstance(tags, str) or not isinstance(tags, (list, tuple)):
            raise TypeError("tags must be a list of str")
        merged["tags"] = list(dict.fromkeys([*outer.get("tags", ()), *tags]))
    token = SCOPE.set(merged)
    try:
        yield dict(merged)
    finally:
        SCOPE.reset(token)

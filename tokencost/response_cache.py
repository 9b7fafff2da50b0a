"""Response caching for the wrapped SDK clients: keys, litellm ``Cache`` backends, replayed SDK objects, stats.

``wrap_openai(client, cache=...)`` / ``wrap_anthropic(client, cache=...)`` take ``"memory"`` (litellm's
in-memory cache, one per tracker), ``"disk"`` or a folder path (one SQLite file: litellm ships no disk backend) or a
litellm ``Cache`` object (Redis, S3, ...: every exact-match backend litellm ships, used through its ``BaseCache``
methods). This module decides what a key is, what an entry holds and how an entry becomes the SDK's own objects.

A key is the SHA-256 of the API method, the provider, the client's base URL and every argument of the call but
``timeout`` (model, messages, tools, temperature and the other sampling arguments, response format, ``stream``
and ``stream_options``, extra headers and bodies, ``user``, ``metadata``...): two calls share an entry only when
they would send the same request to the same server. A call whose arguments cannot be keyed (an iterator of
messages, an object that is not JSON data) is not cached. An entry holds the response (or, for ``stream=True``,
every chunk the caller saw, in order), the response's model and its usage in billing buckets.

Hits and the savings come from the ledger (events with status ``cache_hit``: litellm's cache hits and the
wrappers' alike); misses are the wrappers' lookups that found nothing, counted by this process.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
import typing
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tokencost.money import from_units
from tokencost.usage import BUCKETS, Usage

if TYPE_CHECKING:
    from tokencost.engine import Tracking

log = logging.getLogger("tokencost")

__all__ = [
    "DEFAULT_DISK_DIR",
    "CacheProbe",
    "CacheStats",
    "ResponseCache",
    "SqliteCache",
    "cache_stats",
    "open_cache",
    "reset_stats",
]

# Where cache="disk" keeps its entries (relative to the working directory).
DEFAULT_DISK_DIR = "tokencost_cache"
_ENTRY_VERSION = 1
# cache="memory": litellm's in-memory cache, this many entries, each kept this long.
MEMORY_ENTRIES = 1_000
MEMORY_TTL_S = 86_400
# Arguments that do not change the answer (only how long the SDK waits for it).
_UNKEYED = frozenset({"timeout"})

# The SDK types an entry is read back into, per intercepted method: (module, response type, stream item type).
_TYPES: dict[tuple[str, ...], tuple[str, str, str | None]] = {
    ("chat", "completions", "create"): ("openai.types.chat", "ChatCompletion", "ChatCompletionChunk"),
    ("responses", "create"): ("openai.types.responses", "Response", "ResponseStreamEvent"),
    ("embeddings", "create"): ("openai.types", "CreateEmbeddingResponse", None),
    ("messages", "create"): ("anthropic.types", "Message", "RawMessageStreamEvent"),
    ("beta", "messages", "create"): ("anthropic.types.beta", "BetaMessage", "BetaRawMessageStreamEvent"),
}


@dataclass(frozen=True)
class CacheStats:
    """What response caching did for a tracker's ledger.

    ``hits`` and ``saved`` (USD) count the ledger's calls answered from a cache (litellm's cache and the wrapped
    clients' alike, status ``cache_hit``); ``misses`` counts the wrapped clients' lookups that found nothing,
    in this process, since the tracker was created or reset.
    """

    hits: int = 0
    misses: int = 0
    saved: Decimal = Decimal(0)


class _Uncacheable(Exception):
    """The call's arguments cannot be keyed: the call is sent and not cached."""


class _TrackerCaches:
    """The caches a tracker's wrapped clients opened (shared by name) and the misses they counted."""

    def __init__(self) -> None:
        self.lock = threading.Lock()  # guards caches and misses
        self.caches: dict[str, Any] = {}
        self.misses = 0

    def miss(self) -> None:
        with self.lock:
            self.misses += 1


_BY_TRACKER: weakref.WeakKeyDictionary[Any, _TrackerCaches] = weakref.WeakKeyDictionary()
_BY_TRACKER_LOCK = threading.Lock()


def _state(tracker: Any) -> _TrackerCaches:
    with _BY_TRACKER_LOCK:
        state = _BY_TRACKER.get(tracker)
        if state is None:
            state = _BY_TRACKER[tracker] = _TrackerCaches()
            # The disk caches' files are closed with the tracker (or at exit).
            weakref.finalize(tracker, _close_caches, state.caches)
        return state


def _close_caches(caches: dict[str, Any]) -> None:
    for cache in caches.values():
        close = getattr(cache, "close", None)
        if callable(close):
            try:
                close()
            except Exception as exc:
                log.debug("tokencost: could not close a response cache: %r", exc)


def open_cache(tracker: Tracking, spec: Any) -> ResponseCache | None:
    """Return the response cache ``spec`` names for ``tracker``'s wrapped clients (None for ``spec=None``).

    ``"memory"`` and ``"disk"`` (or a folder) are opened once per tracker and shared by its wrapped clients.

    Raises:
        TypeError: for a spec that is not None, a str, a path or a litellm ``Cache``.
        ValueError: for an empty str, or a semantic cache (its lookups need the prompt, not a key).
    """
    if spec is None:
        return None
    from litellm.caching.caching import Cache

    state = _state(tracker)
    if isinstance(spec, Cache):
        semantic = getattr(spec, "_is_semantic_cache", None)
        if callable(semantic) and semantic():
            raise ValueError("a semantic litellm Cache cannot serve exact responses; use an exact-match backend")
        return ResponseCache(spec.cache, state, ttl=spec.ttl, namespace=spec.namespace)
    if isinstance(spec, (os.PathLike, str)):
        folder = os.fspath(spec)
        if not isinstance(folder, str) or not folder.strip():
            raise ValueError('cache must be "memory", "disk", a folder path or a litellm Cache')
    else:
        raise TypeError(f'cache must be "memory", "disk", a folder path or a litellm Cache, not {type(spec).__name__}')
    name = "memory" if folder == "memory" else os.path.abspath(DEFAULT_DISK_DIR if folder == "disk" else folder)
    with state.lock:
        backend = state.caches.get(name)
        if backend is None:
            if name == "memory":
                from litellm.caching.in_memory_cache import InMemoryCache

                backend = InMemoryCache(max_size_in_memory=MEMORY_ENTRIES, default_ttl=MEMORY_TTL_S)
            else:
                backend = SqliteCache(name)
            state.caches[name] = backend
    return ResponseCache(backend, state)


def cache_stats(tracker: Tracking) -> CacheStats:
    """Hits and savings of ``tracker``'s ledger, misses of its wrapped clients in this process."""
    tracker.calls.await_returned()
    groups = tracker.ledger.safe("aggregate", lambda: tracker.store.aggregate(tracker.name, "status"), default=[])
    hit = next((g for g in groups or () if g.key == "cache_hit"), None)
    with _BY_TRACKER_LOCK:
        state = _BY_TRACKER.get(tracker)
    misses = state.misses if state is not None else 0
    if hit is None:
        return CacheStats(misses=misses)
    return CacheStats(hits=int(hit.requests), misses=misses, saved=from_units(hit.saved_units))


def reset_stats(tracker: Tracking) -> None:
    """Forget the misses counted for ``tracker`` (its ledger was reset)."""
    with _BY_TRACKER_LOCK:
        state = _BY_TRACKER.get(tracker)
    if state is not None:
        with state.lock:
            state.misses = 0


class ResponseCache:
    """One litellm cache backend (``BaseCache``) as the wrapped clients use it."""

    def __init__(
        self, backend: Any, state: _TrackerCaches, *, ttl: float | None = None, namespace: str | None = None
    ) -> None:
        self.backend = backend
        self.state = state
        self.ttl = ttl
        self.namespace = namespace

    def probe(
        self, path: tuple[str, ...], provider: str, base_url: str, kwargs: Mapping[str, Any]
    ) -> CacheProbe | None:
        """Return the lookup of one call, or None when this method or these arguments are not cached."""
        if path not in _TYPES:
            return None
        try:
            key = call_key(path, provider, base_url, kwargs)
        except _Uncacheable:
            return None
        if self.namespace:
            key = f"{self.namespace}:{key}"
        return CacheProbe(self, path, key, kwargs.get("stream") is True)


def call_key(path: tuple[str, ...], provider: str, base_url: str, kwargs: Mapping[str, Any]) -> str:
    """The cache key of a call: everything that changes its answer, hashed (raises ``_Uncacheable``)."""
    arguments = {k: v for k, v in kwargs.items() if k not in _UNKEYED and _given(v)}
    material = {
        "v": _ENTRY_VERSION,
        "method": ".".join(path),
        "provider": provider,
        "base_url": base_url,
        "arguments": _canon(arguments, 0),
    }
    text = json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=True)
    return "tokencost:" + hashlib.sha256(text.encode()).hexdigest()


def _given(value: Any) -> bool:
    """Whether an SDK argument was given (the SDKs use ``NOT_GIVEN`` / ``omit`` sentinels for "absent")."""
    return type(value).__name__ not in ("NotGiven", "Omit")


def _canon(value: Any, depth: int) -> Any:
    """The argument as JSON data, or ``_Uncacheable``."""
    if depth > 64:
        raise _Uncacheable("too deep")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Mapping):
        return {str(k): _canon(v, depth + 1) for k, v in value.items() if _given(v)}
    if isinstance(value, (list, tuple)):
        return [_canon(v, depth + 1) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return {"sha256": hashlib.sha256(bytes(value)).hexdigest()}
    if not isinstance(value, type) and callable(getattr(value, "model_dump", None)):
        return _canon(value.model_dump(mode="json"), depth + 1)
    raise _Uncacheable(type(value).__name__)


class CacheProbe:
    """The lookup of one call: its key, and what a hit returns."""

    def __init__(self, cache: ResponseCache, path: tuple[str, ...], key: str, stream: bool) -> None:
        self.cache = cache
        self.path = path
        self.key = key
        self.stream = stream

    # -- lookup -----------------------------------------------------------------------------------------------
    def get(self) -> dict[str, Any] | None:
        """The entry of this call, or None (a miss, counted). Raises when the backend fails (also a miss)."""
        found: Any = None
        try:
            found = self.cache.backend.get_cache(self.key)
        finally:
            entry = self._checked(found)
        return entry

    async def aget(self) -> dict[str, Any] | None:
        """``get()`` for async clients."""
        found: Any = None
        try:
            found = await self.cache.backend.async_get_cache(self.key)
        finally:
            entry = self._checked(found)
        return entry

    def _checked(self, found: Any) -> dict[str, Any] | None:
        if isinstance(found, str):
            try:
                found = json.loads(found)
            except ValueError:
                found = None
        if _is_entry(found, self.stream):
            return dict(found)
        self.cache.state.miss()
        return None

    # -- store ------------------------------------------------------------------------------------------------
    def entry(self, model: str, usage: Usage, items: Any) -> str:
        """The entry of a finished call: a response object, or the list of a stream's chunks."""
        if self.stream:
            body: Any = [_dump(item) for item in items]
        else:
            body = _dump(items)
        return json.dumps({"v": _ENTRY_VERSION, "model": model, "usage": usage.as_dict(), "body": body})

    def put(self, entry: str) -> None:
        """Store an entry (``entry()``). Raises when the backend fails."""
        self.cache.backend.set_cache(self.key, entry, ttl=self.cache.ttl)

    async def aput(self, entry: str) -> None:
        """``put()`` for async clients."""
        await self.cache.backend.async_set_cache(self.key, entry, ttl=self.cache.ttl)

    # -- a hit ------------------------------------------------------------------------------------------------
    def rebuild(self, entry: Mapping[str, Any], *, is_async: bool) -> tuple[Any, Usage, str]:
        """The SDK object a hit returns (a replayed SDK stream for ``stream=True``), its usage and model.

        Raises when the entry does not read as the SDK's types (the call is then sent).
        """
        module, response_type, item_type = _TYPES[self.path]
        counts: dict[str, Any] = {bucket: int(entry["usage"].get(bucket, 0)) for bucket in BUCKETS}
        usage = Usage(**counts)
        if self.stream:
            if item_type is None:
                raise ValueError("this method has no stream")
            items = [_construct(module, item_type, item) for item in entry["body"]]
            return _replay_class(module.split(".")[0], is_async)(items), usage, entry["model"]
        return _construct(module, response_type, entry["body"]), usage, entry["model"]


class SqliteCache:
    """A litellm cache backend in one SQLite file (``<folder>/responses.sqlite3``): litellm ships no disk backend.

    It has the ``BaseCache`` methods the wrappers use; several processes may share the folder.
    """

    def __init__(self, folder: str) -> None:
        os.makedirs(folder, exist_ok=True)
        self.path = os.path.join(folder, "responses.sqlite3")
        self._lock = threading.Lock()  # guards _db
        self._db = sqlite3.connect(self.path, timeout=5.0, check_same_thread=False, isolation_level=None)
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires REAL)"
            )

    def get_cache(self, key: str, **kwargs: Any) -> Any:
        with self._lock:
            row = self._db.execute("SELECT value, expires FROM responses WHERE key = ?", (key,)).fetchone()
        if row is None or (row[1] is not None and row[1] < time.time()):
            return None
        return json.loads(row[0])

    def set_cache(self, key: str, value: Any, **kwargs: Any) -> None:
        ttl = kwargs.get("ttl")
        expires = None if ttl is None else time.time() + float(ttl)
        text = value if isinstance(value, str) else json.dumps(value)
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO responses VALUES (?, ?, ?)", (key, text, expires))

    async def async_get_cache(self, key: str, **kwargs: Any) -> Any:
        return self.get_cache(key, **kwargs)

    async def async_set_cache(self, key: str, value: Any, **kwargs: Any) -> None:
        self.set_cache(key, value, **kwargs)

    async def async_set_cache_pipeline(self, cache_list: Any, **kwargs: Any) -> None:
        for key, value in cache_list:
            self.set_cache(key, value, **kwargs)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _is_entry(found: Any, stream: bool) -> bool:
    if not isinstance(found, Mapping) or found.get("v") != _ENTRY_VERSION:
        return False
    usage, body = found.get("usage"), found.get("body")
    if not isinstance(found.get("model"), str) or not isinstance(usage, Mapping):
        return False
    if not all(type(usage.get(b, 0)) is int and usage.get(b, 0) >= 0 for b in BUCKETS):
        return False
    return isinstance(body, list) if stream else isinstance(body, Mapping)


def _dump(item: Any) -> Any:
    dump = getattr(item, "model_dump", None)
    if callable(dump):
        return dump(mode="json", by_alias=True, exclude_unset=True)
    return item


def _construct(module: str, name: str, data: Any) -> Any:
    """Read cached data back into the SDK's model (the member of a union of events picked by its ``type``).

    The SDKs build responses leniently (a field the server left out stays unset), so a model that misses only
    required fields is built as the SDK builds it (``construct``); data of another shape raises.
    """
    if not isinstance(data, Mapping):
        raise TypeError(f"a cached {name} is not an object")
    members = _members(module, name)
    model = members[0] if len(members) == 1 else None
    kind = data.get("type")
    for member in members if model is None else ():
        field = member.model_fields.get("type")
        if field is not None and kind in typing.get_args(field.annotation):
            model = member
            break
    if model is None:
        raise ValueError(f"a cached {name} of unknown type {kind!r}")
    from pydantic import ValidationError

    try:
        return model.model_validate(data)
    except ValidationError as exc:
        if all(error["type"] == "missing" for error in exc.errors()):
            return model.construct(**data)
        raise


@functools.lru_cache(maxsize=32)
def _members(module: str, name: str) -> tuple[Any, ...]:
    """The model classes of an SDK type: the class itself, or the members of a (discriminated) union."""
    import importlib

    def flatten(tp: Any) -> list[Any]:
        args = typing.get_args(tp)
        if typing.get_origin(tp) is typing.Annotated:
            return flatten(args[0])
        return [m for arg in args for m in flatten(arg)] if args else [tp]

    return tuple(flatten(getattr(importlib.import_module(module), name)))


@functools.lru_cache(maxsize=8)
def _replay_class(sdk: str, is_async: bool) -> Any:
    """A subclass of the SDK's ``Stream`` / ``AsyncStream`` that replays cached items (no HTTP response)."""
    import importlib

    base = getattr(importlib.import_module(sdk), "AsyncStream" if is_async else "Stream")
    if is_async:

        class AsyncReplay(base):  # type: ignore[misc, valid-type]
            """A cached stream, replayed: the SDK's chunk objects, in the order first seen."""

            def __init__(self, items: list[Any]) -> None:
                self._tc_items = iter(items)
                self.response = None

            def __aiter__(self) -> Any:
                return self

            async def __anext__(self) -> Any:
                try:
                    return next(self._tc_items)
                except StopIteration:
                    raise StopAsyncIteration from None

            async def close(self) -> None:
                self._tc_items = iter(())

            async def __aenter__(self) -> Any:
                return self

            async def __aexit__(self, *exc: Any) -> None:
                await self.close()

        AsyncReplay.__name__ = AsyncReplay.__qualname__ = f"Cached{base.__name__}"
        return AsyncReplay

    class Replay(base):  # type: ignore[misc, valid-type]
        """A cached stream, replayed: the SDK's chunk objects, in the order first seen."""

        def __init__(self, items: list[Any]) -> None:
            self._tc_items = iter(items)
            self.response = None

        def __iter__(self) -> Any:
            return self

        def __next__(self) -> Any:
            return next(self._tc_items)

        def close(self) -> None:
            self._tc_items = iter(())

        def __enter__(self) -> Any:
            return self

        def __exit__(self, *exc: Any) -> None:
            self.close()

    Replay.__name__ = Replay.__qualname__ = f"Cached{base.__name__}"
    return Replay

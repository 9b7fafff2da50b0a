"""``RedisStore``: the ledger in Redis, shared by every process on every machine that reaches the server.

``redis://host:6379/0`` or ``rediss://...`` (TLS); needs the ``redis`` extra. Keys live under
``tokencost:{ledger}:`` (a hash tag: a Redis Cluster keeps each ledger on one slot):

==================  ==========================================================================================
``totals``          hash: requests, cost, unpriced, saved, the five token buckets, cost_m and saved_m (integers)
``agg:<dim>``       hash per dimension (model, provider, user, tag, day, status, price_source): field
                    ``<i>:<group>`` holds the i-th stored sum of that group (the order of ``totals``)
``counters``        hash: ``m:<key>`` whole micro-dollars, ``u:<key>`` the pico-dollars below them and
                    ``t:<key>`` tokens charged to each budget counter
``held``            hash: the same, held by open reservations; ``res`` (hash) and ``resexp`` (sorted set by
                    expiry, server clock) describe each reservation
``events``          stream, one entry per event (JSON), trimmed to about ``max_events`` (default 1,000,000)
``prices``          hash: each price's JSON by content address (events refer to it)
``unpriced``        hash: call id -> the stream entry of an unpriced event; ``repriced`` keeps late prices
``writers``         hash: the last batch each writer applied (a retried batch is not applied twice)
``meta``            hash: ``set_meta`` values (``reset`` keeps them)
==================  ==========================================================================================

Money is integer pico-dollars changed only with ``HINCRBY`` (never ``INCRBYFLOAT``); Lua compares sums as
decimal text (Lua numbers lose precision above 2^53). ``record`` and ``reserve`` are single Lua scripts
(``tokencost/stores/lua/``). ``HINCRBY`` is 64-bit, so each money sum is two fields: whole micro-dollars
(``cost_m``, ``m:<key>``) and the pico-dollars below them (``cost``, ``u:<key>``); a ledger holds about
$9.2 * 10^12, exact to the pico-dollar (one event at most $9.2 million: ``plausible_event``). Every increment is
split in Python before it is sent, so a script never fails half-way over an amount.

Writes are batched like ``SQLiteStore``: ``record()`` queues the event; a batch (one script call per ledger,
pipelined) is sent by the recording thread when 2,000 events are queued, or by a background thread 50 ms after
the first one. Every other method sends the queue first (``reserve()`` in the same round trip), so it sees this
process's events. ``totals()`` and ``aggregate()`` by model, provider, user, tag, day, status or price_source
read the group hashes (exact over the whole history); ``aggregate()`` by another metadata key or over
``since``/``until``, and ``events()``, scan the stream, so they cover at most the last ``max_events`` events.

When Redis cannot be reached, every method raises ``StoreError`` (``record()`` once a write has failed), and
the caller (the tracker's ``on_store_error``) decides whether calls go on. ``record()`` keeps the event all the
same: it is queued locally (at most ``max_queue``, 100,000 events; beyond that new events are dropped and
counted in the log) and written, before anything else, by the next successful call, ``flush()``, or the
background thread, which retries with backoff up to 2 s. A batch whose reply was lost is retried unchanged with
its sequence number, and the script skips a batch it already applied.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.resources
import json
import uuid
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from tokencost.errors import MissingExtraError, StoreError
from tokencost.events import Event
from tokencost.pricing import Price
from tokencost.stores.base import (
    MAX_EVENT_UNITS,
    MICRO,
    NONE_KEY,
    Check,
    Group,
    Store,
    Totals,
    join_sums,
    plausible_event,
    split_sums,
    split_units,
)
from tokencost.stores.codec import encode_json, plain_json, price_from_json, price_key, price_to_json
from tokencost.stores.grouping import (
    add_sums,
    day_key,
    event_groups,
    in_window,
    metadata_group,
    ranked_groups,
    repricing_moves,
    sums_of,
    tag_groups,
)
from tokencost.stores.queue import QUEUED_STORE_WRAPPED, Batch, Queued, WriteBehind, logger
from tokencost.usage import Usage

if TYPE_CHECKING:
    from tokencost.stores.reservation import Reservation

__all__ = ["DIMENSIONS", "RedisStore"]

# Dimensions kept as running group sums (aggregate() reads them without scanning the event log).
DIMENSIONS = ("model", "provider", "user", "tag", "day", "status", "price_source")
_TOTALS_FIELDS = (
    "requests",
    "cost",
    "unpriced",
    "saved",
    "input",
    "cache_read",
    "cache_write",
    "output",
    "reasoning",
    "cost_m",
    "saved_m",
)
# An event's usage as its JSON holds it, in this order (an older tokencost wrote the first eight, or twelve).
_STORED_USAGE = (
    "input",
    "cache_read",
    "cache_write",
    "output",
    "reasoning",
    "audio_in",
    "audio_out",
    "image",
    "cache_write_1h",
    "web_search_requests",
    "service_tier",
    "inference_geo",
    "cache_read_audio",
)
_SCRIPTS = ("record", "reserve", "release", "counters", "update_cost", "reservations")
_SCAN_PAGE = 2000
_NO_TAGS = (NONE_KEY,)  # the tag groups of an event without metadata
_Call = tuple[str, Sequence[str], Sequence[Any]]  # (script name, keys, args)


def _import_redis() -> Any:
    try:
        import redis
    except ImportError as exc:
        raise MissingExtraError("redis", "redis") from exc
    return redis


def _load_script(name: str) -> str:
    lua = importlib.resources.files("tokencost.stores").joinpath("lua")
    return (
        lua.joinpath("common.lua").read_text(encoding="utf-8")
        + "\n"
        + lua.joinpath(f"{name}.lua").read_text(encoding="utf-8")
    )


class _Keys(NamedTuple):
    totals: str
    counters: str
    held: str
    res: str
    resexp: str
    events: str
    unpriced: str
    repriced: str
    prices: str
    writers: str
    meta: str
    aggs: tuple[str, ...]

    @classmethod
    def of(cls, ledger: str) -> _Keys:
        """Return the key names of ``ledger``."""
        p = f"tokencost:{{{ledger}}}:"
        return cls(
            totals=p + "totals",
            counters=p + "counters",
            held=p + "held",
            res=p + "res",
            resexp=p + "resexp",
            events=p + "events",
            unpriced=p + "unpriced",
            repriced=p + "repriced",
            prices=p + "prices",
            writers=p + "writers",
            meta=p + "meta",
            aggs=tuple(f"{p}agg:{dim}" for dim in DIMENSIONS),
        )

    def data(self) -> list[str]:
        """Return every key ``reset`` deletes (all but meta)."""
        return [*self[:10], *self.aggs]


def _encode_event(event: Event, pkey: str | None) -> str:
    try:
        return _encode_event_as(event, pkey, event.metadata)
    except (ValueError, TypeError, RecursionError):
        # Never fail a write over metadata: an event that cannot be written would block every later one.
        return _encode_event_as(event, pkey, plain_json(event.metadata))


def _encode_event_as(event: Event, pkey: str | None, metadata: Mapping[str, Any]) -> str:
    usage = event.usage
    return encode_json(
        [
            event.call_id,
            event.timestamp,
            event.model,
            event.provider,
            event.cost_units,
            event.saved_units,
            [
                usage.input,
                usage.cache_read,
                usage.cache_write,
                usage.output,
                usage.reasoning,
                usage.audio_in,
                usage.audio_out,
                usage.image,
                usage.cache_write_1h,
                usage.web_search_requests,
                usage.service_tier,
                usage.inference_geo,
                usage.cache_read_audio,
            ],
            event.price_source,
            pkey,
            None if event.breakdown is None else dict(event.breakdown),
            metadata if type(metadata) is dict else dict(metadata),
            event.status,
            event.reason,
        ]
    )


def _decode_event(raw: list[Any], prices: Mapping[str, Price]) -> Event:
    call_id, ts, model, provider, cost, saved, buckets, source, pkey, breakdown, metadata, status, reason = raw
    return Event(
        call_id=call_id,
        timestamp=ts,
        model=model,
        provider=provider,
        usage=Usage(**dict(zip(_STORED_USAGE, buckets, strict=False))),  # an older tokencost wrote fewer
        cost_units=cost,
        price_source=source,
        price=None if pkey is None else prices[pkey],
        saved_units=saved,
        metadata=metadata,
        status=status,
        reason=reason,
        breakdown=breakdown,
    )


def _text(values: Sequence[int]) -> list[str]:
    return [str(v) for v in values]


def _stored_text(sums: Sequence[int]) -> list[str]:
    """Return ``Totals`` sums as the fields that keep them (``split_sums``), as decimal text."""
    return [str(v) for v in split_sums(sums)]


def _charge(key: str, units: int, tokens: int) -> list[str]:
    """Return a counter charge as the record script takes it: key, pico-dollars below a micro-dollar, tokens,
    whole micro-dollars."""
    rest, micro = split_units(units)
    return [key, str(rest), str(tokens), str(micro)]


def _group_increments(events: Sequence[Event]) -> dict[tuple[int, str], list[int]]:
    """Return the ``Totals`` sums of ``events`` for each (dimension index, group)."""
    # Sum by kind first (a batch has few kinds), then spread each kind over its groups.
    kinds: dict[tuple[Any, ...], list[Event]] = {}
    for event in events:
        metadata = event.metadata
        kind = (
            event.model,
            event.provider,
            event.status,
            event.price_source or NONE_KEY,
            day_key(event.timestamp),
            metadata_group(metadata, "user") if metadata else NONE_KEY,
            tag_groups(metadata) if metadata else _NO_TAGS,
        )
        group = kinds.get(kind)
        if group is None:
            kinds[kind] = [event]
        else:
            group.append(event)
    out: dict[tuple[int, str], list[int]] = {}
    for (model, provider, status, source, day, user, tags), members in kinds.items():
        sums = sums_of(members)
        values = ([model], [provider], [user], tags, [day], [status], [source])  # in DIMENSIONS order
        for index, groups in enumerate(values):
            for group in groups:
                add_sums(out, (index + 1, group), sums)
    return out


class _Backend:
    """The client and scripts; the batch writer and counter reads used by ``WriteBehind``."""

    def __init__(self, url: str, max_events: int, client_options: dict[str, Any], timeout: float | None) -> None:
        redis = _import_redis()
        self.redis = redis
        retry = importlib.import_module("redis.retry")
        backoff = importlib.import_module("redis.backoff")
        options: dict[str, Any] = {
            "socket_connect_timeout": 2.0 if timeout is None else timeout,
            "socket_timeout": 5.0 if timeout is None else timeout,
            # One immediate retry reconnects a pooled connection the server dropped; the write-behind queue
            # does the patient retrying.
            "retry": retry.Retry(backoff.NoBackoff(), 1),
        }
        options.update(client_options)
        options["decode_responses"] = True
        self.client = redis.Redis.from_url(url, **options)
        self.max_events = max_events
        self.writer_id = uuid.uuid4().hex
        self.scripts = {name: _load_script(name) for name in _SCRIPTS}
        self.shas = {
            name: hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest() for name, text in self.scripts.items()
        }
        self._keys: dict[str, _Keys] = {}
        self._prices: dict[str, Price] = {}  # price key -> Price (content-addressed, so never stale)
        self._price_keys: dict[str, str] = {}  # price JSON -> price key

    def keys(self, ledger: str) -> _Keys:
        """Return the key names of ``ledger`` (cached)."""
        keys = self._keys.get(ledger)
        if keys is None:
            if len(self._keys) > 4096:
                self._keys.clear()
            keys = self._keys[ledger] = _Keys.of(ledger)
        return keys

    def _load_scripts(self) -> None:
        for name, text in self.scripts.items():
            self.shas[name] = self.client.script_load(text)

    def run(self, calls: Sequence[_Call]) -> list[Any]:
        """Run scripts ``(name, keys, args)`` in one round trip; load them when the server lost them."""
        for attempt in range(2):
            try:
                if len(calls) == 1:
                    name, keys, args = calls[0]
                    return [self.client.evalsha(self.shas[name], len(keys), *keys, *args)]
                pipe = self.client.pipeline(transaction=False)
                for name, keys, args in calls:
                    pipe.evalsha(self.shas[name], len(keys), *keys, *args)
                return list(pipe.execute())
            except self.redis.exceptions.NoScriptError:
                # A restarted or flushed server forgot the scripts; nothing ran, so running again is safe.
                if attempt:
                    raise
                self._load_scripts()
        raise AssertionError("unreachable")  # pragma: no cover

    def price_key(self, price: Price) -> tuple[str, str]:
        """Return a price's content address and JSON, remembering the price for reads."""
        text = price_to_json(price)
        key = self._price_keys.get(text)
        if key is None:
            key = price_key(text)
            if len(self._price_keys) > 4096:
                self._price_keys.clear()
            self._price_keys[text] = key
            self._prices.setdefault(key, price)
        return key, text

    def write_batch(self, batch: Batch) -> dict[tuple[str, str], tuple[int, int]]:
        """Send one record script call per ledger of the batch, pipelined."""
        calls, charged = self.batch_calls(batch)
        return self.batch_values(charged, self.run(calls))

    def batch_calls(self, batch: Batch) -> tuple[list[_Call], list[tuple[str, list[str]]]]:
        """Return the record script calls of a batch, and the counter keys each call returns, by ledger."""
        calls: list[_Call] = []
        charged: list[tuple[str, list[str]]] = []
        drops: dict[str, list[str]] = {}
        for ledger, rid in batch.drops:
            drops.setdefault(ledger, []).append(rid)
        charges_by_ledger: dict[str, list[list[str]]] = {}
        for (ledger, key), (units, tokens) in batch.charges.items():
            charges_by_ledger.setdefault(ledger, []).append(_charge(key, units, tokens))
        for ledger, items in batch.by_ledger().items():
            keys = self.keys(ledger)
            texts: list[str] = []
            unpriced: list[list[Any]] = []
            prices: dict[str, str] = {}
            events = [item.event for item in items]
            for index, event in enumerate(events):
                pkey = None
                if event.price is not None:
                    pkey, ptext = self.price_key(event.price)
                    prices[pkey] = ptext
                texts.append(_encode_event(event, pkey))
                if event.cost_units is None:
                    unpriced.append([5 + index, event.call_id])
            counter_charges = charges_by_ledger.get(ledger, [])
            header = {
                "d": drops.get(ledger, []),
                "t": _stored_text(sums_of(events)),
                "c": counter_charges,
                "a": [[dim, group, _stored_text(sums)] for (dim, group), sums in _group_increments(events).items()],
                "u": unpriced,
                "p": [[k, v] for k, v in prices.items()],
            }
            args = [self.max_events, self.writer_id, batch.seq, json.dumps(header, separators=(",", ":")), *texts]
            script_keys = [
                keys.totals,
                keys.counters,
                keys.held,
                keys.res,
                keys.resexp,
                keys.events,
                keys.unpriced,
                keys.prices,
                keys.writers,
                *keys.aggs,
            ]
            calls.append(("record", script_keys, args))
            charged.append((ledger, [c[0] for c in counter_charges]))
        return calls, charged

    @staticmethod
    def batch_values(
        charged: Sequence[tuple[str, list[str]]], results: Sequence[Any]
    ) -> dict[tuple[str, str], tuple[int, int]]:
        """Return the committed counters a batch's record script calls reported."""
        values: dict[tuple[str, str], tuple[int, int]] = {}
        for (ledger, keys_charged), result in zip(charged, results, strict=True):
            for i, key in enumerate(keys_charged):
                values[ledger, key] = (int(result[2 * i]), int(result[2 * i + 1]))
        return values

    def fetch_counters(self, ledger: str, keys: Sequence[str]) -> dict[str, tuple[int, int]]:
        """Return the committed ``(units, tokens)`` of counter ``keys``."""
        fields = [f"{kind}:{key}" for key in keys for kind in ("u", "t", "m")]
        raw = self.client.hmget(self.keys(ledger).counters, fields)
        return {
            key: (int(raw[3 * i + 2] or 0) * MICRO + int(raw[3 * i] or 0), int(raw[3 * i + 1] or 0))
            for i, key in enumerate(keys)
        }

    def prices(self, ledger: str, pkeys: set[str]) -> dict[str, Price]:
        """Return the prices of ``pkeys`` (cached; fetched from the ledger's prices hash when new)."""
        missing = [k for k in pkeys if k not in self._prices]
        if missing:
            for k, text in zip(missing, self.client.hmget(self.keys(ledger).prices, missing), strict=True):
                if text is None:
                    raise StoreError(f"redis store: price {k} of ledger {ledger!r} is missing")
                self._prices[k] = price_from_json(text)
        return self._prices

    def decode(self, ledger: str, entries: Sequence[tuple[str, Mapping[str, str]]]) -> list[Event]:
        """Turn stream entries into events, applying prices that arrived after an event was recorded."""
        raws = [json.loads(fields["e"]) for _, fields in entries]
        late = [entry_id for (entry_id, _), raw in zip(entries, raws, strict=True) if raw[4] is None]
        if late:
            patches = dict(zip(late, self.client.hmget(self.keys(ledger).repriced, late), strict=True))
            for (entry_id, _), raw in zip(entries, raws, strict=True):
                patch = patches.get(entry_id)
                if patch is not None:
                    p = json.loads(patch)
                    raw[4], raw[5], raw[7], raw[8], raw[11], raw[12] = p["c"], p["s"], p["ps"], p["pk"], "ok", None
        prices = self.prices(ledger, {raw[8] for raw in raws if raw[8] is not None})
        return [_decode_event(raw, prices) for raw in raws]

    def close(self) -> None:
        """Close the client's connections."""
        self.client.close()


def _close_quietly(batcher: WriteBehind, backend: _Backend) -> None:
    # Runs at interpreter exit or when the store is garbage-collected without close().
    try:
        batcher.close()
    except BaseException as exc:  # nobody to raise to at exit
        logger.error("redis store: %d queued events could not be written: %s", batcher.pending(), exc)
    finally:
        backend.close()


class RedisStore(Store):
    """The ledger in Redis: shared by every process that reaches the server. Thread-safe.

    Example::

        store = RedisStore("redis://127.0.0.1:6379/0")

    Args:
        url: ``redis://[user:password@]host:port/db`` or ``rediss://...``.
        batch_size: send a batch when this many events are queued.
        max_delay: send a batch at most this many seconds after its first event was queued.
        max_queue: events kept locally while Redis cannot be reached (more are dropped and logged).
        max_events: the event stream of each ledger is trimmed to about this many entries.
        timeout: seconds one round trip (and connecting) may take before ``StoreError`` (default: 2 s to
            connect, 5 s to answer); a server that accepts but never answers fails within it (twice it, with
            the one reconnect).
        clock: seconds since the epoch, for reservation times; default: the Redis server's clock.
        **client_options: passed to ``redis.Redis.from_url`` (e.g. ``socket_timeout``, ``password``).

    Constructing connects to nothing: a server that is down or not there yet is found out on first use (events
    are queued and written once it answers).

    Raises:
        MissingExtraError: when redis-py is not installed (``pip install -e '.[redis]'``).
        ValueError: for a malformed URL or option.
    """

    scheme = "redis"
    WRAPPED_METHODS = QUEUED_STORE_WRAPPED

    def __init__(
        self,
        url: str,
        *,
        batch_size: int = 2000,
        max_delay: float = 0.05,
        max_queue: int = 100_000,
        max_events: int = 1_000_000,
        timeout: float | None = None,
        clock: Callable[[], float] | None = None,
        **client_options: Any,
    ) -> None:
        super().__init__(url)
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self._clock = clock
        self._backend = _Backend(url, max_events, client_options, timeout)
        redis_error = self._backend.redis.exceptions.RedisError
        self._batcher = WriteBehind(
            "redis",
            self._backend.write_batch,
            self._backend.fetch_counters,
            batch_size=batch_size,
            max_delay=max_delay,
            max_queue=max_queue,
            # Any error of Redis itself (down, timed out, refused) keeps a batch queued; one raised while encoding
            # a batch (before anything is sent) is an event's, and the batch is written around it.
            transient=lambda exc: isinstance(exc, (StoreError, redis_error)),
        )
        self._finalizer = weakref.finalize(self, _close_quietly, self._batcher, self._backend)

    def __repr__(self) -> str:
        # The URL may carry a password: show only where the server is.
        kwargs = self._backend.client.connection_pool.connection_kwargs
        return f"RedisStore(host={kwargs.get('host')!r}, port={kwargs.get('port')!r}, db={kwargs.get('db')!r})"

    # -- writes -------------------------------------------------------------------------------------------
    def record(
        self, ledger: str, event: Event, charges: Sequence[str] = (), reservation: str | None = None
    ) -> dict[str, tuple[int, int]]:
        item = tuple.__new__(
            Queued,
            (ledger, plausible_event(event), charges if type(charges) is tuple else tuple(charges), reservation),
        )
        return self._batcher.add(item)

    def _now(self) -> str:
        """The time scripts use, as text: the store's clock when one was given, else '' (the server's)."""
        return "" if self._clock is None else repr(float(self._clock()))

    def reserve(
        self, ledger: str, reservation: str, checks: Sequence[Check], cost_units: int, tokens: int, ttl: float
    ) -> Check | None:
        keys = self._backend.keys(ledger)
        rest, micro = split_units(cost_units)
        args: list[Any] = [reservation, str(cost_units), str(tokens), repr(float(ttl)), self._now(), rest, micro]
        for check in checks:
            args += [
                check.key,
                "" if check.limit_units is None else str(check.limit_units),
                "" if check.limit_tokens is None else str(check.limit_tokens),
            ]
        batcher = self._batcher
        call: _Call = ("reserve", [keys.counters, keys.held, keys.res, keys.resexp], args)
        with batcher.txn_lock:
            # This process's queued events go first, in the same round trip: their charges count.
            batch = batcher.take()
            try:
                calls, charged = self._backend.batch_calls(batch) if batch is not None else ([], [])
            except BaseException as exc:  # an event that cannot be encoded: write the batch around it first
                if batch is None or not batcher.recover(batch, exc):
                    raise
                batch, calls, charged = None, [], []
            try:
                results = self._backend.run([*calls, call])
            except BaseException as exc:
                if batch is not None:
                    batcher.failed(batch, exc)
                raise
            if batch is not None:
                batcher.written(self._backend.batch_values(charged, results[:-1]))
        result = int(results[-1])
        return None if result == 0 else checks[result - 1]

    def release(self, ledger: str, reservation: str) -> None:
        keys = self._backend.keys(ledger)
        with self._batcher.txn_lock:
            self._batcher.drain_locked()
            self._backend.run([("release", [keys.held, keys.res, keys.resexp], [reservation])])

    def reservations(self, ledger: str) -> list[Reservation]:
        from tokencost.stores.reservation import Reservation  # built on first listing

        keys = self._backend.keys(ledger)
        with self._batcher.txn_lock:
            self._batcher.drain_locked()
            raw = self._backend.run([("reservations", [keys.held, keys.res, keys.resexp], [self._now(), ""])])[0]
        out = []
        for rid, text in zip(raw[::2], raw[1::2], strict=True):
            r = json.loads(text)
            units = int(r.get("m") or 0) * MICRO + int(r["u"])
            created = float(r.get("c") or 0.0)
            out.append(Reservation(rid, tuple(r["k"]), units, int(r["t"]), created, float(r.get("e") or 0.0)))
        out.sort(key=lambda r: (r.created, r.id))
        return out

    def release_stale(self, ledger: str, older_than: float) -> int:
        keys = self._backend.keys(ledger)
        args = [self._now(), repr(float(older_than))]
        with self._batcher.txn_lock:
            self._batcher.drain_locked()
            return int(self._backend.run([("reservations", [keys.held, keys.res, keys.resexp], args)])[0])

    def update_cost(
        self, ledger: str, call_id: str, cost_units: int, price: Price, charges: Sequence[str] = ()
    ) -> bool:
        if not 0 <= cost_units <= MAX_EVENT_UNITS:
            return False  # an amount no event can have is never written as money
        backend = self._backend
        keys = backend.keys(ledger)
        charges = list(dict.fromkeys(charges))
        with self._batcher.txn_lock:
            self._batcher.drain_locked()
            entry = backend.client.hget(keys.unpriced, call_id)
            if entry is None:
                return False
            entry_id, text = entry.split(" ", 1)
            old = _decode_event(json.loads(text), {})
            pkey, ptext = backend.price_key(price)
            saved = price.saved_units(old.usage) or old.saved_units
            new = dataclasses.replace(
                old,
                cost_units=cost_units,
                price_source=price.source,
                price=price,
                saved_units=saved,
                status="ok",
                reason=None,
            )
            old_sums, new_sums = sums_of([old]), sums_of([new])
            groups = repricing_moves(
                [(index, group) for index, dim in enumerate(DIMENSIONS, start=1) for group in event_groups(old, dim)],
                [(index, group) for index, dim in enumerate(DIMENSIONS, start=1) for group in event_groups(new, dim)],
                old_sums,
                new_sums,
            )
            header = {
                "t": _stored_text([b - a for a, b in zip(old_sums, new_sums, strict=True)]),
                "a": [[dim, group, _stored_text(sums)] for (dim, group), sums in groups.items() if any(sums)],
                "c": [_charge(key, cost_units, 0) for key in charges],
                "p": [[pkey, ptext]],
            }
            patch = json.dumps({"c": cost_units, "s": saved, "ps": price.source, "pk": pkey}, separators=(",", ":"))
            script_keys = [keys.totals, keys.counters, keys.unpriced, keys.repriced, keys.prices, *keys.aggs]
            args = [call_id, entry_id, patch, json.dumps(header, separators=(",", ":"))]
            if not int(backend.run([("update_cost", script_keys, args)])[0]):
                return False
            if charges:
                values = backend.fetch_counters(ledger, charges)
                self._batcher.set_committed({(ledger, key): value for key, value in values.items()})
            return True

    def reset(self, ledger: str) -> None:
        with self._batcher.txn_lock:
            self._batcher.forget(ledger)
            self._backend.client.delete(*self._backend.keys(ledger).data())

    def set_meta(self, ledger: str, key: str, value: str) -> None:
        with self._batcher.txn_lock:
            self._batcher.drain_locked()
            self._backend.client.hset(self._backend.keys(ledger).meta, key, value)

    def get_meta(self, ledger: str, key: str) -> str | None:
        with self._batcher.txn_lock:
            self._batcher.drain_locked()
            value: str | None = self._backend.client.hget(self._backend.keys(ledger).meta, key)
        return value

    def flush(self, timeout: float | None = None) -> bool:
        return self._batcher.flush(timeout)

    def close(self) -> None:
        """Write what is queued and close the connections.

        Raises:
            StoreError: when the queued events could not be written (they are lost).
        """
        if self._finalizer.detach() is None:
            return
        try:
            self._batcher.close()
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(
                f"redis store: close failed, {self._batcher.pending()} queued events not written: {exc}"
            ) from exc
        finally:
            self._backend.close()

    # -- reads --------------------------------------------------------------------------------------------
    def counters(self, ledger: str, keys: Sequence[str]) -> dict[str, tuple[int, int, int]]:
        keys = list(dict.fromkeys(keys))
        if not keys:
            return {}
        k = self._backend.keys(ledger)
        with self._batcher.txn_lock:
            self._batcher.drain_locked()
            raw = self._backend.run([("counters", [k.counters, k.held, k.res, k.resexp], [self._now(), *keys])])[0]
        return {key: (int(raw[3 * i]), int(raw[3 * i + 1]), int(raw[3 * i + 2])) for i, key in enumerate(keys)}

    def totals(self, ledger: str) -> Totals:
        with self._batcher.txn_lock:
            self._batcher.drain_locked()
            raw = self._backend.client.hgetall(self._backend.keys(ledger).totals)
        return Totals.from_sums(join_sums([int(raw.get(name, 0)) for name in _TOTALS_FIELDS]))

    def aggregate(self, ledger: str, by: str, since: float | None = None, until: float | None = None) -> list[Group]:
        groups: dict[str, list[int]] = {}
        if by in DIMENSIONS and since is None and until is None:
            with self._batcher.txn_lock:
                self._batcher.drain_locked()
                raw = self._backend.client.hgetall(self._backend.keys(ledger).aggs[DIMENSIONS.index(by)])
            stored: dict[str, list[int]] = {}
            for name, value in raw.items():
                index, _, group = name.partition(":")
                stored.setdefault(group, [0] * len(_TOTALS_FIELDS))[int(index)] = int(value)
            groups = {group: join_sums(values) for group, values in stored.items()}
        else:
            for event in self.events(ledger, since=since, until=until):
                sums = sums_of([event])
                for group in event_groups(event, by):
                    add_sums(groups, group, sums)
        return ranked_groups(groups.items())

    def events(
        self,
        ledger: str,
        since: float | None = None,
        until: float | None = None,
        model: str | None = None,
        limit: int | None = None,
    ) -> list[Event]:
        if limit is not None and limit <= 0:
            return []
        client = self._backend.client
        stream = self._backend.keys(ledger).events
        newest_first = limit is not None
        picked: list[Event] = []
        with self._batcher.txn_lock:
            self._batcher.drain_locked()
            start = "+" if newest_first else "-"
            while True:
                if newest_first:
                    page = client.xrevrange(stream, max=start, min="-", count=_SCAN_PAGE)
                else:
                    page = client.xrange(stream, min=start, max="+", count=_SCAN_PAGE)
                if not page:
                    break
                for event in self._backend.decode(ledger, page):
                    if not in_window(event.timestamp, since, until):
                        continue
                    if model is not None and event.model != model:
                        continue
                    picked.append(event)
                    if limit is not None and len(picked) >= limit:
                        break
                if (limit is not None and len(picked) >= limit) or len(page) < _SCAN_PAGE:
                    break
                start = "(" + page[-1][0]
        if newest_first:
            picked.reverse()
        return picked

"""``SQLiteStore``: the ledger in one SQLite file, shared by every process on the host and kept across restarts.

``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` (missing folders are created). The file is
in WAL mode with ``synchronous=NORMAL``; money is INTEGER pico-dollars (never REAL): an event's amount in one
column (at most 2^63 - 1, see ``plausible_event``), running sums in two (``cost`` and ``cost_m``: the pico-dollars
below a micro-dollar and the whole micro-dollars), so totals hold about $9.2 * 10^12 exactly.

**Batched writes.** ``record()`` queues the event and returns; the queue is written in one transaction per
batch: by the recording thread itself when ``batch_size`` (2,000) events are queued, or by a background thread
``max_delay`` (50 ms) after the first queued event; a ``record()`` that finds a full batch waiting behind the
one being written writes it first. So a process killed with SIGKILL loses at most two batches (4,000 events),
however many threads record, while writes succeed; while they fail, up to ``max_queue`` (20,000). ``flush()``
writes the queue now; ``close()`` and interpreter exit flush too. A committed batch survives a process crash;
after a power loss, WAL with ``synchronous=NORMAL`` may roll back the last transactions.

**Reads see queued events.** ``counters()`` and ``totals()`` add this process's queued events to what the file
says; ``events()`` and ``aggregate()`` write the queue first; ``reserve()`` writes it in its own transaction.
``record()`` returns counter values without touching the file: the values read back by this process's last
write (other processes' charges included) plus its queued charges. Other processes see an event once its batch
is written (at most ``max_delay`` later).

**Budgets across processes.** ``reserve()`` is one ``BEGIN IMMEDIATE`` transaction that checks spent +
reserved + this reservation against each limit, so processes sharing the file never both pass a check only one
of them fits under. An event's reservation is deleted in the transaction that writes the event: until then
other processes still see the reservation, so spent + reserved never undercounts.

**Group sums.** Besides running totals, the file keeps running sums of each group of ``DIMENSIONS`` (model,
provider, user: metadata ``"user"``, tag: each of metadata ``"tags"``, day: UTC date, status, price_source),
written in the transaction that writes the events (and by ``update_cost``, cleared by ``reset``). So
``aggregate()`` by one of these over the whole history reads a few rows (a per-user budget line over a million
events: milliseconds, not seconds); with ``since``/``until``, or by another metadata key, it groups the events
in SQL. The sums are keyed exactly as that SQL groups. Schema 2 added them: a schema 1 file is upgraded when it
is first opened (about 3 s per million events, holding the write lock meanwhile); should a schema 1 tokencost
that had the file open already keep writing, ``aggregate()`` notices that the groups no longer add up to the
totals and sums them again.

One connection per store object, guarded by a lock (threads share it), opened lazily when the file cannot be
opened yet (locked, read-only, not a ledger): the store is down until then. Prices are kept once each as decimal
text (exact), so ``events()`` returns events equal to those recorded (metadata goes through JSON: tuples come
back as lists). Only unpriced
events are indexed by call id (``update_cost`` looks them up; an index of every call id halves write speed).

The tables and the upgrade of an older file are in ``sqlite_schema``, the SQL statements in ``sqlite_queries``;
the write-behind queue (``queue``) and the codec (``codec``) are shared with ``RedisStore``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sqlite3
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from tokencost.errors import StoreError
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
    first_misfit,
    join_sums,
    plausible_event,
    split_sums,
    split_units,
)
from tokencost.stores.codec import (
    CODEC_CACHE_SIZE,
    encode_json,
    metadata_to_json,
    price_from_json,
    price_to_json,
)

# Imported from here before the split (``as``: re-exported).
from tokencost.stores.codec import plain_json as plain_json
from tokencost.stores.codec import price_from_dict as price_from_dict
from tokencost.stores.codec import price_key as price_key
from tokencost.stores.codec import price_to_dict as price_to_dict
from tokencost.stores.codec import quarantined_event as quarantined_event
from tokencost.stores.grouping import add_sums, ranked_groups, repriced_sums, repricing_moves, unpriced_sums
from tokencost.stores.grouping import sums_of as sums_of
from tokencost.stores.queue import QUEUED_STORE_WRAPPED, Batch, Queued, WriteBehind
from tokencost.stores.sqlite_queries import (
    ADD_GROUP,
    ADD_SPAN,
    ADD_SPANS,
    ADD_TOTALS,
    COVERED,
    DIMENSIONS,
    EVENT_COLUMNS,
    GROUP_COLUMNS,
    GROUP_SQL,
    INSERT_EVENT,
    KEY_SQL,
    METADATA_GROUP,
    MOVED_DIMENSIONS,
    NEWEST,
    NO_TAGS,
    SUMS_SQL,
    TAGS_SQL,
    UPSERT_COUNTER,
    USER_SQL,
)
from tokencost.stores.sqlite_schema import N_SUMS, SCHEMA_VERSION, create_or_upgrade
from tokencost.usage import Usage

if TYPE_CHECKING:
    from tokencost.stores.reservation import Reservation

__all__ = ["DIMENSIONS", "QUEUED_STORE_WRAPPED", "SQLiteStore", "WriteBehind"]

logger = logging.getLogger("tokencost")

_T = TypeVar("_T")

_MAX_I64 = 2**63  # JSON integers SQLite reads back exactly lie strictly within +-2^63
_DAY_S = 86_400.0
_LAST_DAY_S = 253_402_300_800.0  # 10000-01-01: dates beyond are SQLite's business
_EPOCH_ORDINAL = 719_163  # datetime.date(1970, 1, 1).toordinal()


def _encodes_as(metadata: dict[str, Any], text: str) -> bool:
    """Tell whether ``metadata`` encodes to ``text`` as it is (``metadata_to_json`` did not need ``plain_json``)."""
    try:
        return encode_json(metadata) == text
    except (ValueError, TypeError, RecursionError):
        return False


def _plain_user(value: Any) -> str | None:
    """Return the user group of a bool or int metadata value as aggregate()'s SQL shows it; None for others."""
    if value is True or value is False:
        return str(value)
    if type(value) is int and -_MAX_I64 < value < _MAX_I64:
        return str(value)
    return None


def _path_from_url(url: str) -> str:
    prefix = "sqlite:///"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise ValueError(
            f"malformed SQLite store URL {url!r}: expected sqlite:///relative/path.db or sqlite:////absolute/path.db"
        )
    if "?" in url:
        raise ValueError(f"SQLite store URL {url!r}: pass options as keyword arguments, not a query string")
    return url[len(prefix) :]


def _connect(path: str, timeout: float) -> sqlite3.Connection:
    """Open a connection to ``path`` (the one place the store connects: tests replace it)."""
    return sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)


class _Database:
    """The connection and every statement; each method runs with ``txn_lock`` held by the caller."""

    def __init__(self, path: str, busy_timeout: float, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self.clock = clock
        self.conn: sqlite3.Connection | None = None
        self.closed = False
        # Why the file could not be opened yet (locked, read-only, not a ledger...), and when to try again.
        self.open_error: StoreError | None = None
        self._retry_at = 0.0
        self._backoff = 0.0
        self._price_ids: dict[str, int] = {}  # price JSON -> committed prices.id (ids never change)
        self._new_price_ids: dict[str, int] = {}  # ids added by the open transaction
        self._days: dict[int, str] = {}  # days since the epoch -> ISO date
        self._metadata_cache: dict[str, tuple[str, tuple[str, ...]]] = {}  # metadata JSON -> user and tag groups
        self.try_open()

    def try_open(self) -> bool:
        """Open the file (creating or upgrading the schema); on failure remember why and when to try again.

        Never raises: a store that cannot open its file yet (locked by another process, read-only, its folder
        missing) is a store that is down: events are queued, reads raise ``StoreError``, and opening is tried
        again on the next use (at most every 2 s).
        """
        try:
            self.conn = self._open()
        except StoreError as exc:
            first = self.open_error is None
            self.open_error = exc
            self._backoff = min(2.0, self._backoff * 2 or 0.05)
            self._retry_at = time.monotonic() + self._backoff
            if first:
                logger.warning("%s; events are queued and written once it opens", exc)
            return False
        if self.open_error is not None:
            logger.warning("sqlite store: opened %s", self.path)
        self.open_error = None
        self._backoff = 0.0
        return True

    def _open(self) -> sqlite3.Connection:
        path = self.path
        # Opening waits at most 0.5 s for another process's lock (a constructor must not stall its host).
        open_wait = min(self.busy_timeout, 0.5)
        try:
            parent = os.path.dirname(os.path.abspath(path))
            if path != ":memory:" and not os.path.isdir(parent):
                os.makedirs(parent, exist_ok=True)
            conn = _connect(path, open_wait)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"sqlite store: cannot open {path}: {exc}") from exc
        try:
            # For a new file (no effect on one that exists): 16 KiB pages write rows 5% faster than 4 KiB ones.
            conn.execute("PRAGMA page_size = 16384")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal" and path != ":memory:":
                raise StoreError(f"sqlite store: cannot open {path}: it cannot use WAL journaling (got {mode!r})")
            conn.execute("PRAGMA synchronous = NORMAL")
            if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                create_or_upgrade(conn, path, self.build_groups)
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        except StoreError:
            conn.close()
            raise
        except sqlite3.Error as exc:
            conn.close()
            raise StoreError(f"sqlite store: cannot open {path}: {self.describe(exc)}") from exc
        return conn

    def describe(self, exc: sqlite3.Error) -> str:
        """Say what went wrong in words a user can act on."""
        text = str(exc)
        if "locked" in text or "busy" in text:
            return (
                f"{text} (another connection held a write lock on {self.path} for longer than "
                f"busy_timeout={self.busy_timeout:g} s)"
            )
        if "readonly" in text or "read-only" in text:
            return f"{text} (no write permission on {self.path} or its directory)"
        if "not a database" in text or "malformed" in text:
            return f"{text} ({self.path} is not a tokencost SQLite ledger, or it is damaged)"
        return text

    def _conn(self) -> sqlite3.Connection:
        conn = self.conn
        if conn is not None:
            return conn
        if self.closed:
            raise StoreError(f"sqlite store {self.path} is closed")
        if time.monotonic() < self._retry_at or not self.try_open():
            raise StoreError(f"sqlite store {self.path} is not open: {self.open_error}")
        assert self.conn is not None
        return self.conn

    def write(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``fn`` in one ``BEGIN IMMEDIATE`` transaction; sqlite errors become ``StoreError``."""
        conn = self._conn()
        self._new_price_ids = {}
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except (sqlite3.IntegrityError, sqlite3.DataError, sqlite3.InterfaceError, sqlite3.ProgrammingError):
            raise  # the data's fault, not the file's: a batch is then written in parts around the bad event
        except sqlite3.Error as exc:
            if "readonly" in str(exc):
                # SQLite opened the file read-only (no write permission then): open it again on the next use, so
                # writes go through once it is writable.
                self.conn = None
                self._retry_at = 0.0
                conn.close()
            raise StoreError(f"sqlite store {self.path}: {self.describe(exc)}") from exc
        # Only ids of committed rows may be remembered: a rolled back id could be reused for another price.
        self._price_ids.update(self._new_price_ids)
        return result

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Run one query and return its rows."""
        conn = self._conn()
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite store {self.path}: {self.describe(exc)}") from exc

    # -- statements --------------------------------------------------------------------------------------------
    def write_batch(self, batch: Batch) -> dict[tuple[str, str], tuple[int, int]]:
        """Write a batch of events, their charges and totals, and drop their reservations, in one transaction."""
        return self.write(lambda conn: self.write_rows(conn, batch))

    def write_rows(self, conn: sqlite3.Connection, batch: Batch) -> dict[tuple[str, str], tuple[int, int]]:
        """Write a batch within the caller's transaction; return the charged counters' new values.

        Also adds the batch to its ledgers' totals and groups: summed by kind (events sharing every group key, of
        which a batch has few) as the rows are built, then each kind is spread over its groups.
        """
        price_ids = self._price_ids
        rows: list[tuple[Any, ...]] = []
        append = rows.append
        last_price: Price | None = None
        price_id: int | None = None
        # (ledger, model, provider, status, price_source, day, metadata JSON) -> Totals sums
        kinds: dict[tuple[Any, ...], list[int]] = {}
        metadata_of: dict[str, Mapping[str, Any]] = {}  # metadata JSON -> the metadata of one event
        day = ""
        day_lo, day_hi = 1.0, 0.0  # timestamps in [day_lo, day_hi) fall on ``day``
        for ledger, event, _, _ in batch.items:
            price = event.price
            if price is not last_price:
                last_price = price
                if price is None:
                    price_id = None
                else:
                    text = price_to_json(price)
                    price_id = price_ids.get(text)
                    if price_id is None:
                        price_id = self.price_id(conn, text)
            usage = event.usage
            input_ = usage.input
            cache_read = usage.cache_read
            cache_write = usage.cache_write
            write_1h = usage.cache_write_1h
            read_audio = usage.cache_read_audio
            output = usage.output
            reasoning = usage.reasoning
            cost = event.cost_units
            saved = event.saved_units
            ts = event.timestamp
            metadata = event.metadata
            breakdown = event.breakdown
            model = event.model
            provider = event.provider
            status = event.status
            source = event.price_source
            text = metadata_to_json(metadata) if metadata else "{}"
            if not day_lo <= ts < day_hi:
                day, day_lo, day_hi = self._day(conn, ts)
            append(
                (
                    ledger,
                    event.call_id,
                    ts,
                    model,
                    provider,
                    cost,
                    saved,
                    input_,
                    cache_read,
                    cache_write,
                    output,
                    reasoning,
                    usage.audio_in,
                    usage.audio_out,
                    usage.image,
                    source,
                    price_id,
                    None if breakdown is None else encode_json(dict(breakdown)),
                    text,
                    status,
                    event.reason,
                    write_1h,
                    usage.web_search_requests,
                    usage.service_tier,
                    usage.inference_geo,
                    read_audio,
                )
            )
            kind = (ledger, model, provider, status, source, day, text)
            sums = kinds.get(kind)
            if sums is None:
                if text not in metadata_of:
                    metadata_of[text] = metadata
                kinds[kind] = [
                    1,
                    0 if cost is None else cost,
                    1 if cost is None else 0,
                    saved,
                    input_,
                    cache_read + read_audio,
                    cache_write + write_1h,
                    output,
                    reasoning,
                ]
            else:
                sums[0] += 1
                if cost is None:
                    sums[2] += 1
                else:
                    sums[1] += cost
                sums[3] += saved
                sums[4] += input_
                sums[5] += cache_read + read_audio
                sums[6] += cache_write + write_1h
                sums[7] += output
                sums[8] += reasoning
        covered = conn.execute(COVERED).fetchone()[0]
        conn.executemany(INSERT_EVENT, rows)
        self._add_spans(conn, rows, {kind[0] for kind in kinds}, covered)
        # Fold the kinds by what decides their user and tag groups and by what decides the others first: two
        # additions a kind instead of one per group.
        by_metadata: dict[tuple[str, str], list[int]] = {}
        by_rest: dict[tuple[str, ...], list[int]] = {}
        for (ledger, model, provider, status, source, day, text), sums in kinds.items():
            add_sums(by_metadata, (ledger, text), sums)
            add_sums(by_rest, (ledger, model, provider, status, source or NONE_KEY, day), sums)
        totals: dict[str, list[int]] = {}
        groups: dict[tuple[str, str, str], list[int]] = {}
        for (ledger, model, provider, status, source, day), sums in by_rest.items():
            add_sums(totals, ledger, sums)
            add_sums(groups, (ledger, "model", model), sums)
            add_sums(groups, (ledger, "provider", provider), sums)
            add_sums(groups, (ledger, "day", day), sums)
            add_sums(groups, (ledger, "status", status), sums)
            add_sums(groups, (ledger, "price_source", source), sums)
        for (ledger, text), sums in by_metadata.items():
            user, tags = self._metadata_keys(conn, text, metadata_of[text])
            add_sums(groups, (ledger, "user", user), sums)
            for tag in tags:
                add_sums(groups, (ledger, "tag", tag), sums)
        conn.executemany(ADD_TOTALS, [(ledger, *split_sums(sums)) for ledger, sums in totals.items()])
        conn.executemany(ADD_GROUP, [(*key, *split_sums(sums)) for key, sums in groups.items()])
        if batch.drops:
            conn.executemany("DELETE FROM reservations WHERE ledger = ? AND id = ?", list(batch.drops))
        return self.charge(conn, [(led, key, u, t) for (led, key), (u, t) in batch.charges.items()])

    @staticmethod
    def _add_spans(conn: sqlite3.Connection, rows: Sequence[tuple[Any, ...]], ledgers: set[str], covered: int) -> None:
        """Add the spans of ``rows``, just inserted after the events spans covered up to seq ``covered``."""
        newest = conn.execute("SELECT max(seq) FROM events").fetchone()[0]
        if len(ledgers) == 1 and newest - len(rows) == covered:
            # The usual batch: one ledger, right after the last span (its rows got seq covered + 1 ... newest).
            times = [row[2] for row in rows]
            try:
                span = (*ledgers, covered + 1, newest, min(times), max(times))
            except TypeError:  # a timestamp that is not a number: let SQLite order the values
                pass
            else:
                conn.execute(ADD_SPAN, span)
                return
        conn.execute(ADD_SPANS, (covered,))

    def _metadata_keys(
        self, conn: sqlite3.Connection, text: str, metadata: Mapping[str, Any] | None
    ) -> tuple[str, tuple[str, ...]]:
        """Return the user group and tag groups of metadata JSON ``text`` as aggregate()'s SQL finds them.

        Worked out from ``metadata`` (``text`` decoded when None) when ``text`` is its JSON as it is (not through
        ``plain_json``) and its user and tags are plain values (str, int, bool, None; tags a list of str); asked
        of that SQL otherwise, so the groups always agree with it.
        """
        keys = self._metadata_cache.get(text)
        if keys is not None:
            return keys
        if metadata is None:
            try:
                metadata = json.loads(text)
            except ValueError:
                metadata = None  # asked of the SQL below
        user: str | None = None
        tags: tuple[str, ...] | None = None
        if type(metadata) is dict and (not metadata or _encodes_as(metadata, text)):
            value = metadata.get("user")
            if value is None:
                user = NONE_KEY
            elif type(value) is str:
                user = value if "\x00" not in value else None
            else:
                user = _plain_user(value)
            value = metadata.get("tags")
            if value is None or type(value) is str or type(value) is dict:
                tags = NO_TAGS  # not a JSON array
            elif (type(value) is list or type(value) is tuple) and all(
                type(tag) is str and "\x00" not in tag for tag in value
            ):
                tags = tuple(dict.fromkeys(value)) or NO_TAGS
        if user is None:
            user = conn.execute(USER_SQL, (text,)).fetchone()[0]
        if tags is None:
            tags = tuple(NONE_KEY if tag is None else tag for (tag,) in conn.execute(TAGS_SQL, (text,))) or NO_TAGS
        if len(self._metadata_cache) >= CODEC_CACHE_SIZE:
            self._metadata_cache.clear()
        keys = self._metadata_cache[text] = (user, tags)
        return keys

    def _day(self, conn: sqlite3.Connection, ts: float) -> tuple[str, float, float]:
        """Return the UTC day of ``ts`` as SQLite's ``date(ts, 'unixepoch')`` has it, and the span it covers.

        SQLite rounds to the millisecond first, so within a millisecond of midnight it decides (and ``ts`` outside
        0001-9999, or not a number); elsewhere the day is the floor of ``ts / 86400``.
        """
        if isinstance(ts, (float, int)) and 0.0 <= ts < _LAST_DAY_S:
            number, rest = divmod(ts, _DAY_S)
            if 0.001 <= rest < _DAY_S - 0.001:
                key = self._days.get(int(number))
                if key is None:
                    if len(self._days) >= CODEC_CACHE_SIZE:
                        self._days.clear()
                    key = self._days[int(number)] = dt.date.fromordinal(_EPOCH_ORDINAL + int(number)).isoformat()
                start = number * _DAY_S
                return key, start + 0.001, start + _DAY_S - 0.001
        return str(conn.execute("SELECT date(?, 'unixepoch')", (ts,)).fetchone()[0]), 1.0, 0.0

    def build_groups(self, conn: sqlite3.Connection, ledger: str | None) -> None:
        """Sum the groups table afresh from the events of ``ledger`` (of every ledger when None).

        One pass: SQL sums the events by kind (about 3 s for a million events), the kinds are spread over their
        groups here as ``write_rows`` does.
        """
        only, params = ("WHERE e.ledger = ?", (ledger,)) if ledger is not None else ("", ())
        conn.execute(f"DELETE FROM groups {only.replace('e.', '')}", params)
        kinds = conn.execute(
            f"SELECT e.ledger, e.model, e.provider, e.status, {KEY_SQL['price_source']}, {KEY_SQL['day']},"
            f" e.metadata, {SUMS_SQL} FROM events AS e {only} GROUP BY 1, 2, 3, 4, 5, 6, 7",
            params,
        )
        groups: dict[tuple[str, str, str], list[int]] = {}
        for led, model, provider, status, source, day, text, *sums in kinds.fetchall():
            user, tags = self._metadata_keys(conn, text, None)
            for dim, key in (
                ("model", model),
                ("provider", provider),
                ("user", user),
                ("day", day),
                ("status", status),
                ("price_source", source),
                *(("tag", tag) for tag in tags),
            ):
                add_sums(groups, (led, dim, key), sums)
        conn.executemany(ADD_GROUP, [(*key, *sums) for key, sums in groups.items()])

    def price_id(self, conn: sqlite3.Connection, text: str) -> int:
        """Return the id of a price's JSON, adding it to the prices table when new (inside a transaction)."""
        price_id = self._price_ids.get(text) or self._new_price_ids.get(text)
        if price_id is None:
            conn.execute("INSERT OR IGNORE INTO prices (json) VALUES (?)", (text,))
            price_id = conn.execute("SELECT id FROM prices WHERE json = ?", (text,)).fetchone()[0]
            self._new_price_ids[text] = price_id
        return price_id

    @staticmethod
    def charge(
        conn: sqlite3.Connection, charges: Sequence[tuple[str, str, int, int]]
    ) -> dict[tuple[str, str], tuple[int, int]]:
        """Add ``(ledger, key, units, tokens)`` to counters (inside a transaction); return their new values."""
        out: dict[tuple[str, str], tuple[int, int]] = {}
        if charges:
            conn.executemany(
                UPSERT_COUNTER, [(ledger, key, *split_units(units), tokens) for ledger, key, units, tokens in charges]
            )
            for ledger, key, _, _ in charges:
                units, micro, tokens = conn.execute(
                    "SELECT units, units_m, tokens FROM counters WHERE ledger = ? AND key = ?", (ledger, key)
                ).fetchone()
                out[ledger, key] = (micro * MICRO + units, tokens)
        return out

    def fetch_counters(self, ledger: str, keys: Sequence[str]) -> dict[str, tuple[int, int]]:
        """Return the committed ``(units, tokens)`` of ``keys``."""
        out = dict.fromkeys(keys, (0, 0))
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            for key, units, micro, tokens in self.read(
                f"SELECT key, units, units_m, tokens FROM counters WHERE ledger = ? AND key IN ({marks})",
                (ledger, *chunk),
            ):
                out[key] = (micro * MICRO + units, tokens)
        return out

    def reserved(self, ledger: str, keys: Sequence[str], skip: set[str]) -> dict[str, tuple[int, int]]:
        """Return the units and tokens live reservations hold on each of ``keys``, leaving out ids in ``skip``."""
        held: dict[str, list[int]] = {}
        now = self.clock()
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            for key, units, micro, tokens in self.read(
                "SELECT j.value, SUM(r.units), SUM(r.units_m), SUM(r.tokens)"
                " FROM reservations AS r, json_each(r.keys) AS j"
                f" WHERE r.ledger = ? AND r.expires_at >= ? AND j.value IN ({', '.join('?' * len(chunk))})"
                " GROUP BY j.value",
                (ledger, now, *chunk),
            ):
                held[key] = [micro * MICRO + units, tokens]
        # Reservations that queued events will drop no longer hold anything (few: this process's queue).
        ids = sorted(skip)
        for start in range(0, len(ids) if held else 0, 500):
            chunk = ids[start : start + 500]
            for keys_json, units, micro, tokens in self.read(
                "SELECT keys, units, units_m, tokens FROM reservations"
                f" WHERE ledger = ? AND expires_at >= ? AND id IN ({', '.join('?' * len(chunk))})",
                (ledger, now, *chunk),
            ):
                for key in dict.fromkeys(json.loads(keys_json)):
                    if key in held:
                        held[key][0] -= micro * MICRO + units
                        held[key][1] -= tokens
        return {key: (units, tokens) for key, (units, tokens) in held.items()}

    def groups(self, ledger: str, dim: str) -> list[Any] | None:
        """Return ``(key, *sums)`` of each group of ``dim`` from the groups table, or None when it cannot be trusted.

        The model groups must add up to the totals (every event has one model). They do not when a tokencost
        without the groups table (schema 1), which had the file open when it was upgraded, wrote events since:
        then the groups of the ledger are summed again from the events, or None is returned when that fails.
        """
        conn = self._conn()
        sql = f"SELECT key, {GROUP_COLUMNS} FROM groups WHERE ledger = ? AND dim = ?"
        try:
            conn.execute("BEGIN")  # one snapshot for the groups and the totals
            try:
                rows = conn.execute(sql, (ledger, dim)).fetchall()
                models = rows if dim == "model" else conn.execute(sql, (ledger, "model")).fetchall()
                totals = (
                    conn.execute(f"SELECT {GROUP_COLUMNS} FROM totals WHERE ledger = ?", (ledger,)).fetchone()
                    or (0,) * N_SUMS
                )
            finally:
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite store {self.path}: {self.describe(exc)}") from exc
        sums = [sum(column) for column in zip(*(row[1:] for row in models), strict=True)] or [0] * N_SUMS
        if join_sums(sums) == join_sums(totals):
            return rows
        logger.warning(
            "sqlite store %s: the groups of ledger %r do not add up to its totals (a tokencost older than schema "
            "%d wrote to it?); summing them again from the events",
            self.path,
            ledger,
            SCHEMA_VERSION,
        )
        try:
            self.write(lambda conn: self.build_groups(conn, ledger))
        except StoreError as exc:
            logger.warning("sqlite store %s: could not sum the groups again: %s", self.path, exc)
            return None
        return self.read(sql, (ledger, dim))

    def close(self) -> None:
        """Close the connection."""
        self.closed = True
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.close()


def _decode_row(row: Sequence[Any]) -> Event:
    seq, call_id, ts, model, provider, cost, saved = row[:7]
    input_, cache_read, cache_write, output, reasoning, audio_in, audio_out, image = row[7:15]
    price_source, price_json, breakdown, metadata, status, reason, write_1h, searches, tier, geo, read_audio = row[15:]
    return Event(
        call_id=call_id or f"event-{seq}",
        timestamp=ts,
        model=model,
        provider=provider,
        usage=Usage(
            input_,
            cache_read,
            cache_write,
            output,
            reasoning,
            audio_in,
            audio_out,
            image,
            write_1h,
            read_audio,
            searches,
            tier,
            geo,
        ),
        cost_units=cost,
        price_source=price_source,
        price=None if price_json is None else price_from_json(price_json),
        saved_units=saved,
        metadata=json.loads(metadata),
        status=status,
        reason=reason,
        breakdown=None if breakdown is None else json.loads(breakdown),
    )


def _close_quietly(batcher: WriteBehind, db: _Database) -> None:
    # Runs at interpreter exit or when the store is garbage-collected without close().
    try:
        batcher.close()
    except BaseException as exc:  # nobody to raise to at exit
        logger.error("sqlite store %s: %d queued events could not be written: %s", db.path, batcher.pending(), exc)
    finally:
        db.close()


class SQLiteStore(Store):
    """The ledger in a SQLite file: survives restarts, shared by the processes of one host. Thread-safe.

    Example::

        store = SQLiteStore("sqlite:///var/lib/app/costs.db")

    Args:
        url: ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` (missing folders are created).
        batch_size: write a batch when this many events are queued.
        max_delay: write a batch at most this many seconds after its first event was queued.
        max_queue: events kept queued while writes fail (more are dropped and logged).
        busy_timeout: seconds to wait for another process's write lock before failing.
        timeout: seconds one read, write or ``reserve()`` may wait for the file (replaces ``busy_timeout``).
        clock: seconds since the epoch, for reservation times (default ``time.time``).

    Opening never raises for a file that is locked, read-only, damaged or not there yet: the store is down until
    it opens (events are queued, reads raise ``StoreError``), and opening is tried again on the next use.

    Raises:
        ValueError: for a malformed URL or option.
    """

    scheme = "sqlite"
    WRAPPED_METHODS = QUEUED_STORE_WRAPPED

    def __init__(
        self,
        url: str,
        *,
        batch_size: int = 2000,
        max_delay: float = 0.05,
        max_queue: int = 20_000,
        busy_timeout: float = 5.0,
        timeout: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(url)
        self.path = _path_from_url(url)
        if timeout is not None:
            if not timeout > 0:
                raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
            busy_timeout = timeout
        self._clock = clock
        self._db = _Database(self.path, busy_timeout, clock)
        self._batcher = WriteBehind(
            "sqlite",
            self._db.write_batch,
            self._db.fetch_counters,
            batch_size=batch_size,
            max_delay=max_delay,
            max_queue=max_queue,
        )
        self._finalizer = weakref.finalize(self, _close_quietly, self._batcher, self._db)

    def __repr__(self) -> str:
        return f"SQLiteStore({self.url!r})"

    # -- writes -------------------------------------------------------------------------------------------
    def record(
        self, ledger: str, event: Event, charges: Sequence[str] = (), reservation: str | None = None
    ) -> dict[str, tuple[int, int]]:
        # tuple.__new__ skips NamedTuple's Python-level constructor: this is the hot path.
        item = tuple.__new__(
            Queued,
            (ledger, plausible_event(event), charges if type(charges) is tuple else tuple(charges), reservation),
        )
        return self._batcher.add(item)

    def reserve(
        self, ledger: str, reservation: str, checks: Sequence[Check], cost_units: int, tokens: int, ttl: float
    ) -> Check | None:
        keys = list(dict.fromkeys(check.key for check in checks))  # a counter checked twice is held once
        batcher = self._batcher
        db = self._db

        def run(conn: sqlite3.Connection) -> tuple[Check | None, dict[tuple[str, str], tuple[int, int]]]:
            # This process's queued events are written first, in the same transaction: their charges count.
            written = db.write_rows(conn, batch) if batch is not None else {}
            now = self._clock()
            conn.execute(
                "DELETE FROM reservations WHERE ledger = ? AND (expires_at < ? OR id = ?)", (ledger, now, reservation)
            )
            spent = db.fetch_counters(ledger, keys)
            # Events queued by other threads since: their charges count, their reservations are theirs to drop.
            queued = batcher.queued_charges(ledger, keys, besides=batch)
            held = db.reserved(ledger, keys, batcher.queued_drops(ledger, besides=batch))
            charged = {key: (spent[key][0] + queued[key][0], spent[key][1] + queued[key][1]) for key in keys}
            misfit = first_misfit(checks, charged, held, cost_units, tokens)
            if misfit is not None:
                return misfit, written
            rest, micro = split_units(cost_units)
            conn.execute(
                "INSERT INTO reservations (ledger, id, keys, units, units_m, tokens, created_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (ledger, reservation, json.dumps(keys), rest, micro, tokens, now, now + ttl),
            )
            return None, written

        with batcher.txn_lock:
            batch = batcher.take()
            try:
                result, written = db.write(run)
            except BaseException as exc:
                if batch is None or not batcher.recover(batch, exc):
                    raise
                batch = None  # written in parts; now the reservation alone
                result, written = db.write(run)
            if batch is not None:
                batcher.written(written)
            return result

    def release(self, ledger: str, reservation: str) -> None:
        with self._batcher.txn_lock:
            self._db.write(
                lambda conn: conn.execute("DELETE FROM reservations WHERE ledger = ? AND id = ?", (ledger, reservation))
            )

    def reservations(self, ledger: str) -> list[Reservation]:
        from tokencost.stores.reservation import Reservation  # built on first listing

        with self._batcher.txn_lock:
            rows = self._db.read(
                "SELECT id, keys, units, units_m, tokens, created_at, expires_at FROM reservations"
                " WHERE ledger = ? AND expires_at >= ? ORDER BY created_at, id",
                (ledger, self._clock()),
            )
            drops = self._batcher.queued_drops(ledger)
        return [
            Reservation(rid, tuple(json.loads(keys)), micro * MICRO + units, tokens, created, expires)
            for rid, keys, units, micro, tokens, created, expires in rows
            if rid not in drops
        ]

    def release_stale(self, ledger: str, older_than: float) -> int:
        now = self._clock()

        def run(conn: sqlite3.Connection) -> int:
            cursor = conn.execute(
                "DELETE FROM reservations WHERE ledger = ? AND created_at < ? AND expires_at >= ?",
                (ledger, now - older_than, now),
            )
            return cursor.rowcount

        with self._batcher.txn_lock:
            return self._db.write(run)

    def update_cost(
        self, ledger: str, call_id: str, cost_units: int, price: Price, charges: Sequence[str] = ()
    ) -> bool:
        if not 0 <= cost_units <= MAX_EVENT_UNITS:
            return False  # an amount no event can have is never written as money
        price_json = price_to_json(price)

        def run(conn: sqlite3.Connection) -> dict[tuple[str, str], tuple[int, int]] | None:
            row = conn.execute(
                "SELECT e.seq, e.cost, e.saved, e.input, e.cache_read, e.cache_write, e.output, e.reasoning,"
                " e.audio_in, e.audio_out, e.image, e.cache_write_1h, e.cache_read_audio, e.metadata,"
                f" {', '.join(KEY_SQL[dim] for dim in MOVED_DIMENSIONS)}"
                " FROM events AS e WHERE e.ledger = ? AND e.call_id = ? AND e.cost IS NULL ORDER BY e.seq DESC LIMIT 1",
                (ledger, call_id),
            ).fetchone()
            if row is None:
                return None
            seq, _, old_saved, *buckets = row[:13]
            metadata, *keys = row[13:]
            saved = price.saved_units(Usage(*buckets)) or old_saved
            price_id = self._db.price_id(conn, price_json)
            conn.execute(
                "UPDATE events SET cost = ?, saved = ?, price_source = ?, status = 'ok', reason = NULL, price_id = ?"
                " WHERE seq = ?",
                (cost_units, saved, price.source, price_id, seq),
            )
            cost_rest, cost_micro = split_units(cost_units)
            saved_rest, saved_micro = split_units(saved - old_saved)
            conn.execute(
                "UPDATE totals SET cost = cost + ?, cost_m = cost_m + ?, unpriced = unpriced - 1, saved = saved + ?,"
                " saved_m = saved_m + ? WHERE ledger = ?",
                (cost_rest, cost_micro, saved_rest, saved_micro, ledger),
            )
            # The event leaves its groups as it was and joins them as it is now (status and price_source change).
            tokens = buckets[:5]
            tokens[1] += buckets[9]  # the totals' cache reads are of text and audio
            tokens[2] += buckets[8]  # the totals' cache writes are of both TTLs
            tag_rows = conn.execute(TAGS_SQL, (metadata,)).fetchall()
            tags = [("tag", NONE_KEY if tag is None else tag) for (tag,) in tag_rows] or [("tag", NONE_KEY)]
            source = price.source or NONE_KEY
            new_keys = {"status": "ok", "price_source": source}
            before = [(ledger, dim, key) for dim, key in [*zip(MOVED_DIMENSIONS, keys, strict=True), *tags]]
            after = [(ledger, dim, new_keys.get(dim, key)) for _, dim, key in before]
            moves = repricing_moves(
                before, after, unpriced_sums(old_saved, tokens), repriced_sums(cost_units, saved, tokens)
            )
            conn.executemany(ADD_GROUP, [(*key, *split_sums(sums)) for key, sums in moves.items()])
            conn.executemany(
                "DELETE FROM groups WHERE ledger = ? AND dim = ? AND key = ? AND requests = 0", list(moves)
            )
            return self._db.charge(conn, [(ledger, key, cost_units, 0) for key in dict.fromkeys(charges)])

        with self._batcher.txn_lock:
            self._batcher.drain_locked()
            values = self._db.write(run)
            if values is None:
                return False
            self._batcher.set_committed(values)
            return True

    def reset(self, ledger: str) -> None:
        def run(conn: sqlite3.Connection) -> None:
            for table in ("events", "spans", "totals", "groups", "counters", "reservations"):
                conn.execute(f"DELETE FROM {table} WHERE ledger = ?", (ledger,))

        with self._batcher.txn_lock:
            self._batcher.forget(ledger)
            self._db.write(run)

    def set_meta(self, ledger: str, key: str, value: str) -> None:
        with self._batcher.txn_lock:
            self._db.write(
                lambda conn: conn.execute(
                    "INSERT INTO meta (ledger, key, value) VALUES (?, ?, ?)"
                    " ON CONFLICT (ledger, key) DO UPDATE SET value = excluded.value",
                    (ledger, key, value),
                )
            )

    def get_meta(self, ledger: str, key: str) -> str | None:
        with self._batcher.txn_lock:
            rows = self._db.read("SELECT value FROM meta WHERE ledger = ? AND key = ?", (ledger, key))
        return rows[0][0] if rows else None

    def ledgers(self) -> list[str] | None:
        with self._batcher.txn_lock:
            self._batcher.drain_locked()
            rows = self._db.read(
                "SELECT ledger FROM totals WHERE requests > 0 UNION SELECT ledger FROM meta"
                " UNION SELECT ledger FROM reservations UNION SELECT ledger FROM counters"
            )
        return sorted(str(name) for (name,) in rows)

    def flush(self, timeout: float | None = None) -> bool:
        return self._batcher.flush(timeout)

    def close(self) -> None:
        """Write what is queued and close the file.

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
            raise StoreError(f"sqlite store {self.path}: close failed: {exc}") from exc
        finally:
            self._db.close()

    # -- reads --------------------------------------------------------------------------------------------
    def counters(self, ledger: str, keys: Sequence[str]) -> dict[str, tuple[int, int, int]]:
        keys = list(dict.fromkeys(keys))
        with self._batcher.txn_lock:
            committed = self._db.fetch_counters(ledger, keys)
            held = self._db.reserved(ledger, keys, self._batcher.queued_drops(ledger))
            queued = self._batcher.queued_charges(ledger, keys)
        out: dict[str, tuple[int, int, int]] = {}
        for key in keys:
            units, tokens = committed[key]
            q_units, q_tokens = queued[key]
            out[key] = (units + q_units, tokens + q_tokens, held.get(key, (0, 0))[0])
        return out

    def totals(self, ledger: str) -> Totals:
        with self._batcher.txn_lock:
            rows = self._db.read(f"SELECT {GROUP_COLUMNS} FROM totals WHERE ledger = ?", (ledger,))
            queued = self._batcher.queued_totals(ledger)
        committed = join_sums(rows[0]) if rows else [0] * len(queued)
        return Totals.from_sums([a + b for a, b in zip(committed, queued, strict=True)])

    def aggregate(self, ledger: str, by: str, since: float | None = None, until: float | None = None) -> list[Group]:
        if since is None and until is None and by in DIMENSIONS:
            with self._batcher.txn_lock:
                self._batcher.drain_locked()
                rows = self._db.groups(ledger, by)
            if rows is not None:
                return self._groups(rows)
        with self._batcher.txn_lock:
            self._batcher.drain_locked()
            where, params = self._where(ledger, since, until, None)
            if by == "tag":
                sql = (
                    f"SELECT COALESCE(t.k, '{NONE_KEY}') AS g, {SUMS_SQL} FROM events AS e LEFT JOIN ("
                    "SELECT DISTINCT e.seq AS seq, CAST(j.value AS TEXT) AS k FROM events AS e,"
                    f" json_each(e.metadata, '$.tags') AS j {where} AND json_type(e.metadata, '$.tags') = 'array'"
                    f") AS t ON t.seq = e.seq {where} GROUP BY g"
                )
                params = [*params, *params]
            elif by in GROUP_SQL:
                sql = f"SELECT {GROUP_SQL[by]} AS g, {SUMS_SQL} FROM events AS e {where} GROUP BY g"
            else:
                group = f"COALESCE({METADATA_GROUP}, '{NONE_KEY}')"
                sql = f"SELECT {group} AS g, {SUMS_SQL} FROM events AS e {where} GROUP BY g"
                params = [by, *params]
            rows = self._db.read(sql, params)
        return self._groups(rows)

    @staticmethod
    def _groups(rows: Iterable[Sequence[Any]]) -> list[Group]:
        return ranked_groups((str(row[0]), join_sums(row[1:])) for row in rows)

    def _where(self, ledger: str, since: float | None, until: float | None, model: str | None) -> tuple[str, list[Any]]:
        """Return the WHERE clause (alias ``e``) of a read, narrowed to the seq range of the spans it touches.

        With txn_lock held and the queue drained (every event this process recorded has its span).
        """
        spans = "SELECT min(first_seq), max(last_seq) FROM spans WHERE ledger = ?"
        clauses = ["e.ledger = ?"]
        params: list[Any] = [ledger]
        if since is not None:
            spans += " AND max_ts >= ?"
            clauses.append("e.ts >= ?")
            params.append(since)
        if until is not None:
            spans += " AND min_ts < ?"
            clauses.append("e.ts < ?")
            params.append(until)
        ((first, last, covered, newest),) = self._db.read(spans.replace(" FROM spans", NEWEST, 1), params)
        if newest > covered:  # events an older tokencost wrote since the last span: scan them too
            first, last = covered + 1 if first is None else min(first, covered + 1), newest
        clauses.insert(0, "e.seq BETWEEN ? AND ?")
        params[:0] = [0, -1] if first is None else [first, last]
        if model is not None:
            clauses.append("e.model = ?")
            params.append(model)
        return "WHERE " + " AND ".join(clauses), params

    def events(
        self,
        ledger: str,
        since: float | None = None,
        until: float | None = None,
        model: str | None = None,
        limit: int | None = None,
    ) -> list[Event]:
        with self._batcher.txn_lock:
            self._batcher.drain_locked()
            where, params = self._where(ledger, since, until, model)
            sql = f"SELECT {EVENT_COLUMNS} FROM events AS e LEFT JOIN prices AS p ON p.id = e.price_id {where}"
            if limit is not None:
                sql += " ORDER BY e.seq DESC LIMIT ?"
                params.append(max(limit, 0))
            else:
                sql += " ORDER BY e.seq"
            rows = self._db.read(sql, params)
        if limit is not None:
            rows.reverse()
        return [_decode_row(row) for row in rows]

"""The tables of a ``SQLiteStore`` file and the upgrade of an older file (its ``PRAGMA user_version``)."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable

from tokencost.errors import StoreError
from tokencost.stores.sqlite_queries import SPANS_OF_ALL

__all__ = ["ADDED_COLUMNS", "N_SUMS", "SCHEMA", "SCHEMA_VERSION", "create_or_upgrade"]

logger = logging.getLogger("tokencost")

# 1: the first layout. 2: adds the groups table. 3: spans replace the (ledger, ts) index of events. 4: running
# money sums get a micro-dollar column (cost_m, saved_m, units_m: past 2^63 pico-dollars), reservations their
# creation time. 5: events get cache_write_1h, web_search_requests, service_tier and inference_geo. 6: events get
# cache_read_audio (the audio part of the cache reads; cache_read keeps the text part). An older file is upgraded
# when opened.
SCHEMA_VERSION = 6
N_SUMS = 11  # Stored sums: requests, cost, unpriced, saved, five token buckets, cost_m, saved_m (split_sums).
# Columns schemas 4 to 6 added to tables an older file already has (ALTER TABLE ... ADD COLUMN).
ADDED_COLUMNS = (
    ("totals", "cost_m", "INTEGER NOT NULL DEFAULT 0"),
    ("totals", "saved_m", "INTEGER NOT NULL DEFAULT 0"),
    ("groups", "cost_m", "INTEGER NOT NULL DEFAULT 0"),
    ("groups", "saved_m", "INTEGER NOT NULL DEFAULT 0"),
    ("counters", "units_m", "INTEGER NOT NULL DEFAULT 0"),
    ("reservations", "units_m", "INTEGER NOT NULL DEFAULT 0"),
    ("reservations", "created_at", "REAL NOT NULL DEFAULT 0"),
    ("events", "cache_write_1h", "INTEGER NOT NULL DEFAULT 0"),
    ("events", "web_search_requests", "INTEGER NOT NULL DEFAULT 0"),
    ("events", "service_tier", "TEXT"),
    ("events", "inference_geo", "TEXT"),
    ("events", "cache_read_audio", "INTEGER NOT NULL DEFAULT 0"),
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS prices (id INTEGER PRIMARY KEY, json TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    ledger TEXT NOT NULL,
    call_id TEXT NOT NULL,
    ts REAL NOT NULL,
    model TEXT NOT NULL,
    provider TEXT NOT NULL,
    cost INTEGER,
    saved INTEGER NOT NULL,
    input INTEGER NOT NULL,
    cache_read INTEGER NOT NULL,
    cache_write INTEGER NOT NULL,
    output INTEGER NOT NULL,
    reasoning INTEGER NOT NULL,
    audio_in INTEGER NOT NULL,
    audio_out INTEGER NOT NULL,
    image INTEGER NOT NULL,
    price_source TEXT,
    price_id INTEGER REFERENCES prices (id),
    breakdown TEXT,
    metadata TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    cache_write_1h INTEGER NOT NULL DEFAULT 0,
    web_search_requests INTEGER NOT NULL DEFAULT 0,
    service_tier TEXT,
    inference_geo TEXT,
    cache_read_audio INTEGER NOT NULL DEFAULT 0
);
-- The stretch of events (seq range, time range) each batch wrote for each ledger: a block range index, which
-- ledger and time filters narrow a scan with. An index on (ledger, ts) cost 10% of the write speed.
CREATE TABLE IF NOT EXISTS spans (
    ledger TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    min_ts REAL,
    max_ts REAL,
    PRIMARY KEY (ledger, last_seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS spans_last_seq ON spans (last_seq);
-- Only unpriced events are looked up by call id (update_cost): indexing every call id halves write speed.
CREATE INDEX IF NOT EXISTS events_unpriced ON events (ledger, call_id) WHERE cost IS NULL;
CREATE TABLE IF NOT EXISTS totals (
    ledger TEXT PRIMARY KEY,
    requests INTEGER NOT NULL,
    cost INTEGER NOT NULL,
    unpriced INTEGER NOT NULL,
    saved INTEGER NOT NULL,
    input INTEGER NOT NULL,
    cache_read INTEGER NOT NULL,
    cache_write INTEGER NOT NULL,
    output INTEGER NOT NULL,
    reasoning INTEGER NOT NULL,
    cost_m INTEGER NOT NULL DEFAULT 0,
    saved_m INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
-- Running sums of each group of each dimension in DIMENSIONS: aggregate() over the whole history reads these
-- few rows instead of grouping every event. Written in the transactions that write events.
CREATE TABLE IF NOT EXISTS groups (
    ledger TEXT NOT NULL,
    dim TEXT NOT NULL,
    key TEXT NOT NULL,
    requests INTEGER NOT NULL,
    cost INTEGER NOT NULL,
    unpriced INTEGER NOT NULL,
    saved INTEGER NOT NULL,
    input INTEGER NOT NULL,
    cache_read INTEGER NOT NULL,
    cache_write INTEGER NOT NULL,
    output INTEGER NOT NULL,
    reasoning INTEGER NOT NULL,
    cost_m INTEGER NOT NULL DEFAULT 0,
    saved_m INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (ledger, dim, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counters (
    ledger TEXT NOT NULL,
    key TEXT NOT NULL,
    units INTEGER NOT NULL,
    tokens INTEGER NOT NULL,
    units_m INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (ledger, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS reservations (
    ledger TEXT NOT NULL,
    id TEXT NOT NULL,
    keys TEXT NOT NULL,
    units INTEGER NOT NULL,
    tokens INTEGER NOT NULL,
    expires_at REAL NOT NULL,
    units_m INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (ledger, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    ledger TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (ledger, key)
) WITHOUT ROWID;
"""


def create_or_upgrade(
    conn: sqlite3.Connection, path: str, build_groups: Callable[[sqlite3.Connection, str | None], None]
) -> None:
    """Create the tables of a new file, or upgrade an older one to ``SCHEMA_VERSION``, in one transaction.

    ``build_groups(conn, None)`` sums the groups table afresh from the events (a schema 1 file has none).

    Raises:
        StoreError: when the file's schema is newer than this tokencost's.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"sqlite store: {path} has schema version {version}, newer than this tokencost "
                f"({SCHEMA_VERSION}); upgrade tokencost"
            )
        if version < SCHEMA_VERSION:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            for table, column, declaration in ADDED_COLUMNS:
                if column not in {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
            if 1 <= version < 3:
                # An older file has events: sum them once into groups (version 1) and spans (seconds for
                # millions of events, while other processes retry opening the file).
                logger.warning("sqlite store: upgrading %s to schema %d", path, SCHEMA_VERSION)
                started = time.perf_counter()
                if version == 1:
                    build_groups(conn, None)
                conn.execute("DROP INDEX IF EXISTS events_ledger_ts")
                conn.execute("DELETE FROM spans")
                conn.execute(SPANS_OF_ALL)
                logger.info("sqlite store: upgraded %s in %.1f s", path, time.perf_counter() - started)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise

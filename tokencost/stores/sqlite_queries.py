"""The SQL statements of ``SQLiteStore`` (the tables are in ``sqlite_schema``)."""

from __future__ import annotations

from tokencost.stores.base import NONE_KEY

INTO_SPANS = "INSERT OR REPLACE INTO spans (ledger, first_seq, last_seq, min_ts, max_ts)"
SPANS_OF_EVENTS = f"{INTO_SPANS} SELECT ledger, min(seq), max(seq), min(ts), max(ts) FROM events"
# Add spans for the events after seq ? (those of the batch just written, and any an older tokencost wrote).
ADD_SPANS = f"{SPANS_OF_EVENTS} WHERE seq > ? GROUP BY ledger"
# Spans for every event of an older file, one per ledger and stretch of 2,048 seq (as batches would have written).
SPANS_OF_ALL = f"{SPANS_OF_EVENTS} GROUP BY ledger, seq / 2048"
ADD_SPAN = f"{INTO_SPANS} VALUES (?, ?, ?, ?, ?)"
COVERED = "SELECT COALESCE(max(last_seq), 0) FROM spans"
# The seq covered by spans and the newest seq, as columns added to a query of spans.
NEWEST = f", ({COVERED}), (SELECT COALESCE(max(seq), 0) FROM events) FROM spans"
INSERT_EVENT = (
    "INSERT INTO events (ledger, call_id, ts, model, provider, cost, saved, input, cache_read, cache_write, output,"
    " reasoning, audio_in, audio_out, image, price_source, price_id, breakdown, metadata, status, reason,"
    " cache_write_1h, web_search_requests, service_tier, inference_geo, cache_read_audio)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# Add a batch's sums to its ledger's totals.
# Adding sums in SQL: (the money sums' micro-dollar parts too).
ADD_SUMS = (
    " requests = requests + excluded.requests, cost = cost + excluded.cost, unpriced = unpriced + excluded.unpriced,"
    " saved = saved + excluded.saved, input = input + excluded.input,"
    " cache_read = cache_read + excluded.cache_read, cache_write = cache_write + excluded.cache_write,"
    " output = output + excluded.output, reasoning = reasoning + excluded.reasoning,"
    " cost_m = cost_m + excluded.cost_m, saved_m = saved_m + excluded.saved_m"
)
ADD_TOTALS = (
    "INSERT INTO totals (ledger, requests, cost, unpriced, saved, input, cache_read, cache_write, output, reasoning,"
    " cost_m, saved_m) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (ledger) DO UPDATE SET" + ADD_SUMS
)
UPSERT_COUNTER = (
    "INSERT INTO counters (ledger, key, units, units_m, tokens) VALUES (?, ?, ?, ?, ?) ON CONFLICT (ledger, key)"
    " DO UPDATE SET units = units + excluded.units, units_m = units_m + excluded.units_m,"
    " tokens = tokens + excluded.tokens"
)
EVENT_COLUMNS = (
    "e.seq, e.call_id, e.ts, e.model, e.provider, e.cost, e.saved, e.input, e.cache_read, e.cache_write, e.output,"
    " e.reasoning, e.audio_in, e.audio_out, e.image, e.price_source, p.json, e.breakdown, e.metadata, e.status,"
    " e.reason, e.cache_write_1h, e.web_search_requests, e.service_tier, e.inference_geo, e.cache_read_audio"
)
# The stored sums (split_sums' layout) of a group of events: money summed in two parts, so no SUM overflows.
SUMS_SQL = (
    "COUNT(*), COALESCE(SUM(e.cost % 1000000), 0), COUNT(*) - COUNT(e.cost), COALESCE(SUM(e.saved % 1000000), 0),"
    " COALESCE(SUM(e.input), 0), COALESCE(SUM(e.cache_read + e.cache_read_audio), 0),"
    " COALESCE(SUM(e.cache_write + e.cache_write_1h), 0),"
    " COALESCE(SUM(e.output), 0), COALESCE(SUM(e.reasoning), 0),"
    " COALESCE(SUM(e.cost / 1000000), 0), COALESCE(SUM(e.saved / 1000000), 0)"
)
# Group expressions of aggregate(); any other ``by`` is a metadata key (see _metadata_group).
GROUP_SQL = {
    "model": "e.model",
    "provider": "e.provider",
    "status": "e.status",
    "price_source": f"COALESCE(NULLIF(e.price_source, ''), '{NONE_KEY}')",  # no source or "" alike
    "day": "date(e.ts, 'unixepoch')",
}
# A metadata value as memory's str(value) shows it (JSON true/false are Python's True/False).
METADATA_GROUP = (
    "(SELECT CASE j.type WHEN 'true' THEN 'True' WHEN 'false' THEN 'False' WHEN 'null' THEN NULL"
    " ELSE CAST(j.value AS TEXT) END FROM json_each(e.metadata) AS j WHERE j.key = ?)"
)
# The tags of an event's metadata, one row each (duplicates once); no row when "tags" is not a JSON array.
TAGS_SQL = (
    "SELECT DISTINCT CAST(j.value AS TEXT) FROM json_each(?1, '$.tags') AS j WHERE json_type(?1, '$.tags') = 'array'"
)

# Dimensions kept as running group sums (RedisStore keeps the same ones).
DIMENSIONS = ("model", "provider", "user", "tag", "day", "status", "price_source")
GROUP_COLUMNS = "requests, cost, unpriced, saved, input, cache_read, cache_write, output, reasoning, cost_m, saved_m"
# Add stored sums (split_sums' layout) to a group.
ADD_GROUP = (
    f"INSERT INTO groups (ledger, dim, key, {GROUP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (ledger, dim, key) DO UPDATE SET" + ADD_SUMS
)
# The key of each dimension but "tag", as aggregate()'s SQL groups by it (str(None) when that is NULL).
KEY_SQL = {
    **{dim: f"COALESCE({expr}, 'None')" for dim, expr in GROUP_SQL.items()},
    "user": f"COALESCE({METADATA_GROUP.replace('?', repr('user'))}, '{NONE_KEY}')",
}
# The user group of metadata JSON ``?``.
USER_SQL = "SELECT " + KEY_SQL["user"].replace("e.metadata", "?")
NO_TAGS = (NONE_KEY,)  # the tag groups of an event without tags
MOVED_DIMENSIONS = tuple(dim for dim in DIMENSIONS if dim != "tag")  # the dimensions of KEY_SQL

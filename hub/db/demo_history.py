"""Writing a generated booking history (``hub.demo_history``) in bulk, and the reads it needs.

Columns go in with binary COPY built by numpy: each run of rows with the same layout (the
same NULLs, the same text lengths) becomes one structured array whose bytes are the COPY
rows, so a million rows cost a few array operations, not a million Python tuples. The
column types come from the catalogue, so the arrays only have to hold the right values:
ids as (n, 16) uint8, times as ``datetime64``, text as bytes (``S``) arrays, NULL as a
masked entry or NaT. A table with a column numpy cannot encode (``events.keywords``, a
text array) goes through asyncpg's ``copy_records_to_table`` instead.
"""

from __future__ import annotations

import datetime as dt
import struct
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hub.db import Connection, Record

_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
_TRAILER = struct.pack("!h", -1)
_PG_EPOCH_US = int(np.datetime64("2000-01-01T00:00:00", "us").astype(np.int64))
_CHUNK_ROWS = 100_000
_NULL = -1

# Fixed-width types: the big-endian numpy type of their binary COPY value.
_FIXED = {
    "uuid": np.dtype((np.uint8, (16,))),
    "bigint": np.dtype(">i8"),
    "integer": np.dtype(">i4"),
    "smallint": np.dtype(">i2"),
    "boolean": np.dtype("u1"),
    "double precision": np.dtype(">f8"),
    "timestamp with time zone": np.dtype(">i8"),
}

# The order that keeps foreign keys satisfied.
TABLES = ("users", "events", "event_prices", "bookings", "tickets", "hold_log", "payments")


async def column_types(con: Connection, table: str) -> dict[str, str]:
    rows = await con.fetch(
        """SELECT attname, format_type(atttypid, NULL) AS type FROM pg_attribute
            WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped""",
        table,
    )
    return {row["attname"]: row["type"] for row in rows}


def _nulls(column: np.ndarray) -> np.ndarray:
    """Which rows are NULL: masked (a uuid row when any of its bytes is) or NaT."""
    mask: np.ndarray = np.ma.getmaskarray(column)
    if mask.ndim == 2:
        mask = np.asarray(mask.any(axis=1))
    if column.dtype.kind == "M":
        mask = np.asarray(mask | np.isnat(np.ma.getdata(column)))
    return mask


def _values(column: np.ndarray, pg_type: str) -> np.ndarray:
    """The column's values in their binary COPY form (NULL rows hold anything)."""
    data = np.ma.getdata(column)
    if pg_type == "text":
        if data.dtype.kind == "U":
            return np.char.encode(data, "utf-8")
        if data.dtype.kind != "S":
            raise TypeError(f"text needs an S or U array, not {data.dtype}")
        return data
    if pg_type == "uuid":
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 16:
            raise TypeError(f"uuid needs (n, 16) uint8, not {data.dtype} {data.shape}")
        return data
    if pg_type == "timestamp with time zone":
        if data.dtype.kind != "M":
            raise TypeError(f"timestamptz needs datetime64, not {data.dtype}")
        micros = data.astype("datetime64[us]").astype(np.int64) - _PG_EPOCH_US
        return micros.astype(_FIXED[pg_type])
    if pg_type not in _FIXED:
        raise TypeError(f"no binary encoding here for {pg_type}")
    return data.astype(_FIXED[pg_type])


def _layouts(layout: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of ``layout`` (NULL or length per varying field) and each row's
    index among them; by one int64 key per row when the fields fit (far cheaper than
    ``np.unique(axis=0)``)."""
    n, k = layout.shape
    if k == 0:
        return np.zeros((1, 0), np.int64), np.zeros(n, np.int64)
    if k <= 7 and int(layout.max()) < 256:
        key = (layout + 1) @ (257 ** np.arange(k, dtype=np.int64))
        _, first, group = np.unique(key, return_index=True, return_inverse=True)
        return layout[first], group.ravel()
    kinds, group = np.unique(layout, axis=0, return_inverse=True)
    return kinds, group.ravel()


def encode_rows(columns: Sequence[tuple[np.ndarray, np.ndarray, str]]) -> bytes:
    """Binary COPY rows (no header) for ``(values, nulls, pg type)`` columns of equal length.

    Rows are grouped by layout (which fields are NULL, how long each text is), so the
    output holds the same rows in another order.
    """
    n = len(columns[0][0])
    if n == 0:
        return b""
    varying = [i for i, (_, nulls, t) in enumerate(columns) if t == "text" or nulls.any()]
    layout = np.zeros((n, len(varying)), dtype=np.int64)
    for j, i in enumerate(varying):
        values, nulls, pg_type = columns[i]
        size = np.char.str_len(values) if pg_type == "text" else np.zeros(n, np.int64)
        layout[:, j] = np.where(nulls, _NULL, size)
    kinds, group = _layouts(layout)
    order = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[order], np.arange(kinds.shape[0] + 1))
    parts = []
    for k in range(kinds.shape[0]):
        rows = order[bounds[k] : bounds[k + 1]]
        sizes = dict(zip(varying, kinds[k].tolist(), strict=True))
        fields: list[tuple[str, Any]] = [("n", ">i2")]
        for i, (_, _, pg_type) in enumerate(columns):
            size = sizes.get(i, 0)
            fields.append((f"l{i}", ">i4"))
            if pg_type != "text":
                if size != _NULL:
                    fields.append((f"v{i}", _FIXED[pg_type]))
            elif size > 0:
                fields.append((f"v{i}", f"S{size}"))
        block = np.empty(rows.size, dtype=np.dtype(fields))
        block["n"] = len(columns)
        for i, (values, _, pg_type) in enumerate(columns):
            size = sizes.get(i, 0)
            if size == _NULL:
                block[f"l{i}"] = _NULL
                continue
            block[f"l{i}"] = size if pg_type == "text" else _FIXED[pg_type].itemsize
            if pg_type != "text" or size > 0:
                block[f"v{i}"] = values[rows]
        parts.append(block.tobytes())
    return b"".join(parts)


async def copy_columns(con: Connection, table: str, columns: Mapping[str, np.ndarray]) -> int:
    """Insert the rows given as columns (all of one length) into ``table``; return how many."""
    names = list(columns)
    n = len(columns[names[0]])
    if n == 0:
        return 0
    types = await column_types(con, table)
    if any(np.asarray(columns[name]).dtype == object for name in names):
        records = _records(columns, types)
        await con.copy_records_to_table(table, records=records, columns=names)
        return n
    prepared = [
        (_values(columns[name], types[name]), _nulls(columns[name]), types[name]) for name in names
    ]

    async def chunks() -> AsyncIterator[bytes]:
        yield _HEADER
        for lo in range(0, n, _CHUNK_ROWS):
            yield encode_rows([(v[lo : lo + _CHUNK_ROWS], m[lo : lo + _CHUNK_ROWS], t)
                               for v, m, t in prepared])  # fmt: skip
        yield _TRAILER

    await con.copy_to_table(table, source=chunks(), columns=names, format="binary")
    return n


def _records(columns: Mapping[str, np.ndarray], types: Mapping[str, str]) -> list[tuple[Any, ...]]:
    """The columns as Python rows, for the few rows numpy cannot encode."""
    converted = []
    for name, column in columns.items():
        nulls = _nulls(column)
        data = np.ma.getdata(column)
        if types[name] == "uuid":
            values: list[Any] = [uuid.UUID(bytes=row.tobytes()) for row in data]
        elif data.dtype.kind == "M":
            values = [
                dt.datetime.fromtimestamp(int(s), dt.UTC)
                for s in data.astype("datetime64[s]").astype(np.int64)
            ]
        elif data.dtype.kind == "S":
            values = [v.decode() for v in data.tolist()]
        else:
            values = data.tolist()
        converted.append([None if null else v for v, null in zip(values, nulls, strict=True)])
    return list(zip(*converted, strict=True))


@dataclass(frozen=True, slots=True)
class Written:
    """Rows written per table, and seconds per step (each table's COPY, ``keys and
    indexes`` for dropping and making them again)."""

    rows: dict[str, int]
    seconds: dict[str, float]


async def write(
    con: Connection,
    tables: Mapping[str, Mapping[str, np.ndarray]],
    *,
    defer_checks: bool = False,
) -> Written:
    """Insert the history's tables in ``TABLES`` order.

    Run in a transaction. With ``defer_checks`` the tables' foreign keys and secondary
    indexes are dropped first and made again after the rows are in: one validating join
    per key and one sorted build per index instead of a lookup and an index insertion per
    row, with the same guarantees at the end (a unique index such as
    ``tickets_one_active_per_seat`` is built over every row, or the load fails). It locks
    the tables until the transaction ends (others wait: the demo's few seconds at its first
    start, a scratch database's load) and needs the role that owns them (the one that
    migrates).
    """
    rows: dict[str, int] = {}
    seconds: dict[str, float] = {}
    remake: list[str] = []
    started = time.perf_counter()
    if defer_checks:
        await con.execute(f"LOCK TABLE {', '.join(TABLES)} IN ACCESS EXCLUSIVE MODE")
        for row in await con.fetch(_DEFERRABLE, list(TABLES)):
            await con.execute(row["drop_sql"])
            remake.append(row["create_sql"])
    for name in TABLES:
        began = time.perf_counter()
        rows[name] = await copy_columns(con, name, tables[name])
        seconds[name] = time.perf_counter() - began
    for statement in remake:
        await con.execute(statement)
    if defer_checks:
        seconds["keys and indexes"] = time.perf_counter() - started - sum(seconds.values())
    return Written(rows, seconds)


# The foreign keys and the indexes no constraint owns of some tables: how to drop each and
# how to make it again (indexes first, so the keys are validated last).
_DEFERRABLE = """
SELECT format('DROP INDEX %s', i.indexrelid::regclass) AS drop_sql,
       pg_get_indexdef(i.indexrelid) AS create_sql, 0 AS rank
  FROM pg_index i
 WHERE i.indrelid IN (SELECT t::regclass FROM unnest($1::text[]) t)
   AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
UNION ALL
SELECT format('ALTER TABLE %s DROP CONSTRAINT %I', c.conrelid::regclass, c.conname),
       format('ALTER TABLE %s ADD CONSTRAINT %I %s', c.conrelid::regclass, c.conname,
              pg_get_constraintdef(c.oid)), 1
  FROM pg_constraint c
 WHERE c.conrelid IN (SELECT t::regclass FROM unnest($1::text[]) t) AND c.contype = 'f'
 ORDER BY rank, drop_sql
"""


async def open_sales(con: Connection, on_sale: Mapping[str, np.ndarray]) -> None:
    """Date existing events back to the opening of their sales (when earlier): bookings
    made before an event was created would make no sense."""
    ids = [uuid.UUID(bytes=row.tobytes()) for row in on_sale["id"]]
    at = [
        dt.datetime.fromtimestamp(int(s), dt.UTC)
        for s in on_sale["created_at"].astype("datetime64[s]").astype(np.int64)
    ]
    await con.execute(
        """UPDATE events e SET created_at = least(e.created_at, x.at)
             FROM unnest($1::uuid[], $2::timestamptz[]) AS x(id, at) WHERE e.id = x.id""",
        ids,
        at,
    )


async def has_events(con: Connection, venue_id: uuid.UUID) -> bool:
    """Whether the venue has any event (the demo's history venue has none until seeded)."""
    found: bool = await con.fetchval(
        "SELECT EXISTS (SELECT 1 FROM events WHERE venue_id = $1)", venue_id
    )
    return found


async def venue_seats(con: Connection, venue_id: uuid.UUID) -> tuple[list[Record], list[Record]]:
    """The venue's seats in idx order, and its sections in order with their base prices."""
    seats = await con.fetch(
        "SELECT id, section, row_label, distance FROM seats WHERE venue_id = $1 ORDER BY idx",
        venue_id,
    )
    sections = await con.fetch(
        "SELECT name, base_price_cents FROM venue_sections WHERE venue_id = $1 ORDER BY position",
        venue_id,
    )
    return list(seats), list(sections)


async def unsold_events(con: Connection, event_ids: Sequence[uuid.UUID]) -> list[Record]:
    """Those of the events with no booking yet, with what the history needs of them:
    venue, category, start and each section's price, in the venue's section order."""
    return list(
        await con.fetch(
            """SELECT e.id, e.venue_id, e.category, e.starts_at,
                      array_agg(p.base_price_cents ORDER BY vs.position) AS prices
                 FROM events e
                 JOIN venue_sections vs ON vs.venue_id = e.venue_id
                 JOIN event_prices p ON p.event_id = e.id AND p.section = vs.name
                WHERE e.id = ANY($1::uuid[])
                  AND NOT EXISTS (SELECT 1 FROM bookings b WHERE b.event_id = e.id)
                GROUP BY e.id ORDER BY e.starts_at""",
            list(event_ids),
        )
    )

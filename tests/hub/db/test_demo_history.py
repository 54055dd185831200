"""Binary COPY from numpy columns (``hub.db.demo_history``): what goes in comes back out."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator

import numpy as np
import pytest

from hub.context import Hub
from hub.db import Connection
from hub.db import demo_history as history_db


@pytest.fixture
async def con(hub: Hub) -> AsyncIterator[Connection]:
    async with hub.db.connection() as connection, connection.transaction():
        await connection.execute(
            """CREATE TEMPORARY TABLE copy_probe (
                   id uuid, label text, n integer, big bigint, small smallint, flag boolean,
                   ratio double precision, at timestamptz, note text
               ) ON COMMIT DROP"""
        )
        yield connection
        # Leaving the block rolls nothing back: the table goes with the transaction's end.


async def test_columns_come_back_as_written_with_nulls_and_texts_of_any_length(
    con: Connection,
) -> None:
    ids = [uuid.uuid4() for _ in range(5)]
    labels = ["", "a", "ação", "x" * 300, "tab\there"]
    at = np.array(
        ["2024-02-29T23:59:59.123456", "1999-12-31T00:00:00", "NaT", "2000-01-01", "2030-06-01"],
        dtype="datetime64[us]",
    )
    columns = {
        "id": np.frombuffer(b"".join(i.bytes for i in ids), np.uint8).reshape(5, 16),
        "label": np.array([s.encode() for s in labels], dtype=bytes),
        "n": np.ma.masked_array([1, -2, 3, 2**31 - 1, 0], mask=[0, 0, 1, 0, 0]),
        "big": np.array([2**40, -1, 0, 7, 2**62]),
        "small": np.array([1, 2, 3, -4, 5]),
        "flag": np.array([True, False, True, False, True]),
        "ratio": np.array([0.5, -1e300, 3.25, 0.0, 1 / 3]),
        "at": at,
        "note": np.ma.masked_array(
            np.array([b"x", b"", b"yy", b"zzz", b"w"]), mask=[1, 0, 0, 1, 0]
        ),
    }
    assert await history_db.copy_columns(con, "copy_probe", columns) == 5
    rows = {row["id"]: row for row in await con.fetch("SELECT * FROM copy_probe")}
    assert set(rows) == set(ids)
    expected_at = [
        dt.datetime(2024, 2, 29, 23, 59, 59, 123456, tzinfo=dt.UTC),
        dt.datetime(1999, 12, 31, tzinfo=dt.UTC),
        None,
        dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
        dt.datetime(2030, 6, 1, tzinfo=dt.UTC),
    ]
    for i, row_id in enumerate(ids):
        row = rows[row_id]
        assert row["label"] == labels[i]
        assert row["n"] == (None if i == 2 else int(columns["n"][i]))
        assert row["big"] == int(columns["big"][i])
        assert row["small"] == int(columns["small"][i])
        assert row["flag"] == bool(columns["flag"][i])
        assert row["ratio"] == float(columns["ratio"][i])
        assert row["at"] == expected_at[i]
        assert row["note"] == (None if i in (0, 3) else ["x", "", "yy", "zzz", "w"][i])


async def test_many_rows_in_chunks(con: Connection) -> None:
    n = 250_001  # more than two chunks
    rng = np.random.default_rng(3)
    ids = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    values = rng.integers(0, 10**12, size=n)
    await history_db.copy_columns(con, "copy_probe", {"id": ids, "big": values})
    found = await con.fetchrow("SELECT count(*) AS n, sum(big) AS total FROM copy_probe")
    assert (found["n"], found["total"]) == (n, int(values.sum()))


async def test_a_column_of_the_wrong_kind_is_refused(con: Connection) -> None:
    with pytest.raises(TypeError, match="uuid"):
        await history_db.copy_columns(con, "copy_probe", {"id": np.arange(3)})
    with pytest.raises(TypeError, match="timestamptz"):
        await history_db.copy_columns(con, "copy_probe", {"at": np.arange(3)})

"""The analytics benchmark's generator, small: rows as asked, every key and index back."""

from __future__ import annotations

import asyncpg

from tests.bench import seed_analytics
from tests.servers import TestServers, scratch_database

SCHEMA = """
SELECT 'index ' || indexdef AS item FROM pg_indexes WHERE schemaname = 'public'
UNION ALL
SELECT 'constraint ' || conrelid::regclass || ' ' || pg_get_constraintdef(oid)
  FROM pg_constraint WHERE connamespace = 'public'::regnamespace
"""


async def test_a_small_history_goes_in_with_every_check_made_again(servers: TestServers) -> None:
    async with scratch_database(servers, "evently_seed") as url:
        con = await asyncpg.connect(url)
        try:
            schema_before = {row["item"] for row in await con.fetch(SCHEMA)}
            report = await seed_analytics.seed(
                url, bookings=6_000, customers=800, events=20, venues=2, say=lambda _: None
            )
            assert report.rows["bookings"] == 6_000
            assert report.rows["tickets"] > 6_000 and report.rows["hold_log"] > 6_000
            assert {row["item"] for row in await con.fetch(SCHEMA)} == schema_before
            found = await con.fetchrow(
                """SELECT (SELECT count(*) FROM bookings) AS bookings,
                          (SELECT count(*) FROM users) AS users,
                          (SELECT sum(bookings) FROM analytics_hourly) AS rolled_up,
                          (SELECT count(*) FROM (SELECT 1 FROM tickets WHERE active
                              GROUP BY event_id, seat_id HAVING count(*) > 1) d) AS twice"""
            )
            assert dict(found) == {"bookings": 6_000, "users": 800, "rolled_up": 6_000, "twice": 0}
            assert set(report.seconds) >= {"generate", "write", "rollup rebuild", "total"}
        finally:
            await con.close()

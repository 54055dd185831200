-- A pricing run rewrites current_price_cents on up to every row of event_prices. With an
-- index on that column no such update can be HOT (heap-only: the new row version in the
-- same page, no index entry touched), so every changed price also wrote an index entry
-- and its page: about half of a first tick's write over 10,000 events (BENCHMARKS.md).
-- The event search filters prices per event, through the primary key (event_id, section),
-- so the index served no query. Free space in each page lets the new versions stay HOT.
DROP INDEX IF EXISTS event_prices_current_idx;
ALTER TABLE event_prices SET (fillfactor = 70);

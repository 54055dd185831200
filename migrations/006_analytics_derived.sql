-- Derived analytics tables: sums of the rollups of 004 at a coarser grain, so the reports
-- that read all history read thousands of rows instead of hundreds of thousands. Each is a
-- pure function of the rollups (so of bookings, hold_log and events): the leader's step adds
-- to them in the same transaction and from the same window as to the rollups, and a rebuild
-- counts them again with it (hub/db/rollups.py argues why they stay exact).
--
-- No foreign keys: every row is a sum of rollup rows that carry them (analytics_hourly,
-- analytics_user_months, analytics_lead_days reference events and users), and the checks
-- would cost a rebuild again what they cost the rollups.

CREATE TABLE analytics_hourly_totals (    -- analytics_hourly summed over every event
    hour           timestamptz PRIMARY KEY,
    bookings       integer NOT NULL,
    tickets        integer NOT NULL,
    revenue_cents  bigint  NOT NULL,
    cancellations  integer NOT NULL,
    refunds_cents  bigint  NOT NULL,
    holds          integer NOT NULL
);

CREATE TABLE analytics_daily (            -- analytics_hourly summed per event and UTC day
    event_id       uuid NOT NULL,
    day            date NOT NULL,          -- the UTC day of the hours summed
    bookings       integer NOT NULL,
    tickets        integer NOT NULL,
    revenue_cents  bigint  NOT NULL,
    cancellations  integer NOT NULL,
    refunds_cents  bigint  NOT NULL,
    holds          integer NOT NULL,
    PRIMARY KEY (event_id, day)
);
-- Reads by day range over every event (the forecasts per category join events by id: an
-- event's category is read when asked, so editing it needs nothing here).
CREATE INDEX analytics_daily_day_idx ON analytics_daily (day);

-- analytics_daily summed per category and day, for the forecasts: a few thousand rows where
-- the days per event are a hundred thousand. Keyed by the category's exact spelling (the
-- reports merge spellings that differ by case, as before). An event's days count under the
-- category it had when they were counted (analytics_event_categories); a step that finds it
-- edited moves all of them to the new one, as a moved event's lead days are counted again.
CREATE TABLE analytics_category_daily (
    category       text NOT NULL,
    day            date NOT NULL,
    events         integer NOT NULL,       -- events of the category with a row that day (> 0)
    bookings       integer NOT NULL,
    revenue_cents  bigint  NOT NULL,
    PRIMARY KEY (category, day)
);

CREATE TABLE analytics_event_categories ( -- the category each event's days are counted under
    event_id  uuid PRIMARY KEY,
    category  text NOT NULL
);

CREATE TABLE analytics_users (            -- analytics_user_months summed per user
    user_id      uuid PRIMARY KEY,
    first_month  date NOT NULL,            -- the month of the user's first booking made
    bookings     integer NOT NULL           -- bookings made, ever
);

CREATE TABLE analytics_cohorts (          -- users of a first month with a booking in a month
    first_month  date NOT NULL,
    month        date NOT NULL,            -- >= first_month; users of the cohort active in it
    users        integer NOT NULL,
    PRIMARY KEY (first_month, month)
);

CREATE TABLE analytics_lead_totals (      -- analytics_lead_days summed over every event
    lead_days  integer PRIMARY KEY,
    bookings   integer NOT NULL            -- > 0 (a sum that drops to 0 is deleted)
);

-- Filled from the rollups as they stand, at one watermark: a step running now waits for the
-- state lock, and the next one adds to these sums. (A leader still running the code from
-- before this migration would step the rollups alone: after such a rolling upgrade, run
-- `evently rollup --rebuild`.)
LOCK TABLE analytics_rollup_state IN EXCLUSIVE MODE;

INSERT INTO analytics_hourly_totals
SELECT hour, sum(bookings), sum(tickets), sum(revenue_cents), sum(cancellations),
       sum(refunds_cents), sum(holds)
  FROM analytics_hourly
 GROUP BY hour;

INSERT INTO analytics_daily
SELECT event_id, (hour AT TIME ZONE 'UTC')::date, sum(bookings), sum(tickets),
       sum(revenue_cents), sum(cancellations), sum(refunds_cents), sum(holds)
  FROM analytics_hourly
 GROUP BY 1, 2;

INSERT INTO analytics_event_categories
SELECT e.id, e.category
  FROM events e
 WHERE EXISTS (SELECT 1 FROM analytics_daily d WHERE d.event_id = e.id);

INSERT INTO analytics_category_daily
SELECT c.category, d.day, count(*), sum(d.bookings), sum(d.revenue_cents)
  FROM analytics_daily d JOIN analytics_event_categories c ON c.event_id = d.event_id
 GROUP BY 1, 2;

INSERT INTO analytics_users
SELECT user_id, min(month), sum(bookings)
  FROM analytics_user_months
 GROUP BY user_id;

INSERT INTO analytics_cohorts
SELECT u.first_month, m.month, count(*)
  FROM analytics_user_months m JOIN analytics_users u ON u.user_id = m.user_id
 GROUP BY 1, 2;

INSERT INTO analytics_lead_totals
SELECT lead_days, sum(bookings)
  FROM analytics_lead_days
 GROUP BY lead_days
HAVING sum(bookings) > 0;

-- Statistics now, not at autovacuum's next pass: the reports' plans count on them.
ANALYZE analytics_hourly_totals, analytics_daily, analytics_category_daily,
        analytics_event_categories, analytics_users, analytics_cohorts, analytics_lead_totals;

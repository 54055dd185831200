-- Analytics rollups, kept by the leader from bookings, hold_log and events (hub/db/rollups.py
-- says how they stay exact). Every row is a pure function of those tables: a rebuild from
-- scratch gives the same rows.

CREATE TABLE analytics_hourly (          -- one row per event and UTC hour
    event_id       uuid NOT NULL REFERENCES events (id),
    hour           timestamptz NOT NULL,  -- start of the UTC hour
    bookings       integer NOT NULL DEFAULT 0,  -- bookings MADE in the hour (also if later cancelled)
    tickets        integer NOT NULL DEFAULT 0,  -- their tickets
    revenue_cents  bigint  NOT NULL DEFAULT 0,  -- their total_cents
    cancellations  integer NOT NULL DEFAULT 0,  -- bookings CANCELLED in the hour
    refunds_cents  bigint  NOT NULL DEFAULT 0,  -- refund_cents of those cancellations
    holds          integer NOT NULL DEFAULT 0,  -- holds PLACED in the hour (hold_log.created_at)
    PRIMARY KEY (event_id, hour)
);
-- Reads by time range over every event (trends without an event filter).
CREATE INDEX analytics_hourly_hour_idx ON analytics_hourly (hour);

CREATE TABLE analytics_user_months (      -- bookings made per user per calendar month (UTC)
    user_id  uuid NOT NULL REFERENCES users (id),
    month    date NOT NULL,               -- first day of the month
    bookings integer NOT NULL,
    PRIMARY KEY (user_id, month)
);

CREATE TABLE analytics_lead_days (        -- lead time from booking to event start, whole days, per event
    event_id  uuid NOT NULL REFERENCES events (id),
    lead_days integer NOT NULL,            -- floor((starts_at - created_at) / 1 day), >= 0 (clip negatives to 0)
    bookings  integer NOT NULL,
    PRIMARY KEY (event_id, lead_days)
);

-- The rollups hold every booking, cancellation and hold stamped before the watermark, and
-- no other (one row). NULL until the first step, which counts the whole history.
CREATE TABLE analytics_rollup_state (
    id         boolean PRIMARY KEY DEFAULT true CHECK (id),
    watermark  timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO analytics_rollup_state (watermark) VALUES (NULL);

-- The start time each event's lead days were counted against: an event moved since (its
-- starts_at differs) has its lead days counted again from its bookings.
CREATE TABLE analytics_lead_starts (
    event_id  uuid PRIMARY KEY REFERENCES events (id),
    starts_at timestamptz NOT NULL
);

-- The incremental step reads what happened in [watermark, horizon): bookings by created_at
-- (bookings_created_idx exists), cancellations by cancelled_at, holds by created_at.
CREATE INDEX bookings_cancelled_idx ON bookings (cancelled_at) WHERE cancelled_at IS NOT NULL;
CREATE INDEX hold_log_created_idx ON hold_log (created_at);

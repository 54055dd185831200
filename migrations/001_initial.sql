-- Evently Hub: the first schema. PostgreSQL is the truth for everything durable.
-- Money is integer cents. Times are timestamptz (UTC). Ids are UUIDs.

CREATE TABLE users (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email         text NOT NULL,
    name          text NOT NULL,
    password_hash text NOT NULL,
    role          text NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

-- Logged-out tokens, until they would have expired anyway.
CREATE TABLE revoked_tokens (
    jti        uuid PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
CREATE INDEX revoked_tokens_expires_idx ON revoked_tokens (expires_at);

CREATE TABLE venues (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name       text NOT NULL,
    city       text NOT NULL,
    capacity   integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE venue_sections (
    venue_id         uuid NOT NULL REFERENCES venues (id) ON DELETE CASCADE,
    name             text NOT NULL,
    position         integer NOT NULL,
    base_price_cents bigint CHECK (base_price_cents >= 0),
    PRIMARY KEY (venue_id, name)
);

-- idx is the seat's place in the venue's seat order: the order of GET /events/{id}/seats,
-- of the snapshot codes on the live channel and of the seat-state bytes in Redis.
CREATE TABLE seats (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    venue_id   uuid NOT NULL REFERENCES venues (id) ON DELETE CASCADE,
    idx        integer NOT NULL,
    section    text NOT NULL,
    row_label  text NOT NULL,
    number     integer NOT NULL,
    x          double precision NOT NULL,
    y          double precision NOT NULL,
    accessible boolean NOT NULL DEFAULT false,
    distance   double precision NOT NULL,
    UNIQUE (venue_id, idx),
    UNIQUE (venue_id, section, row_label, number)
);

CREATE TABLE events (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    venue_id             uuid NOT NULL REFERENCES venues (id),
    name                 text NOT NULL,
    description          text NOT NULL DEFAULT '',
    category             text NOT NULL,
    keywords             text[] NOT NULL DEFAULT '{}',
    starts_at            timestamptz NOT NULL,
    status               text NOT NULL DEFAULT 'scheduled'
                         CHECK (status IN ('scheduled', 'cancelled')),
    max_tickets_per_user integer NOT NULL DEFAULT 10 CHECK (max_tickets_per_user > 0),
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_starts_at_idx ON events (starts_at);
CREATE INDEX events_category_idx ON events (lower(category));
CREATE INDEX events_venue_idx ON events (venue_id);

-- One row per priced section of an event: the base price and the current (dynamic) price.
CREATE TABLE event_prices (
    event_id            uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    section             text NOT NULL,
    base_price_cents    bigint NOT NULL CHECK (base_price_cents >= 0),
    current_price_cents bigint NOT NULL CHECK (current_price_cents >= 0),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, section)
);
CREATE INDEX event_prices_current_idx ON event_prices (current_price_cents);

CREATE TABLE price_history (
    id          bigserial PRIMARY KEY,
    event_id    uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    section     text NOT NULL,
    old_cents   bigint NOT NULL,
    new_cents   bigint NOT NULL,
    applied     boolean NOT NULL,
    factors     jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX price_history_event_idx ON price_history (event_id, created_at);

CREATE TABLE discount_codes (
    code        text PRIMARY KEY,
    percent     numeric(5, 2) NOT NULL CHECK (percent > 0 AND percent <= 100),
    max_uses    integer NOT NULL CHECK (max_uses > 0),
    uses        integer NOT NULL DEFAULT 0 CHECK (uses >= 0),
    valid_from  timestamptz,
    valid_until timestamptz,
    event_id    uuid REFERENCES events (id) ON DELETE CASCADE,
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (uses <= max_uses)
);

CREATE TABLE bookings (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    reference       text NOT NULL UNIQUE,
    event_id        uuid NOT NULL REFERENCES events (id),
    user_id         uuid NOT NULL REFERENCES users (id),
    hold_id         uuid,
    status          text NOT NULL DEFAULT 'confirmed' CHECK (status IN ('confirmed', 'cancelled')),
    subtotal_cents  bigint NOT NULL CHECK (subtotal_cents >= 0),
    discount_cents  bigint NOT NULL DEFAULT 0 CHECK (discount_cents >= 0),
    discount_bp     integer NOT NULL DEFAULT 0 CHECK (discount_bp >= 0),
    discount_code   text REFERENCES discount_codes (code),
    total_cents     bigint NOT NULL CHECK (total_cents >= 0),
    group_name      text,
    refund_cents    bigint,
    created_at      timestamptz NOT NULL DEFAULT now(),
    cancelled_at    timestamptz
);
CREATE INDEX bookings_user_idx ON bookings (user_id, created_at DESC);
CREATE INDEX bookings_event_idx ON bookings (event_id, status);
CREATE INDEX bookings_created_idx ON bookings (created_at);
CREATE UNIQUE INDEX bookings_hold_key ON bookings (hold_id) WHERE hold_id IS NOT NULL;

CREATE TABLE tickets (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    booking_id  uuid NOT NULL REFERENCES bookings (id),
    event_id    uuid NOT NULL REFERENCES events (id),
    seat_id     uuid NOT NULL REFERENCES seats (id),
    price_cents bigint NOT NULL CHECK (price_cents >= 0),
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now()
);
-- The last guard against a double sale: one active ticket per seat per event.
CREATE UNIQUE INDEX tickets_one_active_per_seat ON tickets (event_id, seat_id) WHERE active;
CREATE INDEX tickets_booking_idx ON tickets (booking_id);
CREATE INDEX tickets_event_active_idx ON tickets (event_id) WHERE active;

CREATE TABLE payments (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    booking_id   uuid REFERENCES bookings (id),
    user_id      uuid NOT NULL REFERENCES users (id),
    kind         text NOT NULL CHECK (kind IN ('charge', 'refund')),
    amount_cents bigint NOT NULL CHECK (amount_cents >= 0),
    provider     text NOT NULL,
    provider_ref text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payments_booking_idx ON payments (booking_id);

-- Every hold placed, and what became of it: the conversion figures come from here.
CREATE TABLE hold_log (
    hold_id    uuid PRIMARY KEY,
    event_id   uuid NOT NULL REFERENCES events (id),
    user_id    uuid NOT NULL REFERENCES users (id),
    seats      integer NOT NULL,
    outcome    text NOT NULL DEFAULT 'held'
               CHECK (outcome IN ('held', 'booked', 'released', 'expired', 'cancelled')),
    created_at timestamptz NOT NULL DEFAULT now(),
    ended_at   timestamptz
);
CREATE INDEX hold_log_event_idx ON hold_log (event_id, created_at);

CREATE TABLE waitlist (
    id               bigserial PRIMARY KEY,
    event_id         uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    user_id          uuid NOT NULL REFERENCES users (id),
    position         integer NOT NULL,
    quantity         integer NOT NULL CHECK (quantity > 0),
    status           text NOT NULL DEFAULT 'waiting'
                     CHECK (status IN ('waiting', 'offered', 'booked', 'left', 'lapsed', 'closed')),
    hold_id          uuid,
    offer_expires_at timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (event_id, position)
);
CREATE UNIQUE INDEX waitlist_one_live_entry ON waitlist (event_id, user_id)
    WHERE status IN ('waiting', 'offered');
CREATE INDEX waitlist_queue_idx ON waitlist (event_id, status, position);

CREATE TABLE idempotency_keys (
    user_id         uuid NOT NULL REFERENCES users (id),
    key             text NOT NULL,
    request_hash    text NOT NULL,
    state           text NOT NULL DEFAULT 'in_flight' CHECK (state IN ('in_flight', 'done')),
    response_status integer,
    response_body   bytea,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_expires_idx ON idempotency_keys (expires_at);

-- Notifications to send, written in the same transaction as what they report.
CREATE TABLE outbox (
    id         bigserial PRIMARY KEY,
    kind       text NOT NULL,
    user_id    uuid REFERENCES users (id),
    payload    jsonb NOT NULL DEFAULT '{}',
    attempts   integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz
);
CREATE INDEX outbox_pending_idx ON outbox (id) WHERE sent_at IS NULL;

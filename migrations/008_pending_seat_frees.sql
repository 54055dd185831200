-- Seats a committed cancellation still has to free in Redis. The row is written in the
-- cancellation's transaction and deleted once its Redis step is done; a row left behind (Redis
-- down or cut off, the process killed between the two steps) is finished by the leader after
-- `due_at`, so a cancelled seat never stays shown sold (and unsellable) for good.
CREATE TABLE pending_seat_frees (
    id         bigserial PRIMARY KEY,
    event_id   uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    seats      integer[] NOT NULL,
    -- The cap owner whose per-user count the freed seats leave (null: a group booking).
    owner_id   uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- Not before: the cancelling request may still be running its own Redis step.
    due_at     timestamptz NOT NULL
);
CREATE INDEX pending_seat_frees_due_idx ON pending_seat_frees (due_at);

-- Refunds are carried out after the cancellation commits, never inside its transaction:
-- the cancellation records the refund as due, the leader pays it (retrying until the
-- provider accepts) and records the payment. A crash in between loses no refund: it is
-- still due.
ALTER TABLE bookings
    ADD COLUMN refund_status   text CHECK (refund_status IN ('due', 'paid', 'failed')),
    ADD COLUMN refund_paid_at  timestamptz,
    ADD COLUMN refund_attempts integer NOT NULL DEFAULT 0,
    ADD COLUMN refund_next_at  timestamptz;

-- Refunds made before this migration were paid inside the cancellation.
UPDATE bookings SET refund_status = 'paid', refund_paid_at = cancelled_at
 WHERE refund_cents IS NOT NULL;

CREATE INDEX bookings_refunds_pending_idx ON bookings (refund_next_at)
    WHERE refund_status IN ('due', 'failed');

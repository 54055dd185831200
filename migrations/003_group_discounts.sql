-- Bulk group bookings and discount codes.

-- A code is one code whatever its case: "BULK10" and "bulk10" cannot both exist, and a
-- lookup by upper(code) uses this index.
CREATE UNIQUE INDEX discount_codes_upper_key ON discount_codes (upper(code));

-- The group's own rate (basis points) beside the booking's combined, capped rate, so a
-- receipt splits the discount between group and code the same way whenever it is read,
-- whatever the tiers or the cap are by then. Bookings made before this are not groups.
ALTER TABLE bookings
    ADD COLUMN group_bp integer NOT NULL DEFAULT 0 CHECK (group_bp BETWEEN 0 AND 10000);

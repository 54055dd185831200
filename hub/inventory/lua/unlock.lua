-- Compare-and-delete: the event's seat-assignment lock (ARGV: our token), or the waitlist
-- mark (ARGV: the value an offer round saw; a join since has changed it).
-- KEYS: key   ARGV: value
-- Returns 1 when the key held that value and is now deleted, else 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0

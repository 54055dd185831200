-- Give the leader's lease up if this process still holds it (compare-and-delete).
-- KEYS: lease   ARGV: token
-- Returns 1 when deleted, else 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0

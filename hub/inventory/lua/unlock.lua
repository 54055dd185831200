-- Compare-and-delete release of the event's seat-assignment lock.
-- KEYS: lock   ARGV: token
-- Returns 1 when the lock was ours and is now deleted, else 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0

-- Back to "held" after a failed confirmation.
-- KEYS: hold   ARGV: (none)
-- Returns 1, or 0 when the hold was not confirming.
if redis.call('HGET', KEYS[1], 'status') ~= 'confirming' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'held')
redis.call('HDEL', KEYS[1], 'confirming_since')
return 1

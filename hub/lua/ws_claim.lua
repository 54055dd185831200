-- Take one place under a connection cap, or refuse (hub.channels.caps).
-- KEYS: the cap's sorted set (member: a connection, score: when its claim lapses, ms)
-- ARGV: member now_ms lease_ms cap
-- Returns 1 when the connection is counted (or already was), 0 when the cap is full.
-- Lapsed claims (their process stopped renewing: crashed, or cut off from Redis) are
-- dropped first, so they never hold a place for longer than one lease.
local now = tonumber(ARGV[2])
local lapse = now + tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then
    return 0
  end
end
redis.call('ZADD', KEYS[1], lapse, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1

-- Take the leader's lease if it is free, and issue the new leader's fencing token.
-- KEYS: lease  fence   ARGV: token lease_ms
-- Returns the fencing token (> 0) when the lease was won, else 0.
-- The token is the last one issued plus one, but never below the server's clock in
-- milliseconds: a Redis restarted empty still issues a token above any that PostgreSQL's
-- `leader_fence` row has seen (leases are held for seconds, so the clock has moved on).
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 0 end
local now = redis.call('TIME')
local clock = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local token = math.max(tonumber(redis.call('GET', KEYS[2]) or '0') + 1, clock)
redis.call('SET', KEYS[2], token)
return token

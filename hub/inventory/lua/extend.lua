-- Extend a hold once, never past its maximum lifetime.
-- KEYS: hold expiry   ARGV: add_ms max_lifetime_ms hold_id
-- Returns {'ok', new_expires_ms} or a refusal: {'missing'}, {'already'}, {'confirming'},
-- {'expired'}, {'max_lifetime'}.
local h = redis.call('HMGET', KEYS[1], 'status', 'extended', 'created', 'expires')
if not h[1] then return {'missing'} end
if h[2] == '1' then return {'already'} end
if h[1] ~= 'held' then return {'confirming'} end
local now = now_ms()
if tonumber(h[4]) <= now then return {'expired'} end
local new = math.min(tonumber(h[4]) + tonumber(ARGV[1]), tonumber(h[3]) + tonumber(ARGV[2]))
if new <= tonumber(h[4]) then return {'max_lifetime'} end
redis.call('HSET', KEYS[1], 'expires', new, 'extended', 1)
redis.call('ZADD', KEYS[2], new, ARGV[3])
return {'ok', new}

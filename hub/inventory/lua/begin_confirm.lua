-- Mark a live hold "confirming": nothing visible changes, seq does not move, and the
-- sweeper leaves it alone.
-- KEYS: hold   ARGV: user
-- Returns {'ok', seats_csv, prices_csv, kind, expires_ms} or a refusal: {'missing'},
-- {'confirming'}, {'expired'}.
local h = redis.call('HGETALL', KEYS[1])
if #h == 0 then return {'missing'} end
local hold = {}
for i = 1, #h, 2 do hold[h[i]] = h[i + 1] end
if hold.user ~= ARGV[1] then return {'missing'} end
if hold.status == 'confirming' then return {'confirming'} end
local now = now_ms()
if tonumber(hold.expires) <= now then return {'expired'} end
redis.call('HSET', KEYS[1], 'status', 'confirming', 'confirming_since', now)
return {'ok', hold.seats, hold.prices, hold.kind, hold.expires}

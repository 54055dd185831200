-- Read seq and the seat bytes atomically; nothing unless loaded.
-- KEYS: seq seats meta
-- Returns {seq, seats} or {false, false}.
if redis.call('EXISTS', KEYS[3]) == 0 then return {false, false} end
return {redis.call('GET', KEYS[1]) or false, redis.call('GET', KEYS[2]) or false}

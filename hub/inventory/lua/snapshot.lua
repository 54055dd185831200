-- Read seq, the seat bytes and the event's version atomically; nothing unless loaded.
-- KEYS: seq seats meta ver
-- Returns {seq, seats, version} or {false, false, false}.
if redis.call('EXISTS', KEYS[3]) == 0 then return {false, false, false} end
return {redis.call('GET', KEYS[1]) or false, redis.call('GET', KEYS[2]) or false,
  redis.call('GET', KEYS[4]) or false}

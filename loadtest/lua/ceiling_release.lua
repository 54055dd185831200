-- The ceiling's release: the bare counterpart of the hub's (loadtest/ceiling.py).
-- KEYS: seats hash, seq counter, hold key, channel.
-- ARGV: hold id, user id.
-- Frees the seats the hold still holds, drops the hold, bumps the sequence number and
-- publishes it. Returns 1, or 0 when there is no such hold or it is another user's.
local hold = redis.call('GET', KEYS[3])
if not hold then return 0 end
local bar = string.find(hold, '|', 1, true)
if string.sub(hold, 1, bar - 1) ~= ARGV[2] then return 0 end
local freed = 0
for seat in string.gmatch(string.sub(hold, bar + 1), '[^,]+') do
  if redis.call('HGET', KEYS[1], seat) == ARGV[1] then
    redis.call('HDEL', KEYS[1], seat)
    freed = freed + 1
  end
end
redis.call('DEL', KEYS[3])
local seq = redis.call('INCRBY', KEYS[2], freed)
redis.call('PUBLISH', KEYS[4], seq)
return 1

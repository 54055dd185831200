-- The ceiling's hold: the least a hold can do (loadtest/ceiling.py).
-- KEYS: seats hash, seq counter, hold key, channel.
-- ARGV: hold id, ttl ms, user id, seat ids...
-- All or nothing: any seat already in the hash refuses the hold and changes nothing.
-- Returns {1, seq} when held, {0, seat} naming the first taken seat.
for i = 4, #ARGV do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 1 then return {0, ARGV[i]} end
end
for i = 4, #ARGV do redis.call('HSET', KEYS[1], ARGV[i], ARGV[1]) end
-- The hold remembers its owner and its seats: "user|seat,seat,...".
redis.call('SET', KEYS[3], ARGV[3] .. '|' .. table.concat(ARGV, ',', 4), 'PX', ARGV[2])
local seq = redis.call('INCRBY', KEYS[2], #ARGV - 3)
redis.call('PUBLISH', KEYS[4], seq)
return {1, seq}

-- The event sold out for the queue: every waiter's status becomes sold_out, the queue is
-- emptied, and later joiners are told at once.
-- KEYS: room (hash)  queue (zset)  users (hash)
-- Returns how many were waiting.
local users = redis.call('ZRANGE', KEYS[2], 0, -1)
for _, user in ipairs(users) do
  local kept = redis.call('HGET', KEYS[3], user)
  if kept then
    local record = cjson.decode(kept)
    record.s = 'sold_out'
    redis.call('HSET', KEYS[3], user, cjson.encode(record))
  end
end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], 'sold_out', '1')
return #users

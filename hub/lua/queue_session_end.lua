-- Sessions that ran out: each named user leaves the sessions; one who never booked
-- (``used`` 0) is expired (and may join again, at the back), one who booked stays admitted.
-- KEYS: sessions (zset)  users (hash)
-- ARGV: (user used) repeated
-- Returns how many sessions ended unused.
local unused = 0
for i = 1, #ARGV, 2 do
  local user = ARGV[i]
  if redis.call('ZREM', KEYS[1], user) == 1 and ARGV[i + 1] == '0' then
    local kept = redis.call('HGET', KEYS[2], user)
    if kept then
      local record = cjson.decode(kept)
      if record.s == 'admitted' then
        record.s = 'expired'
        redis.call('HSET', KEYS[2], user, cjson.encode(record))
        unused = unused + 1
      end
    end
  end
end
return unused

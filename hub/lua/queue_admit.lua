-- Admit waiters: each named user still in the queue leaves it, becomes admitted with the
-- token the caller signed, and starts a session that ends at its expiry.
-- KEYS: room (hash)  queue (zset)  users (hash)  sessions (zset: user -> expiry, epoch s)
--       fence (string: the leader's last fencing token, hub/leader.py)
-- ARGV: fencing token ('' when not the leader's loop)  then (user token expires_s) repeated
-- Returns how many were admitted (a user who left meanwhile is skipped), or -1 when the
-- fencing token is not the last one issued: a superseded leader admits no one.
-- (The fence key is outside the event's hash slot: on a Redis Cluster the token would
-- have to be copied into the room's hash.)
if ARGV[1] ~= '' and redis.call('GET', KEYS[5]) ~= ARGV[1] then return -1 end
local admitted = 0
for i = 2, #ARGV, 3 do
  local user = ARGV[i]
  if redis.call('ZREM', KEYS[2], user) == 1 then
    local kept = redis.call('HGET', KEYS[3], user)
    if kept then
      local record = cjson.decode(kept)
      record.s = 'admitted'
      record.tok = ARGV[i + 1]
      record.exp = tonumber(ARGV[i + 2])
      redis.call('HSET', KEYS[3], user, cjson.encode(record))
      redis.call('ZADD', KEYS[4], ARGV[i + 2], user)
      admitted = admitted + 1
    end
  end
end
redis.call('HINCRBY', KEYS[1], 'admitted', admitted)
return admitted

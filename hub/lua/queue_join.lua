-- Join an event's waiting-room queue: one place per user (DESIGN.md §4, waiting room).
-- KEYS: room (hash)  queue (zset: user -> score)  users (hash: user -> JSON record)
-- ARGV: user  now_ms  draw (a uniform random number in [0, 1))  queue_id
-- Scores: a user who joins before the room opens gets the random draw (below 1), so the
-- pre-opening crowd is in a uniformly random order, revealed only at opening; later
-- arrivals get 1 + a counter, behind all of them, first come first served.
-- Returns {'none'} with no room on, {'existing', record} when the user already has a place
-- (anything but expired), else {'joined', record}. A record is JSON {q, s, j[, tok, exp]}.
local room = redis.call('HMGET', KEYS[1], 'state', 'opens_ms', 'sold_out')
if room[1] ~= 'on' then
  return {'none'}
end
local kept = redis.call('HGET', KEYS[3], ARGV[1])
if kept and cjson.decode(kept).s ~= 'expired' then
  return {'existing', kept}
end
local status = 'waiting'
if room[3] == '1' then
  status = 'sold_out'
else
  local score
  if tonumber(ARGV[2]) < tonumber(room[2]) then
    score = ARGV[3]
  else
    score = 1 + redis.call('HINCRBY', KEYS[1], 'seq', 1)
  end
  redis.call('ZADD', KEYS[2], score, ARGV[1])
end
local record = cjson.encode({q = ARGV[4], s = status, j = tonumber(ARGV[2])})
redis.call('HSET', KEYS[3], ARGV[1], record)
return {'joined', record}

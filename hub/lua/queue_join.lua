-- Join an event's waiting-room queue: one place per user (DESIGN.md §4, waiting room).
-- KEYS: room (hash)  queue (zset: user -> score)  users (hash: user -> JSON record)
-- ARGV: user  now_ms  draw (a uniform random number in [0, 1))  queue_id
-- Scores: a user who joins before the room opens gets the random draw (below 1), so the
-- pre-opening crowd is in a uniformly random order, revealed only at opening; later
-- arrivals get 1 + a counter, behind all of them, first come first served.
-- Returns {'none'} with no room on, else {kind, record, room, rank}: kind 'existing' when
-- the user already has a place (anything but expired), else 'joined'; the record is JSON
-- {q, s, j[, tok, exp]}; room the room hash's fields and values (HGETALL); rank the user's
-- rank in the queue (false: not waiting) — all the caller needs to answer, in one call.
local room = redis.call('HMGET', KEYS[1], 'state', 'opens_ms', 'sold_out')
if room[1] ~= 'on' then
  return {'none'}
end
local kind = 'existing'
local record = redis.call('HGET', KEYS[3], ARGV[1])
if not record or cjson.decode(record).s == 'expired' then
  kind = 'joined'
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
  record = cjson.encode({q = ARGV[4], s = status, j = tonumber(ARGV[2])})
  redis.call('HSET', KEYS[3], ARGV[1], record)
end
return {kind, record, redis.call('HGETALL', KEYS[1]), redis.call('ZRANK', KEYS[2], ARGV[1])}

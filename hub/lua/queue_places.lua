-- The places of many queued users at once, for the queue feed's round (one call, not a
-- ZRANK each: the feed reads every waiter watching in a process, each second).
-- KEYS: queue (zset: user -> score)  users (hash: user -> JSON record)
-- ARGV: user ...
-- Returns {records, ranks}: per user in ARGV's order its record (false: none) and its rank
-- in the queue (false: not waiting in it).
local records, ranks = {}, {}
local step = 1000  -- unpack() of many thousand arguments would overflow Lua's stack
for first = 1, #ARGV, step do
  local last = math.min(first + step - 1, #ARGV)
  local got = redis.call('HMGET', KEYS[2], unpack(ARGV, first, last))
  for i = 1, #got do
    records[first + i - 1] = got[i]
  end
end
for i = 1, #ARGV do
  ranks[i] = redis.call('ZRANK', KEYS[1], ARGV[i])
end
return {records, ranks}

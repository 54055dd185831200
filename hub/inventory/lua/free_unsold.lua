-- Free seats shown sold whose tickets PostgreSQL no longer holds (a cancellation whose own
-- Redis step never happened), only if nothing changed since the caller read the seats:
-- the seq guard means no seat was sold (or freed, or held) between that read and this
-- call, so a seat resold meanwhile can never be freed by mistake.
-- KEYS: seats seq holder ch owned   ARGV: expected_seq user('' = none) idx1 idx2 ...
-- Returns {seq, freed}; seq -1 (nothing done) when the seq moved.
if tonumber(redis.call('GET', KEYS[2]) or '0') ~= tonumber(ARGV[1]) then
  return {-1, 0}
end
local changes = {}
for i = 3, #ARGV do
  local idx = tonumber(ARGV[i])
  if get_code(KEYS[1], idx) == 2 then
    redis.call('HDEL', KEYS[3], idx)
    set_code(KEYS[1], idx, 0)
    changes[#changes + 1] = {idx, 0}
  end
end
if ARGV[2] ~= '' and #changes > 0 then
  local left = redis.call('HINCRBY', KEYS[5], ARGV[2], -#changes)
  if left <= 0 then redis.call('HDEL', KEYS[5], ARGV[2]) end
end
return {publish(KEYS[4], KEYS[2], changes), #changes}

-- Set seats to a code decided by PostgreSQL (sold after a correction, free after a
-- cancellation), dropping any hold's claim on them.
-- KEYS: seats seq holder ch owned   ARGV: code user('' = none) count_delta idx1 idx2 ...
-- Returns the new seq.
local code = tonumber(ARGV[1])
local changes = {}
for i = 4, #ARGV do
  local idx = tonumber(ARGV[i])
  redis.call('HDEL', KEYS[3], idx)
  if get_code(KEYS[1], idx) ~= code then
    set_code(KEYS[1], idx, code)
    changes[#changes + 1] = {idx, code}
  end
end
if ARGV[2] ~= '' then
  local left = redis.call('HINCRBY', KEYS[5], ARGV[2], tonumber(ARGV[3]))
  if left <= 0 then redis.call('HDEL', KEYS[5], ARGV[2]) end
end
return publish(KEYS[4], KEYS[2], changes)

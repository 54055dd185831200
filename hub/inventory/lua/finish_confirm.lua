-- The booking is committed in PostgreSQL: its seats become sold, the hold disappears. The
-- seats come from the caller (what PostgreSQL wrote), so they end sold even if the hold was
-- reconciled away meanwhile.
-- KEYS: seats seq holder hold expiry ch   ARGV: hold_id seats_csv
-- Returns the new seq.
local hold_id = ARGV[1]
local idxs = split(ARGV[2])
local changes = {}
for i = 1, #idxs do
  if redis.call('HGET', KEYS[3], idxs[i]) == hold_id then redis.call('HDEL', KEYS[3], idxs[i]) end
  if get_code(KEYS[1], idxs[i]) ~= 2 then
    set_code(KEYS[1], idxs[i], 2)
    changes[#changes + 1] = {idxs[i], 2}
  end
end
redis.call('DEL', KEYS[4])
redis.call('ZREM', KEYS[5], hold_id)
return publish(KEYS[6], KEYS[2], changes)

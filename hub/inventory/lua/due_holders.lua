-- The distinct holds past their expiry that hold any of the given seats.
-- KEYS: holder expiry   ARGV: seat indexes
-- Returns the hold ids.
local now, seen, due = now_ms(), {}, {}
for i = 1, #ARGV do
  local hold = redis.call('HGET', KEYS[1], ARGV[i])
  if hold and not seen[hold] then
    seen[hold] = true
    local expires = redis.call('ZSCORE', KEYS[2], hold)
    if expires and tonumber(expires) <= now then due[#due + 1] = hold end
  end
end
return due

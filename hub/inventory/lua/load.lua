-- Build seat state from PostgreSQL's sold seats. Without force it does nothing when the
-- event is loaded already (so concurrent first uses are safe). With force it keeps the
-- live holds whose seats are not sold. seq never goes back: it restarts no lower than the
-- clock in ms, so a watcher that saw the old sequence always notices the reload.
-- KEYS: seats seq meta holder expiry owned ch
-- ARGV: n force(0|1) n_sold sold_idx... then user count pairs
-- Returns {'ok', seq, kept_holds} or {'loaded'}.
if ARGV[2] == '0' and redis.call('EXISTS', KEYS[3]) == 1 then return {'loaded'} end
local n = tonumber(ARGV[1])
local n_sold = tonumber(ARGV[3])
local bytes = {}
for i = 1, n do bytes[i] = 0 end
for i = 4, 3 + n_sold do bytes[tonumber(ARGV[i]) + 1] = 2 end
local holders = redis.call('HGETALL', KEYS[4])
local kept = {}
for i = 1, #holders, 2 do
  local idx = tonumber(holders[i])
  if idx < n and bytes[idx + 1] == 0 then bytes[idx + 1] = 1 kept[#kept + 1] = idx end
end
local chunk, parts = {}, {}
for i = 1, n do
  chunk[#chunk + 1] = bytes[i]
  if #chunk == 4096 or i == n then
    parts[#parts + 1] = string.char(unpack(chunk))
    chunk = {}
  end
end
redis.call('SET', KEYS[1], table.concat(parts))
redis.call('DEL', KEYS[6])
for i = 4 + n_sold, #ARGV, 2 do redis.call('HSET', KEYS[6], ARGV[i], ARGV[i + 1]) end
local seq = math.max(tonumber(redis.call('GET', KEYS[2]) or '0'), now_ms())
redis.call('SET', KEYS[2], seq)
redis.call('HSET', KEYS[3], 'n', n)
redis.call('PUBLISH', KEYS[7], cmsgpack.pack({t = 'reset', seq = seq}))
return {'ok', seq, #kept}

-- Place a hold: all or nothing over its seats.
-- KEYS: seats seq meta holder hold expiry owned ch ver
-- ARGV: hold_id user kind ttl_ms limit(-1 = none) version(-1 = unchecked) n_candidates,
--       then per candidate: k idx1 price1 ... idxk pricek
-- Holds the first candidate whose seats are all free (a named-seat hold has one candidate;
-- best available offers its best few, so concurrent choosers take different ones). When
-- none is free, reports the taken seats of the first candidate.
-- Returns {'ok', seq, expires_ms, seats_csv} or a refusal: {'not_loaded'},
-- {'bad_seat', idx}, {'taken', {idx, ...}, due(0|1)}, {'limit', current}, {'exists'},
-- {'stale'}; ``due`` says a hold past its expiry holds one of the taken seats.
if redis.call('EXISTS', KEYS[3]) == 0 then return {'not_loaded'} end
local version = tonumber(ARGV[6])
if version >= 0 and tonumber(redis.call('GET', KEYS[9]) or '0') ~= version then
  return {'stale'}
end
local n = tonumber(redis.call('HGET', KEYS[3], 'n'))
local hold_id, user, kind = ARGV[1], ARGV[2], ARGV[3]
local ttl, limit = tonumber(ARGV[4]), tonumber(ARGV[5])
local idxs, prices, taken = nil, nil, {}
local pos = 8
for c = 1, tonumber(ARGV[7]) do
  local k = tonumber(ARGV[pos])
  local these, their_prices, free = {}, {}, true
  for i = 1, k do
    local idx = tonumber(ARGV[pos + 2 * i - 1])
    if idx < 0 or idx >= n then return {'bad_seat', idx} end
    these[i] = idx
    their_prices[i] = ARGV[pos + 2 * i]
    if get_code(KEYS[1], idx) ~= 0 then
      free = false
      if c == 1 then taken[#taken + 1] = idx end
    end
  end
  if free then idxs, prices = these, their_prices break end
  pos = pos + 1 + 2 * k
end
if idxs == nil then
  -- Say whether a hold past its expiry stands in the way (the sweeper has not reached it
  -- yet): only then is clearing it worth the caller's while.
  local now, due = now_ms(), 0
  for i = 1, #taken do
    local holder = redis.call('HGET', KEYS[4], taken[i])
    local expires = holder and redis.call('ZSCORE', KEYS[6], holder)
    if expires and tonumber(expires) <= now then due = 1 break end
  end
  return {'taken', taken, due}
end
local k = #idxs
if limit >= 0 then
  local current = tonumber(redis.call('HGET', KEYS[7], user) or '0')
  if current + k > limit then return {'limit', current} end
end
if redis.call('EXISTS', KEYS[5]) == 1 then return {'exists'} end
local now = now_ms()
local changes = {}
for i = 1, k do
  set_code(KEYS[1], idxs[i], 1)
  redis.call('HSET', KEYS[4], idxs[i], hold_id)
  changes[i] = {idxs[i], 1}
end
local seats_csv = table.concat(idxs, ',')
redis.call('HSET', KEYS[5], 'user', user, 'kind', kind, 'status', 'held',
  'seats', seats_csv, 'prices', table.concat(prices, ','),
  'created', now, 'expires', now + ttl, 'extended', 0)
redis.call('ZADD', KEYS[6], now + ttl, hold_id)
if kind ~= 'group' then redis.call('HINCRBY', KEYS[7], user, k) end
local seq = publish(KEYS[8], KEYS[2], changes)
return {'ok', seq, now + ttl, seats_csv}

-- Shared helpers, prepended to every script of this folder (Redis scripts cannot import).
-- Time is Redis's own clock (TIME), one clock for every hub process.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function split(s)
  local out = {}
  if s == nil or s == '' then return out end
  for part in string.gmatch(s, '[^,]+') do out[#out + 1] = tonumber(part) end
  return out
end
local function set_code(seats_key, idx, code)
  redis.call('SETRANGE', seats_key, idx, string.char(code))
end
local function get_code(seats_key, idx)
  local b = redis.call('GETRANGE', seats_key, idx, idx)
  if b == '' then return -1 end
  return string.byte(b)
end
local function publish(ch_key, seq_key, changes)
  if #changes == 0 then return tonumber(redis.call('GET', seq_key) or '0') end
  local seq = redis.call('INCRBY', seq_key, #changes)
  redis.call('PUBLISH', ch_key, cmsgpack.pack({t = 'seats', seq = seq, changes = changes}))
  return seq
end

-- Release a hold's seats (held -> free) and drop the hold.
-- KEYS: seats seq holder hold expiry owned ch waitlist
-- ARGV: hold_id user('' = any) mode   mode: release | expire | force
-- Returns {'ok', seq, user, seats_csv, kind, waitlist} or a refusal: {'missing'},
-- {'confirming'}, {'not_due'}. ``waitlist`` is the event's waitlist mark (0: nobody known
-- to wait), so the caller offers the freed seats only when someone may be waiting.
local hold_id, user, mode = ARGV[1], ARGV[2], ARGV[3]
local h = redis.call('HGETALL', KEYS[4])
if #h == 0 then redis.call('ZREM', KEYS[5], hold_id) return {'missing'} end
local hold = {}
for i = 1, #h, 2 do hold[h[i]] = h[i + 1] end
if user ~= '' and hold.user ~= user then return {'missing'} end
if mode ~= 'force' and hold.status == 'confirming' then return {'confirming'} end
if mode == 'expire' and tonumber(hold.expires) > now_ms() then return {'not_due'} end
local idxs = split(hold.seats)
local changes = {}
for i = 1, #idxs do
  if redis.call('HGET', KEYS[3], idxs[i]) == hold_id then
    redis.call('HDEL', KEYS[3], idxs[i])
    if get_code(KEYS[1], idxs[i]) == 1 then
      set_code(KEYS[1], idxs[i], 0)
      changes[#changes + 1] = {idxs[i], 0}
    end
  end
end
if hold.kind ~= 'group' then
  local left = redis.call('HINCRBY', KEYS[6], hold.user, -#idxs)
  if left <= 0 then redis.call('HDEL', KEYS[6], hold.user) end
end
redis.call('DEL', KEYS[4])
redis.call('ZREM', KEYS[5], hold_id)
local seq = publish(KEYS[7], KEYS[2], changes)
return {'ok', seq, hold.user, hold.seats, hold.kind, redis.call('GET', KEYS[8]) or '0'}

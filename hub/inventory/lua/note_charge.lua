-- Keep the charge taken for a confirming hold in its record, until the confirmation settles
-- (the booking's finish deletes the record with it; an undo or the leader takes it).
-- KEYS: hold   ARGV: note
-- Returns 1, or 0 when the hold is not confirming (gone already: nothing is created).
if redis.call('HGET', KEYS[1], 'status') ~= 'confirming' then return 0 end
redis.call('HSET', KEYS[1], 'charge', ARGV[1])
return 1

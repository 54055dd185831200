-- Renew the leader's lease if this process still holds it (compare-and-pexpire).
-- KEYS: lease   ARGV: token lease_ms
-- Returns 1 when renewed, 0 when the lease is someone else's (or gone).
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0

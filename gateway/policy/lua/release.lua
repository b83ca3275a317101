-- Release of an admission whose answer never came back (a Redis command timeout): the request's
-- concurrency leases and budget hold are removed, and a marker is left that turns the admission
-- into a no-op should it still run later (a script sent while Redis was stalled runs when Redis
-- resumes, possibly after this release: the two travel on different connections). All keys
-- share the enforcement root hash tag.
--
-- KEYS: 1 marker, 2 key leases, 3 team leases, 4 key holds, 5 team holds
-- ARGV: 1 request id, 2 hold member ("" = none), 3 marker ttl ms
redis.call('SET', KEYS[1], '1', 'PX', tonumber(ARGV[3]))
local removed = redis.call('ZREM', KEYS[2], ARGV[1]) + redis.call('ZREM', KEYS[3], ARGV[1])
if ARGV[2] ~= '' then
  removed = removed + redis.call('ZREM', KEYS[4], ARGV[2]) + redis.call('ZREM', KEYS[5], ARGV[2])
end
return removed

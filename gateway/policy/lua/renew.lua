-- Renewal of one running request's concurrency leases and budget hold: push their expiry to
-- now + ttl. Members that are gone (settled, or already expired and pruned) are not brought
-- back, so a renewal that races its settlement is harmless.
--
-- KEYS: 1 key leases, 2 team leases, 3 key holds, 4 team holds
-- ARGV: 1 now ms ("" = Redis TIME), 2 request id, 3 hold member ("" = none), 4 ttl ms
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local ttl = tonumber(ARGV[4])
local renewed = 0
local function renew(key, member)
  if member ~= '' and redis.call('ZSCORE', key, member) then
    redis.call('ZADD', key, 'XX', now + ttl, member)
    redis.call('PEXPIRE', key, ttl + 60000)
    renewed = renewed + 1
  end
end
renew(KEYS[1], ARGV[2])
renew(KEYS[2], ARGV[2])
renew(KEYS[3], ARGV[3])
renew(KEYS[4], ARGV[3])
return renewed

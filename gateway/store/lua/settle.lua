-- Settlement of one finished request (run in batches, off the request path): release the
-- lease and the budget hold, commit the real cost to every window counter, correct the
-- token limiter by (actual - estimate), and add the request to the day's usage rollup. All
-- keys share the request's enforcement root hash tag.
--
-- KEYS: 1 key leases, 2 team leases, 3 key holds, 4 team holds, 5 key tpm, 6 team tpm,
--       7 usage rollup (day), 8.. spend window counters
-- ARGV: 1 now ms ("" = Redis TIME), 2 request id, 3 hold member ("" = none), 4 cost nano-USD,
--       5 token correction (actual - estimate), 6 key tpm, 7 team tpm, 8 counter count,
--       then per counter its TTL in seconds (0 = none), then rollup (field, increment) pairs
local PERIOD = 60000
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
redis.call('ZREM', KEYS[1], ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[2])
if ARGV[3] ~= '' then
  redis.call('ZREM', KEYS[3], ARGV[3])
  redis.call('ZREM', KEYS[4], ARGV[3])
end
local delta = tonumber(ARGV[5])
if delta ~= 0 then
  for i, limit in ipairs({tonumber(ARGV[6]), tonumber(ARGV[7])}) do
    if limit > 0 then
      local key = KEYS[4 + i]
      local tat = tonumber(redis.call('GET', key)) or now
      if tat < now then tat = now end
      tat = tat + delta * PERIOD / limit
      if tat > now then
        redis.call('SET', key, tostring(tat), 'PX', math.ceil(tat - now) + 1000)
      else
        redis.call('DEL', key)
      end
    end
  end
end
local cost = tonumber(ARGV[4])
local n = tonumber(ARGV[8])
for i = 1, n do
  local key = KEYS[7 + i]
  redis.call('INCRBY', key, cost)
  local ttl = tonumber(ARGV[8 + i])
  if ttl > 0 then redis.call('EXPIRE', key, ttl) end
end
for i = 9 + n, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[7], ARGV[i], ARGV[i + 1])
end
redis.call('EXPIRE', KEYS[7], 400 * 86400)
return 1

-- Settlement of finished requests that share every key below (same key, team, model and day;
-- the settler groups a batch that way, so usually one call per key per batch): release their
-- leases and budget holds, commit their summed cost to every window counter, correct the token
-- limiter by the summed (actual - estimate), and add them to the day's usage rollup. All keys
-- share the enforcement root hash tag.
--
-- KEYS: 1 key leases, 2 team leases, 3 key holds, 4 team holds, 5 key tpm, 6 team tpm,
--       7 usage rollup (day), 8.. spend window counters
-- ARGV: 1 now ms ("" = Redis TIME), 2 cost nano-USD, 3 token correction, 4 key tpm, 5 team tpm,
--       6 request ids (tab-separated), 7 hold members (tab-separated, may be empty),
--       8 counter count, then per counter its TTL in seconds (0 = none),
--       then rollup (field, increment) pairs
local PERIOD = 60000
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function split(s)
  local out = {}
  for part in string.gmatch(s, '[^\t]+') do out[#out + 1] = part end
  return out
end
local ids = split(ARGV[6])
if #ids > 0 then
  redis.call('ZREM', KEYS[1], unpack(ids))
  redis.call('ZREM', KEYS[2], unpack(ids))
end
local holds = split(ARGV[7])
if #holds > 0 then
  redis.call('ZREM', KEYS[3], unpack(holds))
  redis.call('ZREM', KEYS[4], unpack(holds))
end
local delta = tonumber(ARGV[3])
if delta ~= 0 then
  for i, limit in ipairs({tonumber(ARGV[4]), tonumber(ARGV[5])}) do
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
local cost = tonumber(ARGV[2])
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

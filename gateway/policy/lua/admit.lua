-- Admission of one request: revocation check, GCRA requests/tokens per minute for the key and
-- its team, concurrency leases, budget holds. Every key lives under one hash tag (the
-- enforcement root), so the script is Cluster-safe. Nothing is written unless every check
-- passes, so a refusal has nothing to roll back.
--
-- KEYS: 1 state hash, 2 key rpm, 3 key tpm, 4 team rpm, 5 team tpm, 6 key leases,
--       7 team leases, 8 key holds, 9 team holds, 10 release marker of this request id,
--       11.. budget window counters
-- ARGV: 1 now ms ("" = Redis TIME), 2 request id, 3 key id, 4 expected key state
--       ("" = must be absent), 5 expected team state ("-" = not checked, "" = must be absent),
--       6 key rpm, 7 key tpm, 8 team rpm, 9 team tpm, 10 key concurrency, 11 team concurrency
--       (0 = no limit), 12 lease ttl ms, 13 token estimate, 14 hold nano-USD,
--       15 budget count, then per budget: scope (1 key, 2 team), limit nano-USD
-- Returns {1, rpm limit, rpm remaining, rpm reset ms, tpm limit, tpm remaining, tpm reset ms, now}
--      or {0, limit kind, scope, limit, used, retry-after ms, budget index}
--      or {-1, "key"|"team"} when the caller's cached config is stale
--      or {-2} when the gateway already gave this admission up (release.lua ran first: it
--      timed out while Redis was stalled, and runs only now).
local PERIOD = 60000
if redis.call('EXISTS', KEYS[10]) == 1 then return {-2} end
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function state_ok(field, expected)
  if expected == '-' then return true end
  local got = redis.call('HGET', KEYS[1], field)
  if expected == '' then return not got end
  return got == expected
end
if not state_ok(ARGV[3], ARGV[4]) then return {-1, 'key'} end
if not state_ok('team', ARGV[5]) then return {-1, 'team'} end

-- GCRA: one stored value per limit, the theoretical arrival time (ms).
local function gcra(key, limit, cost)
  local interval = PERIOD / limit
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  local new_tat = tat + cost * interval
  local allow_at = new_tat - PERIOD
  local used = math.ceil((tat - now) / interval - 1e-9)
  if allow_at > now then
    return false, used, math.ceil(allow_at - now)
  end
  return true, new_tat, math.floor((now + PERIOD - new_tat) / interval + 1e-9)
end

local tokens = tonumber(ARGV[13])
local pending = {}
local best = {{0, -1, 0}, {0, -1, 0}}  -- tightest {limit, remaining, reset} for rpm, tpm
local checks = {
  {KEYS[2], tonumber(ARGV[6]), 1, 'rpm', 'key', 1},
  {KEYS[3], tonumber(ARGV[7]), tokens, 'tpm', 'key', 2},
  {KEYS[4], tonumber(ARGV[8]), 1, 'rpm', 'team', 1},
  {KEYS[5], tonumber(ARGV[9]), tokens, 'tpm', 'team', 2},
}
for _, c in ipairs(checks) do
  local limit = c[2]
  if limit > 0 then
    if c[3] > limit then
      return {0, 'tpm_too_large', c[5], limit, 0, 0, 0}
    end
    local ok, a, b = gcra(c[1], limit, c[3])
    if not ok then
      return {0, c[4], c[5], limit, a, b, 0}
    end
    pending[#pending + 1] = {c[1], a}
    local slot = best[c[6]]
    if slot[2] < 0 or b < slot[2] then
      best[c[6]] = {limit, b, math.ceil(a - now)}
    end
  end
end

local ttl = tonumber(ARGV[12])
local leases = {{KEYS[6], tonumber(ARGV[10]), 'key'}, {KEYS[7], tonumber(ARGV[11]), 'team'}}
for _, l in ipairs(leases) do
  if l[2] > 0 then
    redis.call('ZREMRANGEBYSCORE', l[1], '-inf', now)
    local n = redis.call('ZCARD', l[1])
    if n >= l[2] then
      local first = redis.call('ZRANGE', l[1], 0, 0, 'WITHSCORES')
      local wait = 1000
      if first[2] then wait = math.max(1, math.ceil(tonumber(first[2]) - now)) end
      return {0, 'concurrency', l[3], l[2], n, math.min(wait, 1000), 0}
    end
  end
end

local hold = tonumber(ARGV[14])
local nbudgets = tonumber(ARGV[15])
local held = {}
local holds_keys = {KEYS[8], KEYS[9]}
local hold_scope = {false, false}
for i = 1, nbudgets do
  local scope = tonumber(ARGV[14 + i * 2])
  local limit = tonumber(ARGV[15 + i * 2])
  if not held[scope] then
    local hk = holds_keys[scope]
    redis.call('ZREMRANGEBYSCORE', hk, '-inf', now)
    local sum = 0
    for _, m in ipairs(redis.call('ZRANGE', hk, 0, -1)) do
      sum = sum + tonumber(string.match(m, ':(%d+)$'))
    end
    held[scope] = sum
    hold_scope[scope] = true
  end
  local committed = tonumber(redis.call('GET', KEYS[10 + i])) or 0
  if committed + held[scope] + hold > limit then
    local sname = 'key'
    if scope == 2 then sname = 'team' end
    return {0, 'budget', sname, limit, committed + held[scope], 0, i}
  end
end

-- Every check passed: write.
for _, p in ipairs(pending) do
  redis.call('SET', p[1], tostring(p[2]), 'PX', math.ceil(p[2] - now) + 1000)
end
for _, l in ipairs(leases) do
  if l[2] > 0 then
    redis.call('ZADD', l[1], now + ttl, ARGV[2])
    redis.call('PEXPIRE', l[1], ttl + 60000)
  end
end
if hold > 0 then
  for scope = 1, 2 do
    if hold_scope[scope] then
      redis.call('ZADD', holds_keys[scope], now + ttl, ARGV[2] .. ':' .. ARGV[14])
      redis.call('PEXPIRE', holds_keys[scope], ttl + 60000)
    end
  end
end
return {1, best[1][1], best[1][2], best[1][3], best[2][1], best[2][2], best[2][3], now}

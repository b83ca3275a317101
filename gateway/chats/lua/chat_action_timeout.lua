-- A stale requires_action times out. ARGV: now (RFC 3339), now (epoch seconds), message.
-- Returns 1 when the chat timed out, 0 otherwise.
if redis.call('EXISTS', CHAT) == 0 or redis.call('HGET', CHAT, 'status') ~= 'requires_action' then
  return 0
end
local deadline = tonumber(redis.call('HGET', CHAT, 'action_deadline') or '0')
if deadline > tonumber(ARGV[2]) then
  return 0
end
close_pending(ARGV[3], ARGV[1])
redis.call('HSET', CHAT, 'last_error', ARGV[3])
publish(head('error') .. ',"error":{"message":' .. cjson.encode(ARGV[3]) .. ',"kind":"timeout","retryable":false}}')
set_status('error', ARGV[1])
return 1

-- End a worker's turn. ARGV: now, worker id, outcome ("done" | "requires_action" | "error" | "release"),
-- then for requires_action: pending calls JSON, deadline (epoch seconds), action_required event JSON;
-- for error: last_error, error event JSON.
-- Returns {status after, enqueue(0/1)} or {"lost", status}.
if redis.call('EXISTS', CHAT) == 0 then
  return {'lost', 'missing'}
end
local now, worker, outcome = ARGV[1], ARGV[2], ARGV[3]
local status = redis.call('HGET', CHAT, 'status')
if redis.call('HGET', CHAT, 'worker') ~= worker or (status ~= 'running' and status ~= 'waiting') then
  return {'lost', status}
end
redis.call('HDEL', CHAT, 'worker')
if outcome == 'release' and status == 'running' then
  set_status('pending', now)
  return {'pending', 1}
end
if outcome == 'requires_action' and status == 'running' then
  redis.call('HSET', CHAT, 'pending_calls', ARGV[4], 'action_deadline', ARGV[5])
  set_status('requires_action', now)
  publish(ARGV[6])
  return {'requires_action', 0}
end
if outcome == 'requires_action' then
  -- Interrupted while the dynamic calls were being recorded: close them like an interrupt does.
  redis.call('HSET', CHAT, 'pending_calls', ARGV[4])
  close_pending('Tool execution interrupted by user', now)
end
if outcome == 'error' and status == 'running' then
  redis.call('HSET', CHAT, 'last_error', ARGV[4])
  publish(ARGV[5])
  set_status('error', now)
  return {'error', 0}
end
if promote(now) then
  return {'pending', 1}
end
if status ~= 'waiting' then
  set_status('waiting', now)
end
return {'waiting', 0}

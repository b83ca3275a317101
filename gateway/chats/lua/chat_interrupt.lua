-- Interrupt. ARGV: now. Returns {status after, enqueue(0/1)} or {"missing"}.
if redis.call('EXISTS', CHAT) == 0 then
  return {'missing'}
end
local now = ARGV[1]
local status = redis.call('HGET', CHAT, 'status')
if status == 'running' then
  -- The worker sees `waiting`, persists the partial step and promotes the queue.
  set_status('waiting', now)
  return {'waiting', 0}
end
if status == 'requires_action' then
  close_pending('Tool execution interrupted by user', now)
end
if status == 'requires_action' or status == 'pending' then
  if promote(now) then
    return {'pending', 1}
  end
  set_status('waiting', now)
  return {'waiting', 0}
end
return {status, 0}

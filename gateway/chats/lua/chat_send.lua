-- Send a user message. ARGV: now, message template, queued item JSON, max queue, interrupt (0/1).
-- Returns {"missing"} | {"queue_full"} | {"queued", enqueue(0/1)} | {"sent", id}.
if redis.call('EXISTS', CHAT) == 0 then
  return {'missing'}
end
local now, template, queued, max_queue, interrupt = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5] == '1'
local status = redis.call('HGET', CHAT, 'status')
local busy = status == 'running' or status == 'pending' or status == 'requires_action'
if busy or redis.call('LLEN', QUEUE) > 0 then
  if redis.call('LLEN', QUEUE) >= max_queue then
    return {'queue_full'}
  end
  redis.call('RPUSH', QUEUE, queued)
  publish_queue()
  local enqueue = 0
  if interrupt then
    if status == 'running' then
      set_status('waiting', now)
    elseif status == 'requires_action' then
      close_pending('Tool execution interrupted by user', now)
      if promote(now) then enqueue = 1 end
    elseif status == 'pending' then
      if promote(now) then enqueue = 1 end
    end
  elseif not busy then
    if promote(now) then enqueue = 1 end
  end
  return {'queued', enqueue}
end
local id = add_message(template)
redis.call('HSET', CHAT, 'last_error', '')
mark_turn()
set_status('pending', now)
return {'sent', id}

-- A worker takes a chat. ARGV: now, worker id, takeover (0/1: the job was claimed from a dead worker).
-- Returns {"run"} or {"skip", status}.
if redis.call('EXISTS', CHAT) == 0 then
  return {'skip', 'missing'}
end
local now, worker, takeover = ARGV[1], ARGV[2], ARGV[3] == '1'
local status = redis.call('HGET', CHAT, 'status')
if status == 'pending' or (status == 'running' and (takeover or redis.call('HGET', CHAT, 'worker') == worker)) then
  redis.call('HSET', CHAT, 'worker', worker)
  if status == 'pending' then
    set_status('running', now)
  end
  return {'run'}
end
return {'skip', status}

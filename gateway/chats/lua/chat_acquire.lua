-- A worker takes a chat. ARGV: now, worker id, takeover (0/1: the job was claimed from a dead worker),
-- then for a takeover the `retry` event JSON to publish when the chat was still `running` (the dead
-- worker's partial step is dropped by clients on `retry`, and a new snapshot starts after it).
-- Returns {"run"} or {"skip", status}.
if redis.call('EXISTS', CHAT) == 0 then
  return {'skip', 'missing'}
end
local now, worker, takeover = ARGV[1], ARGV[2], ARGV[3] == '1'
local status = redis.call('HGET', CHAT, 'status')
if status == 'pending' or (status == 'running' and (takeover or redis.call('HGET', CHAT, 'worker') == worker)) then
  redis.call('HSET', CHAT, 'worker', worker)
  if status == 'pending' then
    -- The turn starts here: a client joining mid-turn gets the parts published after this.
    mark_turn()
    set_status('running', now)
  elseif takeover and ARGV[4] then
    redis.call('HSET', CHAT, 'turn_start', publish(ARGV[4]))
  end
  return {'run'}
end
return {'skip', status}

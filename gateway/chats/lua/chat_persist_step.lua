-- Persist one finished (or interrupted) step. ARGV: now, worker id, then message templates.
-- Allowed while the worker owns the chat and it is running, or was just interrupted (waiting).
-- Returns {"ok", ids...} or {"lost", status}.
if redis.call('EXISTS', CHAT) == 0 then
  return {'lost', 'missing'}
end
local worker = ARGV[2]
local status = redis.call('HGET', CHAT, 'status')
if redis.call('HGET', CHAT, 'worker') ~= worker or (status ~= 'running' and status ~= 'waiting') then
  return {'lost', status}
end
local out = {'ok'}
for i = 3, #ARGV do
  table.insert(out, add_message(ARGV[i]))
end
mark_turn()
return out

-- A worker's stream event (message parts, retries). ARGV: worker id, event JSON, "1" when the
-- event starts the turn over (a retry: a reconnecting client's snapshot starts after it).
-- Published only while that worker runs the chat: a deleted chat is not written back, and a
-- worker that lost the chat (interrupted, taken over after a stall) adds nothing to its stream.
-- Returns the event id, or false.
if redis.call('HGET', CHAT, 'status') ~= 'running' or redis.call('HGET', CHAT, 'worker') ~= ARGV[1] then
  return false
end
local id = publish(ARGV[2])
if ARGV[3] == '1' then
  redis.call('HSET', CHAT, 'turn_start', id)
end
return id

-- Submit dynamic tool results. ARGV: now, results JSON [{tool_call_id, result (JSON text) or absent, is_error}],
-- chat id for the message templates.
-- Returns {"ok"} | {"missing"} | {"conflict", status} | {"duplicate"|"missing_result"|"unexpected"|"invalid_json", id}.
if redis.call('EXISTS', CHAT) == 0 then
  return {'missing'}
end
local now = ARGV[1]
local results = cjson.decode(ARGV[2])
local status = redis.call('HGET', CHAT, 'status')
if status ~= 'requires_action' then
  return {'conflict', status}
end
local pending = cjson.decode(redis.call('HGET', CHAT, 'pending_calls') or '[]')
local pending_by_id = {}
for _, call in ipairs(pending) do
  pending_by_id[call.tool_call_id] = call
end
local seen = {}
for _, r in ipairs(results) do
  if seen[r.tool_call_id] then
    return {'duplicate', r.tool_call_id}
  end
  seen[r.tool_call_id] = true
end
for _, call in ipairs(pending) do
  if not seen[call.tool_call_id] then
    return {'missing_result', call.tool_call_id}
  end
end
for _, r in ipairs(results) do
  if not pending_by_id[r.tool_call_id] then
    return {'unexpected', r.tool_call_id}
  end
end
for _, r in ipairs(results) do
  if type(r.result) ~= 'string' then
    return {'invalid_json', r.tool_call_id}
  end
end
for _, r in ipairs(results) do
  local call = pending_by_id[r.tool_call_id]
  local err = 'false'
  if r.is_error then err = 'true' end
  local part = '{"type":"tool-result","tool_call_id":' .. cjson.encode(call.tool_call_id)
    .. ',"tool_name":' .. cjson.encode(call.tool_name) .. ',"result":' .. cjson.encode(r.result)
    .. ',"is_error":' .. err .. '}'
  add_message('{"id":0,"chat_id":' .. cjson.encode(chat_id()) .. ',"role":"tool","content":[' .. part
    .. '],"created_at":' .. cjson.encode(now) .. '}')
end
redis.call('HDEL', CHAT, 'pending_calls', 'action_deadline', 'worker')
redis.call('HSET', CHAT, 'last_error', '')
mark_turn()
set_status('pending', now)
return {'ok'}

-- Shared helpers for the chat scripts (prepended to each one when it is loaded).
-- KEYS[1] chat hash, KEYS[2] messages (sorted set by id), KEYS[3] queue (list), KEYS[4] events (stream).
-- Every key carries the chat's hash tag, so each script touches one slot.
local CHAT, MSGS, QUEUE, EVENTS = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local EVENTS_CAP = 10000

local function publish(json)
  return redis.call('XADD', EVENTS, 'MAXLEN', '~', EVENTS_CAP, '*', 'e', json)
end

local function chat_id()
  return redis.call('HGET', CHAT, 'id')
end

local function head(kind)
  return '{"type":"' .. kind .. '","chat_id":' .. cjson.encode(chat_id())
end

local function set_status(status, now)
  redis.call('HSET', CHAT, 'status', status, 'updated_at', now)
  return publish(head('status') .. ',"status":{"status":"' .. status .. '"}}')
end

-- A message template is its JSON with `{"id":0` at the front; the id is given here.
local function add_message(template)
  local id = redis.call('HINCRBY', CHAT, 'next_message_id', 1)
  local json = '{"id":' .. id .. string.sub(template, 8)
  redis.call('ZADD', MSGS, id, json)
  publish(head('message') .. ',"message":' .. json .. '}')
  return id
end

local function publish_queue()
  local items = redis.call('LRANGE', QUEUE, 0, -1)
  return publish(head('queue_update') .. ',"queued_messages":[' .. table.concat(items, ',') .. ']}')
end

local function synthetic_result(call, text, now)
  local result = cjson.encode({error = text})
  local part = '{"type":"tool-result","tool_call_id":' .. cjson.encode(call.tool_call_id)
    .. ',"tool_name":' .. cjson.encode(call.tool_name)
    .. ',"result":' .. cjson.encode(result) .. ',"is_error":true,"created_at":' .. cjson.encode(now) .. '}'
  return '{"id":0,"chat_id":' .. cjson.encode(chat_id()) .. ',"role":"tool","content":[' .. part
    .. '],"created_at":' .. cjson.encode(now) .. '}'
end

-- Close every pending dynamic call with a synthetic error result.
local function close_pending(text, now)
  local raw = redis.call('HGET', CHAT, 'pending_calls')
  if raw and raw ~= '' then
    for _, call in ipairs(cjson.decode(raw)) do
      add_message(synthetic_result(call, text, now))
    end
  end
  redis.call('HDEL', CHAT, 'pending_calls', 'action_deadline')
end

-- The oldest queued message becomes a user message; the chat goes back to pending.
-- Returns true when a message was promoted (the caller enqueues a job).
local function promote(now)
  local queued = redis.call('LPOP', QUEUE)
  if not queued then
    return false
  end
  local item = cjson.decode(queued)
  local template = '{"id":0,"chat_id":' .. cjson.encode(chat_id()) .. ',"role":"user","content":'
    .. cjson.encode(item.content) .. ',"created_at":' .. cjson.encode(now) .. '}'
  add_message(template)
  publish_queue()
  set_status('pending', now)
  return true
end

local function mark_turn()
  local last = redis.call('XREVRANGE', EVENTS, '+', '-', 'COUNT', 1)
  if last[1] then
    redis.call('HSET', CHAT, 'turn_start', last[1][1])
  end
end

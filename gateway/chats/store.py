"""Stateful chats in Redis.

Layout (``P`` is the configured key prefix, ``C`` the chat id; ``{S}`` is the chat's shard tag,
``chats:<n>`` with ``n`` fixed by the chat id (gateway/redis/keys.py), so one chat's keys share a
Cluster slot, every transition is one Lua script, and the shared event reader blocks on a
bounded number of slots):

- ``P chat:{S}:C``          hash: the chat (status, model, owner, tools, pending calls, worker...)
- ``P chat:{S}:C:msgs``     sorted set: durable messages, score = message id, member = JSON
- ``P chat:{S}:C:queue``    list: queued user messages (FIFO, at most 20)
- ``P chat:{S}:C:events``   stream: every stream event (capped at ~10 000); SSE ids are its ids
- ``P chats:owner:K``       sorted set: chat ids of gateway key ``K`` by creation time
- ``P chats:jobs``          stream + consumer group ``workers``: runs to do (one entry per turn)
- ``P chats:actions``       sorted set: chats in ``requires_action`` by deadline (stale timeout)
- ``P chats:pending``       sorted set: chats about to become (or being) ``pending``, by the
  time they were marked; written *before* the transition, so a replica that dies between the
  transition and the job's enqueue leaves a trace the reaper finds (``requeue_stale``)

The indexes (owner, jobs, actions, pending) are single keys touched one command at a time, so
they need no tag. Creating a chat writes its index entries first and its keys (one ``MULTI``)
last; deleting removes its keys first: an index may name a chat that is not (or no longer)
there, and every reader of an index skips those.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import msgspec
import redis.asyncio as aioredis

from gateway.chats.model import Chat, ChatStatus, DynamicTool, Message
from gateway.redis.keys import chat_shard

_DEC_CHAT_TOOLS = msgspec.json.Decoder(list[DynamicTool])
_DEC_STRS = msgspec.json.Decoder(list[str])
_DEC_MESSAGE = msgspec.json.Decoder(Message)
_ENC = msgspec.json.Encoder()
JOBS_GROUP = "workers"
_SCRIPTS = (
    "send",
    "interrupt",
    "tool_results",
    "acquire",
    "persist_step",
    "finish",
    "action_timeout",
    "publish",
)


def _lua(name: str) -> str:
    return (resources.files("gateway.chats") / "lua" / f"{name}.lua").read_text(encoding="utf-8")


def message_template(message: Message) -> str:
    """A message's JSON with ``{"id":0`` in front; the Lua scripts put the real id there."""
    raw = _ENC.encode(msgspec.structs.replace(message, id=0)).decode()
    assert raw.startswith('{"id":0,')
    return raw


def chat_key(prefix: str, chat_id: str) -> str:
    """The name of a chat's hash; its other keys append ``:msgs``, ``:queue``, ``:events``."""
    return f"{prefix}chat:{{{chat_shard(chat_id)}}}:{chat_id}"


def _s(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value


class ChatStore:
    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix
        prelude = _lua("chat_prelude")
        self._scripts = {
            name: redis.register_script(prelude + "\n" + _lua(f"chat_{name}")) for name in _SCRIPTS
        }
        self.jobs_key = f"{prefix}chats:jobs"
        self.actions_key = f"{prefix}chats:actions"
        self.pending_key = f"{prefix}chats:pending"
        self._unmark = redis.register_script(_UNMARK)

    # -- keys ------------------------------------------------------------------------
    def chat_key(self, chat_id: str) -> str:
        return chat_key(self.prefix, chat_id)

    def keys(self, chat_id: str) -> list[str]:
        base = self.chat_key(chat_id)
        return [base, base + ":msgs", base + ":queue", base + ":events"]

    def events_key(self, chat_id: str) -> str:
        return self.chat_key(chat_id) + ":events"

    def owner_key(self, owner: str) -> str:
        return f"{self.prefix}chats:owner:{owner}"

    async def run(self, name: str, chat_id: str, *args: str | int | float) -> list[str]:
        raw: Any = await self._scripts[name](keys=self.keys(chat_id), args=list(args))
        if isinstance(raw, list):
            return [_s(x) if not isinstance(x, int) else str(x) for x in raw]
        return [str(raw)]

    # -- chats -----------------------------------------------------------------------
    async def create(
        self, chat: Chat, owner: str, score: float, messages: list[Message], now: str
    ) -> list[Message]:
        """Write a new chat with its first messages (ids 1..n) and status ``pending``."""
        keys = self.keys(chat.id)
        mapping: dict[Any, Any] = {
            "id": chat.id,
            "owner": owner,
            "model": chat.model,
            "status": str(ChatStatus.PENDING),
            "created_at": chat.created_at,
            "updated_at": chat.updated_at,
            "title": chat.title,
            "system_prompt": chat.system_prompt or "",
            "dynamic_tools": _ENC.encode(chat.dynamic_tools).decode(),
            "mcp_servers": _ENC.encode(chat.mcp_servers).decode(),
            "last_error": "",
            "next_message_id": len(messages),
        }
        stored = [msgspec.structs.replace(m, id=i + 1) for i, m in enumerate(messages)]
        # The indexes first (other slots): a chat never exists without them.
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(self.pending_key, {chat.id: score})
            pipe.zadd(self.owner_key(owner), {chat.id: score})
            await pipe.execute()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys[0], mapping=mapping)
            for m in stored:
                pipe.zadd(keys[1], {_ENC.encode(m): m.id})
            status_event = {"type": "status", "chat_id": chat.id, "status": {"status": "pending"}}
            for m in stored:
                pipe.xadd(keys[3], {"e": _ENC.encode({"type": "message", "chat_id": chat.id, "message": m})})
            pipe.xadd(keys[3], {"e": _ENC.encode(status_event)}, maxlen=10000, approximate=True)
            await pipe.execute()
        return stored

    async def load(self, chat_id: str) -> dict[str, str] | None:
        raw: Any = await self.redis.hgetall(self.chat_key(chat_id))
        if not raw:
            return None
        return {k.decode(): v.decode() for k, v in raw.items()}

    async def owned(self, chat_id: str, owner: str) -> dict[str, str] | None:
        fields = await self.load(chat_id)
        if fields is None or fields.get("owner") != owner:
            return None
        return fields

    async def list_ids(self, owner: str) -> list[str]:
        raw: Any = await self.redis.zrevrange(self.owner_key(owner), 0, -1)
        return [r.decode() for r in raw]

    async def delete(self, chat_id: str, owner: str) -> None:
        # The chat's keys first (one slot, one command), then the indexes naming it.
        await self.redis.delete(*self.keys(chat_id))
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrem(self.owner_key(owner), chat_id)
            pipe.zrem(self.actions_key, chat_id)
            pipe.zrem(self.pending_key, chat_id)
            await pipe.execute()

    # -- messages --------------------------------------------------------------------
    async def messages(
        self, chat_id: str, *, after_id: int = 0, before_id: int | None = None, limit: int | None = None
    ) -> list[Message]:
        """Messages with after_id < id < before_id, oldest first; with ``limit`` the newest
        ``limit`` of them when paging backwards (before_id), else the oldest."""
        key = self.keys(chat_id)[1]
        low = f"({after_id}"
        high = f"({before_id}" if before_id is not None else "+inf"
        raw: Any
        if limit is not None and before_id is not None and after_id == 0:
            raw = list(reversed(await self.redis.zrevrangebyscore(key, high, low, start=0, num=limit)))
        elif limit is not None:
            raw = await self.redis.zrangebyscore(key, low, high, start=0, num=limit)
        else:
            raw = await self.redis.zrangebyscore(key, low, high)
        return [_DEC_MESSAGE.decode(r) for r in raw]

    async def queue(self, chat_id: str) -> list[bytes]:
        raw: Any = await self.redis.lrange(self.keys(chat_id)[2], 0, -1)
        return list(raw)

    # -- events ----------------------------------------------------------------------
    async def publish(
        self, chat_id: str, worker: str, event: dict[str, Any], *, starts_turn: bool = False
    ) -> str | None:
        """Add a worker's event to the chat's stream while that worker runs the chat; the event
        id, or None (the chat was deleted, interrupted or taken over: nothing is written).
        ``starts_turn``: a reconnecting client's snapshot of the turn starts after this event."""
        raw: Any = await self._scripts["publish"](
            keys=self.keys(chat_id), args=[worker, _ENC.encode(event), "1" if starts_turn else "0"]
        )
        return None if raw is None else _s(raw)

    # -- jobs ------------------------------------------------------------------------
    async def enqueue(self, chat_id: str) -> None:
        await self.redis.xadd(self.jobs_key, {"chat": chat_id}, maxlen=100000, approximate=True)

    async def mark_pending(self, chat_id: str, at: float) -> None:
        """Record that ``chat_id`` may become ``pending``; call before the transition."""
        await self.redis.zadd(self.pending_key, {chat_id: at})

    async def requeue_stale(self, now: float, older_than: float, *, batch: int = 100) -> list[str]:
        """Enqueue a job for every chat marked ``pending`` more than ``older_than`` seconds ago
        that is still ``pending`` (its job was lost, or never written); forget the marks of
        chats that moved on. Returns the chats enqueued again."""
        raw: Any = await self.redis.zrangebyscore(
            self.pending_key, "-inf", now - older_than, start=0, num=batch, withscores=True
        )
        requeued: list[str] = []
        for member, score in raw:
            chat_id = _s(member)
            status = _s(await self.redis.hget(self.chat_key(chat_id), "status"))
            if status == "pending":
                # A duplicate job is harmless: whoever acquires second skips it.
                await self.redis.zadd(self.pending_key, {chat_id: now})
                await self.enqueue(chat_id)
                requeued.append(chat_id)
            else:
                await self._unmark(keys=[self.pending_key], args=[chat_id, repr(score)])
        return requeued

    async def track_action(self, chat_id: str, deadline: float) -> None:
        await self.redis.zadd(self.actions_key, {chat_id: deadline})


# Forget a pending mark unless it was renewed since it was read.
_UNMARK = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) <= tonumber(ARGV[2]) then
  redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
"""


def chat_from_fields(fields: dict[str, str]) -> Chat:
    return Chat(
        id=fields["id"],
        model=fields["model"],
        status=ChatStatus(fields["status"]),
        created_at=fields["created_at"],
        updated_at=fields["updated_at"],
        title=fields.get("title", ""),
        system_prompt=fields.get("system_prompt") or None,
        dynamic_tools=_DEC_CHAT_TOOLS.decode(fields.get("dynamic_tools") or "[]"),
        mcp_servers=_DEC_STRS.decode(fields.get("mcp_servers") or "[]"),
        last_error=fields.get("last_error") or None,
    )

"""``GET /chats/{id}/stream``: server-sent events with ids, resumable with ``Last-Event-ID``.

Every event of a chat is an entry of its Redis event stream, so any replica can serve any
client and an event id is the entry id. On connect the client gets, read in one transaction:

- with ``Last-Event-ID`` (still in the capped stream): a ``status`` event carrying that same id,
  then every event after it, each with its own id;
- otherwise a snapshot: a ``status`` event, every durable ``message``, the ``message_part``
  events of the turn in flight, the pending ``action_required`` and a ``queue_update``;

then live events as they are added, until the chat is deleted. Live events come from the
process's shared event reader (gateway/chats/events.py): an open stream holds no Redis connection.

Ids follow what an SSE client does with them (it keeps the last ``id:`` it received and sends it
back when it reconnects), so a client that drops at any frame misses nothing. The snapshot's
status and messages carry no id: a client that drops among them reconnects as it came and gets
the snapshot again. In-flight parts carry their own ids (every durable message is older than the
turn's start), and the snapshot's last frame carries the id of the newest event it reflects.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import msgspec

from gateway.chats.errors import bad_request
from gateway.chats.events import EventHub
from gateway.chats.store import ChatStore

_ENC = msgspec.json.Encoder()
_DEC = msgspec.json.Decoder()
_STREAM_ID = re.compile(r"([0-9]{1,20})-([0-9]{1,20})")
_MAX_PART = 2**64 - 1  # a stream id is two unsigned 64-bit integers
EVENTS_CAP = 10_000  # the cap of the event stream (gateway/chats/lua/chat_prelude.lua)
KEEPALIVE = b": keep-alive\n\n"


def frame(event_id: str | None, event: dict[str, Any] | bytes) -> bytes:
    data = event if isinstance(event, bytes) else _ENC.encode(event)
    kind = str(_DEC.decode(data)["type"] if isinstance(event, bytes) else event["type"])
    head = b"" if event_id is None else b"id: " + event_id.encode() + b"\n"
    return head + b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"


def _before_or_at(a: str, b: str) -> bool:
    ams, aseq = (int(x) for x in a.split("-"))
    bms, bseq = (int(x) for x in b.split("-"))
    return (ams, aseq) <= (bms, bseq)


def resume_id(last_event_id: str | None) -> str | None:
    """The stream id to resume after (None: none given); a 400 for anything that is no stream
    id, so Redis never sees an id it refuses (which would read as storage unavailable)."""
    if not last_event_id:
        return None
    match = _STREAM_ID.fullmatch(last_event_id)
    ms, seq = (int(match[1]), int(match[2])) if match is not None else (-1, -1)
    # Nothing follows the last id of all, and Redis refuses to read after it.
    if not (0 <= ms <= _MAX_PART and 0 <= seq <= _MAX_PART) or (ms, seq) == (_MAX_PART, _MAX_PART):
        raise bad_request("Invalid Last-Event-ID.", "Last-Event-ID must be an event id this stream sent.")
    return last_event_id


async def events(
    store: ChatStore, hub: EventHub, chat_id: str, last_event_id: str | None
) -> AsyncIterator[bytes]:
    chat_key, msgs_key, queue_key, events_key = store.keys(chat_id)
    resume = resume_id(last_event_id)
    async with store.redis.pipeline(transaction=True) as pipe:
        pipe.hgetall(chat_key)
        pipe.zrange(msgs_key, 0, -1)
        pipe.lrange(queue_key, 0, -1)
        pipe.xrevrange(events_key, count=1)
        pipe.xrange(events_key, count=1)
        pipe.xlen(events_key)
        if resume:
            pipe.xrange(events_key, min=f"({resume}")
        replies: list[Any] = await pipe.execute()
    fields = {k.decode(): v.decode() for k, v in replies[0].items()}
    if not fields:
        return
    last = replies[3][0][0].decode() if replies[3] else "0-0"
    oldest = replies[4][0][0].decode() if replies[4] else "0-0"
    status = {"type": "status", "chat_id": chat_id, "status": {"status": fields["status"]}}
    # Below the cap nothing was ever trimmed, so every id (even "0-0") can be resumed from.
    if resume and (_before_or_at(oldest, resume) or replies[5] < EVENTS_CAP):
        yield frame(resume, status)
        for entry_id, entry in replies[6]:
            yield frame(entry_id.decode(), entry[b"e"])
    else:
        yield frame(None, status)
        for raw in replies[1]:
            yield frame(
                None, b'{"type":"message","chat_id":' + _ENC.encode(chat_id) + b',"message":' + raw + b"}"
            )
        turn_start = fields.get("turn_start")
        if fields["status"] == "running" and turn_start:
            parts: Any = await store.redis.xrange(events_key, min=f"({turn_start}", max=last)
            for entry_id, entry in parts:
                if b'"type":"message_part"' in entry[b"e"][:40]:
                    yield frame(entry_id.decode(), entry[b"e"])
        if fields["status"] == "requires_action" and fields.get("pending_calls"):
            calls = fields["pending_calls"].encode()
            yield frame(
                None,
                b'{"type":"action_required","chat_id":'
                + _ENC.encode(chat_id)
                + b',"action_required":{"tool_calls":'
                + calls
                + b"}}",
            )
        queued = b"[" + b",".join(replies[2]) + b"]"
        yield frame(
            last,
            b'{"type":"queue_update","chat_id":'
            + _ENC.encode(chat_id)
            + b',"queued_messages":'
            + queued
            + b"}",
        )
    # Live events: from the process's shared reader (gateway/chats/events.py), which holds no
    # connection per stream; a tick (nothing new for a while) is a keep-alive, and the following
    # ends when the chat is deleted.
    async with hub.follow(events_key, last, alive=chat_key) as follower:
        async for entry in follower:
            yield KEEPALIVE if entry is None else frame(entry[0], entry[1])

"""The chat API's operations, between the HTTP layer and the store."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from gateway.chats import requests as rq
from gateway.chats.errors import ChatApiError, bad_request, not_found
from gateway.chats.model import Chat, ChatStatus, Message, QueuedMessage, text_part
from gateway.chats.store import ChatStore, chat_from_fields, message_template
from gateway.clock import Clock
from gateway.exchange.body import parse_count
from gateway.upstream import Router
from gateway.upstream.retry import rfc3339

_ENC = msgspec.json.Encoder()
_DEC_QUEUED = msgspec.json.Decoder(QueuedMessage)
MAX_PAGE = 1000

# Admits the model work a request starts (policy: model access, limits), called with the chat's
# public model and the request id once the request is valid and before anything is queued.
Admit = Callable[[str, str], Awaitable[None]]


async def _admit_nothing(model: str, request_id: str) -> None:
    return None


class ChatService:
    def __init__(self, store: ChatStore, router: Router, clock: Clock, mcp_servers: set[str]) -> None:
        self.store = store
        self.router = router
        self.clock = clock
        self.mcp_servers = mcp_servers

    def _now(self) -> str:
        return rfc3339(self.clock.now())

    async def _chat(self, chat_id: str, owner: str) -> dict[str, str]:
        fields = await self.store.owned(chat_id, owner)
        if fields is None:
            raise not_found()
        return fields

    async def create(self, owner: str, body: bytes, admit: Admit = _admit_nothing) -> Chat:
        request = rq.decode(body, rq.CreateChatRequest)
        rq.check_create(request, known_model=self.router.knows(request.model), mcp_servers=self.mcp_servers)
        chat_id = str(uuid.uuid4())
        await admit(request.model, chat_id)
        now = self._now()
        chat = Chat(
            id=chat_id,
            model=request.model,
            status=ChatStatus.PENDING,
            created_at=now,
            updated_at=now,
            title=request.title or fallback_title(request.message),
            system_prompt=request.system_prompt,
            dynamic_tools=request.dynamic_tools,
            mcp_servers=request.mcp_servers,
            last_error=None,
        )
        messages: list[Message] = []
        if request.system_prompt:
            messages.append(
                Message(
                    id=0,
                    chat_id=chat.id,
                    role="system",
                    content=[text_part(request.system_prompt)],
                    created_at=now,
                )
            )
        messages.append(
            Message(id=0, chat_id=chat.id, role="user", content=[text_part(request.message)], created_at=now)
        )
        await self.store.create(chat, owner, self.clock.now(), messages, now)
        await self.store.enqueue(chat.id)
        return chat

    async def get(self, chat_id: str, owner: str) -> Chat:
        return chat_from_fields(await self._chat(chat_id, owner))

    async def list(self, owner: str) -> list[Chat]:
        chats = []
        for chat_id in await self.store.list_ids(owner):
            fields = await self.store.owned(chat_id, owner)
            if fields is not None:
                chats.append(chat_from_fields(fields))
        return chats

    async def delete(self, chat_id: str, owner: str) -> None:
        await self._chat(chat_id, owner)
        await self.store.delete(chat_id, owner)

    async def messages(self, chat_id: str, owner: str, query: dict[str, str]) -> dict[str, Any]:
        await self._chat(chat_id, owner)

        def number(name: str) -> int | None:
            value = query.get(name)
            if value is None:
                return None
            number = parse_count(value)
            if number is None:
                raise bad_request(f"Invalid {name}.", f"{name} must be a non-negative integer.")
            return number

        limit = number("limit")
        if limit is not None and not 1 <= limit <= MAX_PAGE:
            raise bad_request("Invalid limit.", f"limit must be between 1 and {MAX_PAGE}.")
        messages = await self.store.messages(
            chat_id, after_id=number("after_id") or 0, before_id=number("before_id"), limit=limit
        )
        queued = [_DEC_QUEUED.decode(q) for q in await self.store.queue(chat_id)]
        return {"messages": messages, "queued_messages": queued}

    async def send(
        self, chat_id: str, owner: str, body: bytes, admit: Admit = _admit_nothing
    ) -> dict[str, Any]:
        fields = await self._chat(chat_id, owner)
        request = rq.decode(body, rq.SendMessageRequest)
        rq.check_send(request)
        message_id = str(uuid.uuid4())
        await admit(fields.get("model", ""), message_id)
        now = self._now()
        message = Message(
            id=0, chat_id=chat_id, role="user", content=[text_part(request.message)], created_at=now
        )
        queued = QueuedMessage(id=message_id, content=message.content, created_at=now)
        await self.store.mark_pending(chat_id, self.clock.now())
        result = await self.store.run(
            "send",
            chat_id,
            now,
            message_template(message),
            _ENC.encode(queued).decode(),
            rq.MAX_QUEUE,
            "1" if request.busy_behavior == "interrupt" else "0",
        )
        if result[0] == "missing":
            raise not_found()
        if result[0] == "queue_full":
            raise ChatApiError(429, "Message queue is full.")
        if result[0] == "queued":
            if result[1] == "1":
                await self.store.enqueue(chat_id)
            return {"queued_message": queued, "queued": True, "warnings": []}
        await self.store.enqueue(chat_id)
        stored = msgspec.structs.replace(message, id=int(result[1]))
        return {"message": stored, "queued": False, "warnings": []}

    async def interrupt(self, chat_id: str, owner: str) -> Chat:
        await self._chat(chat_id, owner)
        await self.store.mark_pending(chat_id, self.clock.now())
        result = await self.store.run("interrupt", chat_id, self._now())
        if result[0] == "missing":
            raise not_found()
        if result[1] == "1":
            await self.store.enqueue(chat_id)
        return chat_from_fields(await self._chat(chat_id, owner))

    async def tool_results(self, chat_id: str, owner: str, body: bytes) -> None:
        fields = await self._chat(chat_id, owner)
        request = rq.decode(body, rq.ToolResultsRequest)
        if not request.results:
            raise bad_request("At least one tool result is required.")
        status = fields.get("status", "")
        if status != ChatStatus.REQUIRES_ACTION:
            raise _not_waiting(status)
        results = []
        for r in request.results:
            entry: dict[str, Any] = {"tool_call_id": r.tool_call_id, "is_error": r.is_error}
            if r.output is not msgspec.UNSET:
                entry["result"] = _ENC.encode(r.output).decode()
            results.append(entry)
        await self.store.mark_pending(chat_id, self.clock.now())
        out = await self.store.run("tool_results", chat_id, self._now(), _ENC.encode(results).decode())
        verdict = out[0]
        if verdict == "ok":
            await self.store.enqueue(chat_id)
            return
        if verdict == "missing":
            raise not_found()
        if verdict == "conflict":
            raise _not_waiting(out[1])
        call_id = out[1]
        raise {
            "duplicate": bad_request(
                "Duplicate tool_call_id in results.", f'Duplicate tool call ID "{call_id}".'
            ),
            "missing_result": bad_request(
                "Missing tool result.", f'Missing result for tool call "{call_id}".'
            ),
            "unexpected": bad_request(
                "Unexpected tool result.", f'No pending tool call with ID "{call_id}".'
            ),
            "invalid_json": bad_request(
                "Tool result output must be valid JSON.",
                f'Output for tool call "{call_id}" is not valid JSON.',
            ),
        }[verdict]


def _not_waiting(status: str) -> ChatApiError:
    return ChatApiError(
        409,
        "Chat is not waiting for tool results.",
        f'Chat status is "{status}", expected "requires_action".',
    )


def fallback_title(message: str) -> str:
    words = message.split()
    title = " ".join(words[:6])
    if len(title) > 80:
        title = title[:79] + "…"
    elif len(words) > 6:
        title += "…"
    return title or "New Chat"

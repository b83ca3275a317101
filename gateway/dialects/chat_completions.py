"""The Chat Completions upstream dialect (``POST /chat/completions``, OpenAI and compatibles).

Chat Completions requests pass through: only ``model`` (the deployment's), repaired tool
schemas and, when the gateway wants the usage, ``stream_options.include_usage`` change; a
stream is relayed byte for byte. Responses requests are translated to Chat and their answers
back (:mod:`gateway.translate`); a stateful chat's step is a Chat request as it is.
"""

from __future__ import annotations

from typing import Any

import httpx
import msgspec

from gateway.clock import Clock
from gateway.config import ProviderKind, UpstreamApi
from gateway.dialects.base import ConversationStep, Emit, ResponsesTurn, UpstreamDialect, prefilled
from gateway.dialects.translating import (
    TranslatedResponsesCall,
    TranslatingConverter,
    replayed,
    split_terminal,
)
from gateway.errors import chat_stream_error_frame, classify_stream_error
from gateway.translate import (
    ChatToResponsesStream,
    chat_request_from_responses,
    response_from_chat_completion,
)
from gateway.upstream.call import EventRole, decode_object, malformed_event
from gateway.upstream.committed import Relay, StreamFailure, StreamTruncated
from gateway.upstream.failover import Attempt
from gateway.upstream.relay import PassthroughRelay, StreamTap
from gateway.upstream.sse import DONE_FRAME, SSEEvent
from gateway.upstream.tool_schemas import repair_chat_tools

PATH = "/chat/completions"
DONE_MARKER = DONE_FRAME[:-2]
_ENCODER = msgspec.json.Encoder()


class ChatEventRoles:
    """Chat Completions chunks. A role-only first delta is harmless; content commits."""

    def role(self, event: SSEEvent) -> tuple[EventRole, dict[str, Any] | None]:
        if event.data == "[DONE]":
            return EventRole.DONE, None
        chunk = decode_object(event.data)
        if chunk is None:
            return EventRole.ERROR, None
        if "error" in chunk:
            return EventRole.ERROR, chunk
        if chunk.get("usage"):
            return EventRole.MEANINGFUL, chunk
        for choice in chunk.get("choices") or ():
            if choice.get("finish_reason"):
                return EventRole.MEANINGFUL, chunk
            delta = choice.get("delta") or {}
            if (
                delta.get("content")
                or delta.get("tool_calls")
                or delta.get("refusal")
                or delta.get("function_call")
            ):
                return EventRole.MEANINGFUL, chunk
            if delta.get("reasoning_content") or delta.get("reasoning"):
                return EventRole.MEANINGFUL, chunk
        return EventRole.HARMLESS, chunk


ROLES = ChatEventRoles()


def upstream_chat_body(data: dict[str, Any], attempt: Attempt, *, ask_usage: bool = False) -> bytes:
    """The client's request for this deployment: its model, tools repaired for the provider, and
    for OpenAI itself ``max_tokens`` sent as ``max_completion_tokens`` (OpenAI deprecated the old
    name and its reasoning models refuse it; every model of its takes the new one)."""
    if (
        "max_tokens" in data
        and attempt.upstream.kind is ProviderKind.OPENAI
        and "max_completion_tokens" not in data
    ):
        data = {
            ("max_completion_tokens" if key == "max_tokens" else key): value for key, value in data.items()
        }
    if ask_usage:
        # Policy: ask for streaming usage; the relay hides the extra chunk from this client.
        options = data.get("stream_options")
        data = {
            **data,
            "stream_options": {**(options if isinstance(options, dict) else {}), "include_usage": True},
        }
    if data.get("model") != attempt.deployment.upstream_model:
        data = {**data, "model": attempt.deployment.upstream_model}
    tools = data.get("tools")
    if isinstance(tools, list) and tools:
        repaired = repair_chat_tools(tools, attempt.upstream.schema_target)
        if repaired is not tools:
            data = {**data, "tools": repaired}
    return _ENCODER.encode(data)


class PassthroughCall:
    """A Chat Completions request relayed as it is."""

    __slots__ = ("attempt", "request", "roles")

    def __init__(self, attempt: Attempt, body: bytes) -> None:
        self.attempt = attempt
        self.request = attempt.upstream.request("POST", PATH, body)
        self.roles = ROLES

    def answer(self, content: bytes) -> bytes:
        return content

    def relay(self, clock: Clock, *, include_usage: bool, tap: StreamTap | None) -> Relay:
        upstream = self.attempt.upstream
        return PassthroughRelay(
            roles=ROLES,
            done_marker=DONE_MARKER,
            error_frames=chat_stream_error_frame,
            provider=upstream.classifier_key,
            clock=clock,
            idle_timeout=upstream.settings.timeouts.idle,
            tap=tap,
        )


class ChatChunks:
    """A Chat stream read as chunks: complete at the finish_reason with its usage, or ``[DONE]``."""

    def __init__(self, provider: str) -> None:
        self._provider = provider
        self._finish = False
        self.finished = False
        self.response_id: str | None = None

    def feed(self, event: SSEEvent, payload: dict[str, Any] | None) -> list[dict[str, Any]]:
        if event.data == "[DONE]":
            self.finished = self._finish
            return []
        chunk = payload if payload is not None else decode_object(event.data)
        if chunk is None:
            raise StreamFailure(malformed_event(self._provider))
        if "error" in chunk:
            raise StreamFailure(classify_stream_error(chunk, provider=self._provider))
        for choice in chunk.get("choices") or ():
            if choice.get("finish_reason"):
                self._finish = True
        if self._finish and chunk.get("usage"):
            self.finished = True
        return [chunk]

    def end(self) -> list[dict[str, Any]]:
        # Without [DONE] (and its usage), the answer is whole when its finish_reason arrived.
        if not (self.finished or self._finish):
            raise StreamTruncated
        self.finished = True
        return []


class ChatConversation:
    __slots__ = ("provider", "request", "roles")

    def __init__(self, request: httpx.Request, provider: str) -> None:
        self.request = request
        self.roles = ROLES
        self.provider = provider

    def reader(self, clock: Clock) -> ChatChunks:
        return ChatChunks(self.provider)


def conversation_body(
    attempt: Attempt, messages: list[dict[str, Any]], tools: list[dict[str, Any]]
) -> dict[str, Any]:
    """A stateful chat's step as a streamed Chat Completions request (usage asked for)."""
    body: dict[str, Any] = {
        "model": attempt.deployment.upstream_model,
        "messages": messages,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if tools:
        body["tools"] = list(repair_chat_tools(tools, attempt.upstream.schema_target))
    return body


def continuation_call(attempt: Attempt, chat: dict[str, Any], text: str) -> ChatConversation:
    """The rest of an answer on a Chat Completions endpoint (openai-compatible servers get the
    vLLM-style flags; OpenAI's own API knows no prefill and is never configured for it)."""
    upstream = attempt.upstream
    body = prefilled(chat, text, continue_final_message=upstream.kind is ProviderKind.OPENAI_COMPATIBLE)
    request = upstream.request("POST", PATH, upstream_chat_body(body, attempt, ask_usage=True))
    return ChatConversation(request, upstream.classifier_key)


class ChatConverter(TranslatingConverter[ChatToResponsesStream]):
    """Chat Completions chunks -> Responses events (``ChatToResponsesStream``)."""

    def event(self, event: SSEEvent, payload: dict[str, Any] | None) -> Emit:
        if event.data == "[DONE]":
            return split_terminal(self._stream.finish(completed_at=self._completed_at()))
        chunk = payload if payload is not None else decode_object(event.data)
        if chunk is None:
            raise StreamFailure(classify_stream_error({}, provider=self._provider))
        if "error" in chunk:
            raise StreamFailure(classify_stream_error(chunk, provider=self._provider))
        return split_terminal(self._stream.feed(chunk))

    def resume(self, chunk: dict[str, Any]) -> Emit:
        """A continuation's chunk, as more of the same answer."""
        return split_terminal(self._stream.feed(chunk))

    def end(self) -> Emit:
        # Without [DONE], the answer is whole only if its finish_reason arrived.
        if self._stream.finish_reason is None:
            raise StreamTruncated
        return split_terminal(self._stream.finish(completed_at=self._completed_at()))


class ChatResponsesCall(TranslatedResponsesCall):
    """A Responses request translated to Chat Completions, answers translated back."""

    def response(self, answer: dict[str, Any]) -> dict[str, Any]:
        return response_from_chat_completion(answer, **self.shell(), completed_at=self.now())

    def converter(self) -> ChatConverter:
        return ChatConverter(
            ChatToResponsesStream(**self.shell()), provider=self._provider, completed_at=self.now
        )


class ChatEndpointCalls(UpstreamDialect):
    """Chat Completions requests and continuations on the provider's Chat Completions endpoint
    (every OpenAI-style provider has one, whichever API serves its Responses requests)."""

    def chat_call(
        self, attempt: Attempt, data: dict[str, Any], *, clock: Clock, ask_usage: bool
    ) -> PassthroughCall:
        return PassthroughCall(attempt, upstream_chat_body(data, attempt, ask_usage=ask_usage))

    def continuation_call(self, attempt: Attempt, chat: dict[str, Any], text: str) -> ChatConversation:
        """On the Chat Completions endpoint even for a Responses dialect (that API has no prefill)."""
        return continuation_call(attempt, chat, text)


class ChatCompletionsDialect(ChatEndpointCalls):
    api = UpstreamApi.CHAT

    def conversation(self, attempt: Attempt, step: ConversationStep) -> ChatConversation:
        body = _ENCODER.encode(conversation_body(attempt, step.messages, step.tools))
        upstream = attempt.upstream
        return ChatConversation(upstream.request("POST", PATH, body), upstream.classifier_key)

    async def responses_call(
        self, attempt: Attempt, turn: ResponsesTurn, *, clock: Clock, native: bool
    ) -> ChatResponsesCall:
        body = await replayed(
            turn,
            lambda data, items: chat_request_from_responses(data, items, upstream_kind=attempt.upstream.kind),
        )
        body["model"] = attempt.deployment.upstream_model
        if body.get("tools"):
            body["tools"] = repair_chat_tools(body["tools"], attempt.upstream.schema_target)
        return ChatResponsesCall(
            attempt, turn, attempt.upstream.request("POST", PATH, _ENCODER.encode(body)), ROLES, clock
        )

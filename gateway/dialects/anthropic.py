"""The Anthropic Messages upstream dialect (``POST /messages``).

Messages clients pass through (:class:`MessagesPassthroughCall`: the body as the client built
it, ``anthropic-version``/``anthropic-beta`` passed on, the answer relayed as it comes, ended
by ``message_stop``). Every other client dialect is translated (:mod:`gateway.translate`): Chat Completions requests and
stateful chats' steps to Messages requests and back (answers, streams as Chat chunks);
Responses requests through Chat to Messages, and the stream back to Responses events. The
:class:`~gateway.translate.AnthropicContext` of a request carries what its answer needs (tool
ids, the structured-output tool) from the request to the answer.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import httpx
import msgspec

from gateway.clock import Clock
from gateway.config import UpstreamApi
from gateway.dialects.base import (
    ConversationStep,
    Emit,
    ResponsesTurn,
    UpstreamDialect,
    prefilled,
    translated,
)
from gateway.dialects.translating import (
    TranslatedResponsesCall,
    TranslatingConverter,
    replayed,
    split_terminal,
)
from gateway.errors import ClassifiedError, chat_stream_error_frame, classify_stream_error
from gateway.errors.anthropic import anthropic_stream_error_frame
from gateway.policy.usage import usage_from_dict
from gateway.pricing import Usage
from gateway.schema_fix import Target, repair_schema
from gateway.translate import (
    AnthropicContext,
    AnthropicToChatStream,
    AnthropicToResponsesStream,
    InbandError,
    anthropic_request_from_chat,
    anthropic_request_from_responses,
    chat_completion_from_anthropic,
    response_from_anthropic_message,
)
from gateway.upstream.call import EventRole, decode_object, malformed_event
from gateway.upstream.committed import Relay, StreamFailure, StreamTruncated
from gateway.upstream.failover import Attempt
from gateway.upstream.relay import PassthroughRelay, StreamTap
from gateway.upstream.sse import DONE_FRAME, SSEEvent, data_frame
from gateway.upstream.translating_relay import TranslatingRelay

PATH = "/messages"
COUNT_TOKENS_PATH = "/messages/count_tokens"
# A clean Messages stream ends with this event; inside a JSON string a newline is escaped, so
# only the event's own field line can match.
MESSAGE_STOP = b"event: message_stop\n"
DEFAULT_MAX_TOKENS = 4096
_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder()


class AnthropicEventRoles:
    """Messages events: message_start and ping are harmless; ``event: error`` is a failure."""

    _HARMLESS = frozenset({"message_start", "ping"})

    def role(self, event: SSEEvent) -> tuple[EventRole, dict[str, Any] | None]:
        payload = decode_object(event.data)
        if payload is None:
            return EventRole.ERROR, None
        kind = event.event if event.event != "message" else str(payload.get("type", ""))
        if kind in self._HARMLESS:
            return EventRole.HARMLESS, payload
        if kind == "error":
            return EventRole.ERROR, payload
        if kind == "message_stop":
            return EventRole.DONE, payload
        return EventRole.MEANINGFUL, payload


ROLES = AnthropicEventRoles()


def repair_for_anthropic(schema: object) -> object:
    return repair_schema(schema, Target.ANTHROPIC).schema


def completion_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex[:24]


def _kind(event: SSEEvent, payload: Mapping[str, Any]) -> str:
    return event.event if event.event != "message" else str(payload.get("type", ""))


def _payload(event: SSEEvent, payload: dict[str, Any] | None, provider: str) -> dict[str, Any]:
    data = payload if payload is not None else decode_object(event.data)
    if data is None:
        raise StreamFailure(malformed_event(provider))
    return data


def anthropic_body(
    chat: dict[str, Any], upstream_model: str, context: AnthropicContext, max_tokens: int = DEFAULT_MAX_TOKENS
) -> bytes:
    request = translated(
        lambda: anthropic_request_from_chat(
            chat,
            upstream_model=upstream_model,
            default_max_tokens=max_tokens,
            schema_repair=repair_for_anthropic,
            context=context,
        )
    )
    return _ENCODER.encode(request)


# -- Chat Completions clients ------------------------------------------------------------------


class AnthropicToChatTranslator:
    """Anthropic stream events in, Chat Completions SSE frames out."""

    def __init__(
        self, *, model: str, created: int, include_usage: bool, provider: str, context: AnthropicContext
    ) -> None:
        self._stream = AnthropicToChatStream(
            model=model, completion_id=completion_id(), created=created, context=context
        )
        self._include_usage = include_usage
        self._provider = provider
        self._usage_seen = False

    @property
    def usage(self) -> Usage | None:
        """What Anthropic reported so far (message_start, then message_delta); None before any."""
        return usage_from_dict(self._stream.usage) if self._usage_seen else None

    def event(self, event: SSEEvent) -> bytes:
        try:
            payload = _DECODER.decode(event.data)
        except msgspec.DecodeError:
            raise StreamFailure(malformed_event(self._provider)) from None
        if not isinstance(payload, dict):
            raise StreamFailure(malformed_event(self._provider))
        kind = _kind(event, payload)
        if kind == "message_start" or kind == "message_delta":
            self._usage_seen = True
        try:
            chunks = self._stream.feed(kind, payload)
        except InbandError as inband:
            raise StreamFailure(classify_stream_error(inband.payload, provider=self._provider)) from None
        return b"".join(data_frame(_ENCODER.encode(chunk)) for chunk in chunks)

    def end(self) -> bytes:
        if not self._stream.finished:
            raise StreamTruncated
        tail = data_frame(_ENCODER.encode(self._stream.usage_chunk())) if self._include_usage else b""
        return tail + DONE_FRAME

    def failure(self, classified: ClassifiedError) -> bytes:
        return chat_stream_error_frame(classified)


class AnthropicChatCall:
    """A Chat Completions request translated to Messages; answers translated back."""

    def __init__(self, attempt: Attempt, data: dict[str, Any], clock: Clock) -> None:
        self._attempt = attempt
        self._clock = clock
        self._context = AnthropicContext()
        body = anthropic_body(data, attempt.deployment.upstream_model, self._context)
        self.request = attempt.upstream.request("POST", PATH, body)
        self.roles = ROLES

    def answer(self, content: bytes) -> bytes:
        completion = chat_completion_from_anthropic(
            _DECODER.decode(content),
            model=self._attempt.deployment.upstream_model,
            completion_id=completion_id(),
            created=int(self._clock.now()),
            context=self._context,
        )
        return _ENCODER.encode(completion)

    def relay(self, clock: Clock, *, include_usage: bool, tap: StreamTap | None) -> Relay:
        upstream = self._attempt.upstream
        translator = AnthropicToChatTranslator(
            model=self._attempt.deployment.upstream_model,
            created=int(clock.now()),
            include_usage=include_usage,
            provider=upstream.classifier_key,
            context=self._context,
        )
        return TranslatingRelay(
            translator=translator,
            provider=upstream.classifier_key,
            clock=clock,
            idle_timeout=upstream.settings.timeouts.idle,
        )


# -- stateful chats ----------------------------------------------------------------------------


class AnthropicChunks:
    """Messages events read as Chat chunks; the usage chunk follows ``message_stop``."""

    def __init__(self, stream: AnthropicToChatStream, provider: str) -> None:
        self._stream = stream
        self._provider = provider
        self.finished = False
        self.response_id: str | None = None

    def feed(self, event: SSEEvent, payload: dict[str, Any] | None) -> list[dict[str, Any]]:
        data = _payload(event, payload, self._provider)
        try:
            chunks = self._stream.feed(_kind(event, data), data)
        except InbandError as inband:
            raise StreamFailure(classify_stream_error(inband.payload, provider=self._provider)) from None
        if self._stream.finished and not self.finished:
            self.finished = True
            chunks.append(self._stream.usage_chunk())
        return chunks

    def end(self) -> list[dict[str, Any]]:
        if not self.finished:
            raise StreamTruncated
        return []


def chat_chunks(attempt: Attempt, clock: Clock, context: AnthropicContext) -> AnthropicChunks:
    """A Messages stream read as Chat chunks of a completion made now."""
    stream = AnthropicToChatStream(
        model=attempt.deployment.upstream_model,
        completion_id=completion_id(),
        created=int(clock.now()),
        context=context,
    )
    return AnthropicChunks(stream, attempt.upstream.classifier_key)


class AnthropicConversation:
    def __init__(
        self,
        attempt: Attempt,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        *,
        chat: dict[str, Any] | None = None,
    ) -> None:
        """A conversation in ``messages`` and ``tools``, or a whole Chat request ``chat``."""
        self._attempt = attempt
        self._context = AnthropicContext()
        if chat is None:
            chat = {"messages": messages, "stream": True}
            if tools:
                chat["tools"] = tools
        body = anthropic_body(chat, attempt.deployment.upstream_model, self._context)
        self.request = attempt.upstream.request("POST", PATH, body)
        self.roles = ROLES

    def reader(self, clock: Clock) -> AnthropicChunks:
        return chat_chunks(self._attempt, clock, self._context)


# -- Responses clients -------------------------------------------------------------------------


class AnthropicConverter(TranslatingConverter[AnthropicToResponsesStream]):
    """Anthropic Messages events -> Responses events (through Chat chunks)."""

    def event(self, event: SSEEvent, payload: dict[str, Any] | None) -> Emit:
        data = payload if payload is not None else decode_object(event.data)
        if data is None:
            raise StreamFailure(classify_stream_error({}, provider=self._provider))
        try:
            events = self._stream.feed(_kind(event, data), data)
        except InbandError as failed:
            raise StreamFailure(classify_stream_error(failed.payload, provider=self._provider)) from None
        if self._stream.finished:
            events.extend(self._stream.finish(completed_at=self._completed_at()))
        return split_terminal(events)


class AnthropicResponsesCall(TranslatedResponsesCall):
    """A Responses request translated to Messages (through Chat), answers translated back;
    ``context`` carries what the answer needs from the request."""

    def __init__(
        self, attempt: Attempt, turn: ResponsesTurn, body: bytes, context: AnthropicContext, clock: Clock
    ) -> None:
        super().__init__(attempt, turn, attempt.upstream.request("POST", PATH, body), ROLES, clock)
        self._context = context

    def response(self, answer: dict[str, Any]) -> dict[str, Any]:
        return response_from_anthropic_message(
            answer, **self.shell(), context=self._context, completed_at=self.now()
        )

    def converter(self) -> AnthropicConverter:
        stream = AnthropicToResponsesStream(**self.shell(), context=self._context)
        return AnthropicConverter(stream, provider=self._provider, completed_at=self.now)


class AnthropicDialect(UpstreamDialect):
    api = UpstreamApi.ANTHROPIC

    def chat_call(
        self, attempt: Attempt, data: dict[str, Any], *, clock: Clock, ask_usage: bool
    ) -> AnthropicChatCall:
        return AnthropicChatCall(attempt, data, clock)

    def conversation(self, attempt: Attempt, step: ConversationStep) -> AnthropicConversation:
        return AnthropicConversation(attempt, step.messages, step.tools)

    async def responses_call(
        self, attempt: Attempt, turn: ResponsesTurn, *, clock: Clock, native: bool
    ) -> AnthropicResponsesCall:
        context = AnthropicContext()
        body = await replayed(
            turn,
            lambda data, items: anthropic_request_from_responses(
                data,
                items,
                upstream_model=attempt.deployment.upstream_model,
                default_max_tokens=turn.anthropic_max_tokens,
                schema_repair=repair_for_anthropic,
                context=context,
            ),
        )
        return AnthropicResponsesCall(attempt, turn, _ENCODER.encode(body), context, clock)

    def continuation_call(self, attempt: Attempt, chat: dict[str, Any], text: str) -> AnthropicConversation:
        """The rest of an answer by prefill: the partial answer is the last (assistant) turn."""
        return AnthropicConversation(
            attempt, [], [], chat=prefilled(chat, text, continue_final_message=False)
        )


# -- Messages clients ----------------------------------------------------------------------------


def passed_headers(attempt: Attempt, client: Mapping[str, str]) -> dict[str, str]:
    """The client's ``anthropic-version``, and its ``anthropic-beta`` flags added to the
    provider's own."""
    headers: dict[str, str] = {}
    version = client.get("anthropic-version")
    if version:
        headers["anthropic-version"] = version
    beta = client.get("anthropic-beta")
    if beta:
        flags = list(attempt.upstream.settings.anthropic_beta)
        flags += [f for f in (part.strip() for part in beta.split(",")) if f and f not in flags]
        headers["anthropic-beta"] = ",".join(flags)
    return headers


class MessagesRequest:
    """A Messages client's request on a Messages upstream: ``body`` as given, with the client's
    headers passed on (:func:`passed_headers`)."""

    __slots__ = ("attempt", "request", "roles")

    def __init__(self, attempt: Attempt, body: bytes, client_headers: Mapping[str, str]) -> None:
        self.attempt = attempt
        headers = passed_headers(attempt, client_headers)
        self.request = attempt.upstream.request("POST", PATH, body, headers=headers)
        self.roles = ROLES


class MessagesPassthroughCall(MessagesRequest):
    """A Messages request on a Messages upstream: ``body`` as given, the answer as it comes."""

    __slots__ = ()

    def relay(self, clock: Clock, *, tap: StreamTap | None) -> Relay:
        upstream = self.attempt.upstream
        return PassthroughRelay(
            roles=ROLES,
            done_marker=MESSAGE_STOP,
            error_frames=anthropic_stream_error_frame,
            provider=upstream.classifier_key,
            clock=clock,
            idle_timeout=upstream.settings.timeouts.idle,
            tap=tap,
        )


def messages_call(
    attempt: Attempt, body: bytes, client_headers: Mapping[str, str]
) -> MessagesPassthroughCall:
    return MessagesPassthroughCall(attempt, body, client_headers)


class MessagesContinuation(MessagesRequest):
    """The rest of a Messages client's answer on a Messages upstream: ``body`` (the client's
    request with the partial answer as its last, assistant, turn) with the client's headers,
    read back as Chat chunks like any continuation."""

    __slots__ = ()

    def reader(self, clock: Clock) -> AnthropicChunks:
        return chat_chunks(self.attempt, clock, AnthropicContext())


def count_tokens_request(attempt: Attempt, body: bytes, client_headers: Mapping[str, str]) -> httpx.Request:
    """``POST /messages/count_tokens`` with the client's body (its model already set)."""
    return attempt.upstream.request(
        "POST", COUNT_TOKENS_PATH, body, headers=passed_headers(attempt, client_headers)
    )

"""``POST /v1/messages``: the Anthropic Messages ingress, one more adapter on the exchange.

Policy, plan, failover, commit point, metrics and settlement are the
:class:`~gateway.exchange.Exchange`'s, as on every route; what is particular is the upstream
call of one attempt, chosen by what the deployment speaks:

* **Anthropic Messages**: the client's bytes go through with only ``model`` replaced
  (:mod:`.passthrough`), ``anthropic-version`` and ``anthropic-beta`` passed on, and the answer
  (JSON or stream) comes back as the upstream's bytes; a usage tap reads the stream going by.
* **anything else**: the request is translated once into the canonical Chat Completions request
  and sent through the deployment's dialect as a Chat client's would be; the answer is
  translated back (:mod:`gateway.translate.messages_answer`, :class:`.relay.MessagesRelay`).

Errors are answered in Anthropic's envelope (the exchange's ``anthropic`` error dialect). A
stream that breaks after its commit point may be continued on another deployment
(:mod:`.continuation`).
"""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.config import ProviderKind, UpstreamApi
from gateway.dialects import dialect_for
from gateway.dialects.anthropic import messages_call
from gateway.dialects.base import translated
from gateway.errors.client import InvalidRequest
from gateway.exchange import ClientChannel, Exchange
from gateway.messages.continuation import MessagesContinuer
from gateway.messages.passthrough import with_model
from gateway.messages.relay import MessagesRelay
from gateway.messages.request import MessagesRequest, parse_messages_request
from gateway.messages.usage import AnthropicUsageTap, usage_from_message
from gateway.policy.usage import StreamUsageTap, usage_from_body
from gateway.pricing import Usage
from gateway.services import Services
from gateway.telemetry.tracing import response_model
from gateway.token_estimate import estimate_chat_tokens
from gateway.translate.messages_answer import message_from_chat_completion
from gateway.translate.messages_chat import (
    MessagesContext,
    chat_request_from_messages,
    context_of,
    for_compatible_server,
)
from gateway.translate.messages_stream import ChatToMessagesStream
from gateway.upstream.call import OpenedStream, call_json, open_stream
from gateway.upstream.committed import Relay
from gateway.upstream.failover import Attempt

ROUTE = "/v1/messages"
_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder()
PASSED_HEADERS = (b"anthropic-version", b"anthropic-beta")
TOO_LONG = "context_length_exceeded"


class Message:
    """A whole answer, as sent to the client."""

    __slots__ = ("_model", "_usage", "body")

    def __init__(self, body: bytes, usage: Usage | None, model: str | None) -> None:
        self.body = body
        self._usage = usage
        self._model = model

    def usage(self) -> Usage | None:
        return self._usage

    def model(self) -> str | None:
        return self._model


def client_headers(channel: ClientChannel) -> dict[str, str]:
    """The Anthropic headers the client sent that an Anthropic upstream should see."""
    out: dict[str, str] = {}
    for name in PASSED_HEADERS:
        value = channel.header(name)
        if value:
            out[name.decode()] = value
    return out


def estimate_messages_tokens(data: dict[str, Any]) -> int:
    """The prompt's estimated tokens (``system``, ``messages``, ``tools``), at least 1."""
    system = data.get("system")
    messages = data.get("messages") or []
    prompt = [{"role": "system", "content": system}, *messages] if system else messages
    return max(1, estimate_chat_tokens({"messages": prompt, "tools": data.get("tools")}))


def prompt_too_long(services: Services, model: str, tokens: int) -> InvalidRequest:
    """The gateway's own context-window refusal, in Anthropic's words."""
    windows = [w for w in (services.catalog.window(d) for d in services.router.plan(model)) if w]
    return InvalidRequest(f"prompt is too long: about {tokens} tokens > {windows[0]} maximum", code=TOO_LONG)


def is_native(attempt: Attempt) -> bool:
    return attempt.deployment.api is UpstreamApi.ANTHROPIC


class MessagesCalls:
    """One request's upstream calls."""

    __slots__ = ("_chat", "_compatible", "_estimate", "context", "headers", "request", "services")

    def __init__(self, services: Services, request: MessagesRequest, headers: dict[str, str]) -> None:
        self.services = services
        self.request = request
        self.headers = headers
        self.context: MessagesContext = context_of(request.data)
        self._chat: dict[str, Any] | None = None
        self._compatible: dict[str, Any] | None = None
        self._estimate: int | None = None

    def estimate(self) -> int:
        if self._estimate is None:
            self._estimate = estimate_messages_tokens(self.request.data)
        return self._estimate

    def chat(self) -> dict[str, Any]:
        """The canonical Chat Completions request (translated once, on first need)."""
        if self._chat is None:
            request = self.request
            self._chat = translated(lambda: chat_request_from_messages(request.data, stream=request.stream))
        return self._chat

    def chat_for(self, attempt: Attempt) -> dict[str, Any]:
        """:meth:`chat` as this attempt's upstream takes it."""
        if (
            attempt.deployment.api is not UpstreamApi.CHAT
            or attempt.upstream.kind is not ProviderKind.OPENAI_COMPATIBLE
        ):
            return self.chat()
        if self._compatible is None:
            self._compatible = for_compatible_server(self.chat(), self.request.data)
        return self._compatible

    def _native_body(self, attempt: Attempt) -> bytes:
        return with_model(self.request.body, self.request.raw, attempt.deployment.upstream_model)

    async def json(self, attempt: Attempt) -> Message:
        clock = self.services.clock
        if is_native(attempt):
            call = messages_call(attempt, self._native_body(attempt), self.headers)
            response = await call_json(attempt, call.request, clock)
            usage, model = usage_from_message(response.content)
            return Message(response.content, usage, model)
        chat_call = dialect_for(attempt.deployment.api).chat_call(
            attempt, self.chat_for(attempt), clock=clock, ask_usage=False
        )
        response = await call_json(attempt, chat_call.request, clock)
        completion = chat_call.answer(response.content)
        message = message_from_chat_completion(
            _DECODER.decode(completion),
            context=self.context,
            model=self.request.model,
            estimate=self.estimate(),
        )
        return Message(_ENCODER.encode(message), usage_from_body(completion), response_model(completion))

    async def stream(self, attempt: Attempt) -> tuple[OpenedStream, Relay]:
        clock = self.services.clock
        policy = self.services.policy
        if is_native(attempt):
            call = messages_call(attempt, self._native_body(attempt), self.headers)
            opened = await open_stream(attempt, call.request, call.roles, clock)
            return opened, call.relay(clock, tap=AnthropicUsageTap())
        # The usage chunk closes the message's usage; a provider that refuses stream_options has none.
        ask = attempt.upstream.name not in policy.config.no_stream_options_providers
        chat_call = dialect_for(attempt.deployment.api).chat_call(
            attempt, self.chat_for(attempt), clock=clock, ask_usage=ask
        )
        opened = await open_stream(attempt, chat_call.request, chat_call.roles, clock)
        tap = StreamUsageTap(strip=False) if policy.enabled else None
        inner = chat_call.relay(clock, include_usage=True, tap=tap)
        stream = ChatToMessagesStream(
            model=attempt.deployment.upstream_model, input_tokens=self.estimate(), context=self.context
        )
        return opened, MessagesRelay(inner, stream, clock)


async def handle(services: Services, channel: ClientChannel) -> None:
    async with Exchange(services, channel, route=ROUTE, error_api="anthropic") as exchange:
        caller = await exchange.authenticate(admits=True)
        body = await exchange.read_body()
        request = parse_messages_request(body)
        calls = MessagesCalls(services, request, client_headers(channel))
        first = services.router.plan(request.model)[:1]
        if first and first[0].api is not UpstreamApi.ANTHROPIC:
            calls.chat()  # a request the upstream cannot take is refused before any limit is spent
        await exchange.admit(
            caller,
            model=request.model,
            body_size=len(body),
            max_tokens=request.max_tokens,
            stream=request.stream,
        )
        try:
            plan = exchange.plan(request.model, calls.estimate, param="messages")
        except InvalidRequest as refused:
            if refused.code != TOO_LONG:
                raise
            raise prompt_too_long(services, request.model, calls.estimate()) from None
        async with exchange.upstream():
            if request.stream:
                continuer = MessagesContinuer(request.data, calls.headers, calls.chat, calls.context)
                await exchange.stream(plan, calls.stream, continuer=continuer)
            else:
                await exchange.send_json(await exchange.json(plan, calls.json))

"""Continuing a Responses stream that broke after its commit point (the exchange's rescue).

The partial answer is the text of the ``response.output_text.delta`` events the client received;
a function call in it makes it not continuable (see :mod:`gateway.exchange.rescue`). The rest
arrives as Chat chunks and is fed to the broken stream's own converter, so it becomes more of the
same message item (same ids, sequence numbers that go on) and the final ``response.completed``
carries the whole text; the relay records it before the client sees it. Only a converter that
takes Chat chunks can be resumed: a stream from a Responses upstream (whose events are passed
through) is not continued.
"""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.dialects import ConversationCall, Resumable
from gateway.dialects.base import translated
from gateway.exchange.rescue import FirstText, Partial, Splice
from gateway.policy.usage import usage_from_dict
from gateway.pricing import Usage
from gateway.responses.stream import ResponsesRelay
from gateway.responses.upstreams import Turn
from gateway.translate import chat_request_from_responses
from gateway.upstream.committed import Relay, SendChunk
from gateway.upstream.failover import Attempt

_DECODER = msgspec.json.Decoder()


def responses_partial(sent: bytes) -> Partial | None:
    """The text of the Responses events the client received (None: a function call in it)."""
    text: list[str] = []
    for line in sent.split(b"\n"):
        if not line.startswith(b"data:"):
            continue
        try:
            event = _DECODER.decode(line[5:].strip())
        except msgspec.DecodeError:
            continue
        if not isinstance(event, dict):
            continue
        kind = event.get("type")
        if kind == "response.output_text.delta":
            text.append(str(event.get("delta") or ""))
        elif kind == "response.output_item.added" and (event.get("item") or {}).get("type") not in (
            "message",
            "reasoning",
        ):
            return None  # a function call: not continued
    return Partial("".join(text), {})


class ResponsesSplice:
    def __init__(self, partial: Partial, relay: ResponsesRelay, converter: Resumable) -> None:
        self._relay = relay
        self._converter = converter
        self._text = FirstText(partial)
        self.usage: Usage | None = None

    async def feed(self, chunks: list[dict[str, Any]], send: SendChunk) -> None:
        for chunk in chunks:
            usage = chunk.get("usage")
            if isinstance(usage, dict):
                self.usage = usage_from_dict(usage) or self.usage
            for choice in chunk.get("choices") or ():
                delta = choice.get("delta") or {}
                piece = delta.get("content")
                if isinstance(piece, str) and piece:
                    delta["content"] = self._text(piece)
                delta.pop("role", None)
                delta.pop("reasoning_content", None)
                delta.pop("reasoning", None)
            await self._relay.emit(self._converter.resume(chunk), send)

    async def end(self, send: SendChunk) -> None:
        await self._relay.emit(self._converter.end(), send)


class ResponsesContinuer:
    """Continues a Responses client's stream when its converter takes Chat chunks."""

    native_api = None

    def __init__(self, turn: Turn) -> None:
        self._turn = turn

    def native_call(self, attempt: Attempt, text: str) -> ConversationCall:
        raise NotImplementedError  # every deployment takes the Chat request

    def partial(self, sent: bytes, relay: Relay) -> Partial | None:
        if not (isinstance(relay, ResponsesRelay) and isinstance(relay.converter, Resumable)):
            return None
        return responses_partial(sent)

    async def chat(self) -> dict[str, Any]:
        turn = self._turn
        items = await turn.replay_input(for_responses=False)
        return translated(lambda: chat_request_from_responses(turn.data, items))

    def splice(self, partial: Partial, relay: Relay) -> Splice:
        assert isinstance(relay, ResponsesRelay)
        converter = relay.converter
        assert isinstance(converter, Resumable)
        return ResponsesSplice(partial, relay, converter)

"""Continuing a Messages stream that broke after its commit point (the exchange's rescue).

The partial answer is read from the Anthropic events the client received, whatever the upstream
was (a Claude stream passed through, or another dialect's stream translated): the text of its
``text`` blocks, the message's usage from ``message_start``, how many content blocks were
opened and which one is still open. It cannot be continued when it holds a block other than
text or thinking (a ``tool_use`` or a server tool's block: their input cannot be prefilled, and
restarting them would hand the client a second copy), when the cut fell inside a thinking block
(its signature never came, so the client could not send the block back), or when the message
had already ended (``message_delta``).

The rest is asked of a Claude deployment with the client's own request (only ``model`` changed,
``thinking`` removed: Anthropic refuses a prefill with thinking on, ``stream`` on) and the
partial text, trailing whitespace removed, as the last assistant turn, the client's
``anthropic-version`` and ``anthropic-beta`` passed on: whatever the client's request holds
(``cache_control``, server tools, thinking blocks of earlier turns) reaches it as it would have.
Other deployments get the request translated to Chat Completions and prefilled there
(:mod:`gateway.exchange.rescue`). Either way the rest is read as Chat chunks and written as more
of the same message: no second ``message_start``; text goes on in the open text block (same index),
anything else in new blocks numbered after the client's; an open block is closed before a
block of another kind; then ``message_delta`` and ``message_stop``. The continuation's reasoning
is left out (the client already saw the first attempt's, and a thinking block without its
signature could not be sent back). The ``message_delta`` usage is the whole message's: the
prompt as ``message_start`` reported it, and as output the first part's tokens (estimated from
its text) plus the continuation's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from gateway.config import UpstreamApi
from gateway.dialects import ConversationCall
from gateway.dialects.anthropic import MessagesContinuation
from gateway.exchange.rescue import FirstText, Partial, Splice
from gateway.policy.usage import usage_from_dict
from gateway.pricing import Usage
from gateway.token_estimate import text_tokens
from gateway.translate.messages_chat import MessagesContext
from gateway.translate.messages_stream import ChatToMessagesStream, encode_events
from gateway.upstream.committed import Relay, SendChunk
from gateway.upstream.failover import Attempt
from gateway.upstream.sse import SSEDecoder

_DECODER = msgspec.json.Decoder()
_ENCODER = msgspec.json.Encoder()
# Blocks a partial answer may hold; any other (tool_use, server tools' blocks) is not continued.
_CONTINUABLE_BLOCKS = frozenset({"text", "thinking", "redacted_thinking"})
_USAGE_FIELDS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


def messages_partial(sent: bytes) -> Partial | None:
    """The answer in the Messages events the client received (None: not continuable).

    ``head`` holds ``blocks`` (how many content blocks were opened), ``open`` (the index of the
    text block still open, or None) and ``usage`` (``message_start``'s)."""
    decoder = SSEDecoder()
    text: list[str] = []
    kinds: dict[int, str] = {}
    open_index: int | None = None
    usage: dict[str, Any] | None = None
    for event in [*decoder.feed(sent), *decoder.flush()]:
        try:
            payload = _DECODER.decode(event.data)
        except msgspec.DecodeError:
            continue
        if not isinstance(payload, dict):
            continue
        kind = payload.get("type") or event.event
        index = payload.get("index")
        if kind == "message_start":
            message = payload.get("message") or {}
            usage = dict(message.get("usage") or {})
        elif kind == "content_block_start" and isinstance(index, int):
            block = payload.get("content_block") or {}
            block_type = block.get("type")
            if block_type not in _CONTINUABLE_BLOCKS:
                return None
            kinds[index] = block_type
            open_index = index
            if block_type == "text" and isinstance(block.get("text"), str):
                text.append(block["text"])
        elif kind == "content_block_delta" and isinstance(index, int) and kinds.get(index) == "text":
            delta = payload.get("delta") or {}
            if delta.get("type") == "text_delta" and isinstance(delta.get("text"), str):
                text.append(delta["text"])
        elif kind == "content_block_stop" and index == open_index:
            open_index = None
        elif kind in ("message_delta", "message_stop"):
            return None  # the message was over
    if usage is None or (open_index is not None and kinds[open_index] != "text"):
        return None
    head = {"blocks": max(kinds) + 1 if kinds else 0, "open": open_index, "usage": usage}
    return Partial("".join(text), head)


class MessagesSplice:
    """Continuation chunks as the rest of the client's Messages stream (see the module)."""

    def __init__(self, partial: Partial, context: MessagesContext) -> None:
        head = partial.head
        # Thinking off: the continuation's reasoning is not shown.
        quiet = MessagesContext(stop_sequences=context.stop_sequences)
        self._stream = ChatToMessagesStream(model="", input_tokens=1, context=quiet)
        self._next: int = head["blocks"]  # the index of the next new block
        self._open: int | None = head["open"]  # the client's open text block, ours to close
        self._index: dict[int, int] = {}  # the continuation's block indexes -> the client's
        self._prompt = {k: int(head["usage"].get(k) or 0) for k in _USAGE_FIELDS}
        self._first_output = text_tokens(partial.text)
        self._text = FirstText(partial)
        self.usage: Usage | None = None

    async def feed(self, chunks: list[dict[str, Any]], send: SendChunk) -> None:
        events: list[dict[str, Any]] = []
        for chunk in chunks:
            usage = chunk.get("usage")
            if isinstance(usage, dict):
                self.usage = usage_from_dict(usage) or self.usage
            for choice in chunk.get("choices") or ():
                delta = choice.get("delta") or {}
                piece = delta.get("content")
                if isinstance(piece, str) and piece:
                    delta["content"] = self._text(piece)
            events.extend(self._stream.feed(chunk))
        out = self._rewrite(events)
        if out:
            await send(encode_events(out))

    async def end(self, send: SendChunk) -> None:
        await send(encode_events(self._rewrite(self._stream.finish())))

    async def release(self, relay: Relay, send: SendChunk) -> None:
        await relay.release(send)  # ``event: error`` needs no numbering

    def _close_ours(self, out: list[dict[str, Any]]) -> None:
        if self._open is not None:
            out.append({"type": "content_block_stop", "index": self._open})
            self._open = None

    def _rewrite(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for event in events:
            kind = event["type"]
            if kind == "message_start":
                continue
            if kind == "content_block_start":
                index = event["index"]
                if self._open is not None and not self._index and event["content_block"]["type"] == "text":
                    self._index[index] = self._open  # the text goes on in the client's block
                    self._open = None
                    continue
                self._close_ours(out)
                self._index[index] = self._next
                self._next += 1
                event["index"] = self._index[index]
            elif kind in ("content_block_delta", "content_block_stop"):
                event["index"] = self._index[event["index"]]
            elif kind == "message_delta":
                self._close_ours(out)
                output = int((event.get("usage") or {}).get("output_tokens") or 0)
                event["usage"] = {**self._prompt, "output_tokens": self._first_output + output}
            out.append(event)
        return out


def prefilled_messages(data: Mapping[str, Any], model: str, text: str) -> bytes:
    """The Messages request ``data`` for ``model`` asking for the rest of an answer that starts
    with ``text`` (see the module)."""
    body = {k: v for k, v in data.items() if k != "thinking"}
    body["model"] = model
    body["stream"] = True
    prefix = text.rstrip()
    if prefix:
        body["messages"] = [*data.get("messages", ()), {"role": "assistant", "content": prefix}]
    return _ENCODER.encode(body)


class MessagesContinuer:
    """Continues a Messages client's stream, whatever the upstream dialects."""

    native_api = UpstreamApi.ANTHROPIC

    def __init__(
        self,
        data: dict[str, Any],
        headers: Mapping[str, str],
        chat: Callable[[], dict[str, Any]],
        context: MessagesContext,
    ) -> None:
        self._data = data
        self._headers = headers
        self._chat = chat
        self._context = context

    def native_call(self, attempt: Attempt, text: str) -> ConversationCall:
        body = prefilled_messages(self._data, attempt.deployment.upstream_model, text)
        return MessagesContinuation(attempt, body, self._headers)

    def partial(self, sent: bytes, relay: Relay) -> Partial | None:
        return messages_partial(sent)

    async def chat(self) -> dict[str, Any]:
        return self._chat()

    def splice(self, partial: Partial, relay: Relay) -> Splice:
        return MessagesSplice(partial, self._context)

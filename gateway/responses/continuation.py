"""Continuing a Responses stream that broke after its commit point (the exchange's rescue).

The partial answer is the text of the ``response.output_text.delta`` events the client received;
a function call in it makes it not continuable (see :mod:`gateway.exchange.rescue`). The rest is
asked for with the request translated to Chat Completions (a Responses upstream has no prefill,
so a Chat or Anthropic deployment continues) and arrives as Chat chunks. It becomes more of the
same answer: the text goes on in the same message item (same item id, output index and content
index), sequence numbers go on from the client's last, and the final ``response.completed``
carries every output item with the whole text; the relay records it before the client sees it.
How the rest is written depends on the broken stream's converter:

* one that takes Chat chunks (a Chat Completions upstream's) is fed the rest itself
  (:class:`ResponsesSplice`): its state is the answer's;
* any other (a Responses upstream's events passed through, an Anthropic upstream's translated)
  is left as it is, and the rest is translated by a new converter whose events are renumbered
  into the client's answer (:class:`ResponsesTail`), from the state read back from the events
  the client received. Such a partial is not continued when the cut fell inside an item other
  than a message (a reasoning item still open: its parts cannot be closed for the upstream) or
  inside a refusal. The broken upstream's own id is dropped: the record is not chained to
  natively (the upstream never finished that response); a follow-up replays it.
"""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.dialects import ConversationCall, Emit, Resumable, failure_events
from gateway.dialects.base import TERMINAL, translated
from gateway.errors import error_object
from gateway.exchange.rescue import FirstText, Partial, Splice
from gateway.policy.usage import usage_from_dict
from gateway.pricing import Usage
from gateway.responses.stream import ResponsesRelay
from gateway.responses.upstreams import Turn
from gateway.translate import ChatToResponsesStream, chat_request_from_responses, encode_event, encode_events
from gateway.translate.responses_answer import message_text_part
from gateway.upstream.committed import Relay, SendChunk
from gateway.upstream.failover import Attempt

_DECODER = msgspec.json.Decoder()
Event = dict[str, Any]


class _OpenMessage:
    """The message item the client has open: its closed parts, and the text of its open
    ``output_text`` part (``part`` is that part's content index; None when no part is open)."""

    __slots__ = ("index", "item", "part", "parts", "text")

    def __init__(self, index: int, item: dict[str, Any]) -> None:
        self.index = index
        self.item = item
        self.parts: list[dict[str, Any]] = []
        self.part: int | None = None
        self.text: list[str] = []


class _Answer:
    """What the client received of a Responses answer, read back from its events."""

    def __init__(self) -> None:
        self.shell: dict[str, Any] | None = None  # the Response object of created/in_progress
        self.sequence = 0  # the next sequence number
        self.items: dict[int, dict[str, Any]] = {}  # closed output items by output index
        self.count = 0  # output items opened
        self.message: _OpenMessage | None = None
        self.other_open = False  # an item other than a message is open (or a refusal part)
        self.text: list[str] = []
        self.call = False  # a function call (or any item other than message/reasoning)

    def read(self, event: Event) -> None:
        number = event.get("sequence_number")
        if isinstance(number, int):
            self.sequence = max(self.sequence, number + 1)
        kind = event.get("type")
        index = event.get("output_index")
        message = self.message
        if kind in ("response.created", "response.in_progress") and isinstance(event.get("response"), dict):
            self.shell = event["response"]
        elif kind == "response.output_item.added" and isinstance(index, int):
            item = event.get("item") or {}
            self.count = max(self.count, index + 1)
            if item.get("type") == "message":
                self.message = _OpenMessage(index, dict(item))
            elif item.get("type") == "reasoning":
                self.other_open = True
            else:
                self.call = True
        elif kind == "response.output_item.done" and isinstance(index, int):
            self.items[index] = event.get("item") or {}
            self.other_open = False
            if message is not None and message.index == index:
                self.message = None
        elif message is None or index != message.index:
            if kind == "response.output_text.delta":
                self.text.append(str(event.get("delta") or ""))
        elif kind == "response.content_part.added":
            if (event.get("part") or {}).get("type") == "output_text":
                message.part = event.get("content_index")
                message.text = []
            else:
                self.other_open = True
        elif kind == "response.output_text.delta":
            piece = str(event.get("delta") or "")
            self.text.append(piece)
            message.text.append(piece)
        elif kind == "response.content_part.done":
            message.parts.append(event.get("part") or {})
            message.part = None
            self.other_open = False


def _events(sent: bytes) -> list[Event]:
    events: list[Event] = []
    for line in sent.split(b"\n"):
        if not line.startswith(b"data:"):
            continue
        try:
            event = _DECODER.decode(line[5:].strip())
        except msgspec.DecodeError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


def read_answer(sent: bytes) -> _Answer:
    answer = _Answer()
    for event in _events(sent):
        answer.read(event)
    return answer


def responses_partial(sent: bytes) -> Partial | None:
    """The text of the Responses events the client received (None: a function call in it)."""
    answer = read_answer(sent)
    return None if answer.call else Partial("".join(answer.text), {})


def _clean(chunk: dict[str, Any], text: FirstText) -> Usage | None:
    """A continuation's chunk as more of the answer: no role, no reasoning (the client saw the
    first attempt's), the whitespace the client already has not repeated. Its usage, if any."""
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        piece = delta.get("content")
        if isinstance(piece, str) and piece:
            delta["content"] = text(piece)
        delta.pop("role", None)
        delta.pop("reasoning_content", None)
        delta.pop("reasoning", None)
    usage = chunk.get("usage")
    return usage_from_dict(usage) if isinstance(usage, dict) else None


class ResponsesSplice:
    """The rest fed to the broken stream's own converter (one that takes Chat chunks)."""

    def __init__(self, partial: Partial, relay: ResponsesRelay, converter: Resumable) -> None:
        self._relay = relay
        self._converter = converter
        self._text = FirstText(partial)
        self.usage: Usage | None = None

    async def feed(self, chunks: list[dict[str, Any]], send: SendChunk) -> None:
        for chunk in chunks:
            self.usage = _clean(chunk, self._text) or self.usage
            await self._relay.emit(self._converter.resume(chunk), send)

    async def end(self, send: SendChunk) -> None:
        await self._relay.emit(self._converter.end(), send)

    async def release(self, relay: Relay, send: SendChunk) -> None:
        await relay.release(send)  # the converter has the rest in its state


class _Merged:
    """The client's open message, taken over by the rest's first message item: the rest's
    content indexes are shifted by ``base``; its first part goes on in the client's open part
    (``prior``: that part's text the client has) when ``continues``."""

    __slots__ = ("base", "client_parts", "continues", "message", "prior")

    def __init__(self, message: _OpenMessage) -> None:
        self.message = message
        self.continues = message.part is not None
        self.base = message.part if message.part is not None else len(message.parts)
        self.prior = "".join(message.text) if self.continues else ""
        self.client_parts = list(message.parts)


class ResponsesTail:
    """The rest translated by a new converter, its events renumbered into the client's answer:
    no second ``response.created``; the first message item merged into the client's open one
    (its text going on in the open part); other items after the client's; the client's open
    message closed first when the rest starts with another item or has no text."""

    def __init__(self, partial: Partial, relay: ResponsesRelay, turn: Turn) -> None:
        answer: _Answer = partial.head["answer"]
        assert answer.shell is not None
        self._relay = relay
        self._clock = turn.clock
        self._shell = answer.shell
        self._sequence = answer.sequence
        self._output = dict(answer.items)
        self._next = answer.count
        self._open = answer.message  # the client's open message, until merged or closed
        self._merged: _Merged | None = None
        self._items: dict[int, int] = {}  # the new converter's output indexes -> the client's
        self._stream = ChatToResponsesStream(
            request=turn.data,
            response_id=turn.response_id,
            created_at=turn.created_at,
            ids=turn.ids,
            previous_response_id=turn.previous_response_id,
        )
        self._stream.start()  # created and in_progress: the client has its own
        self._text = FirstText(partial)
        self.usage: Usage | None = None
        relay.converter.upstream_id = None  # never chain natively from the broken response

    async def feed(self, chunks: list[dict[str, Any]], send: SendChunk) -> None:
        events: list[Event] = []
        for chunk in chunks:
            self.usage = _clean(chunk, self._text) or self.usage
            events.extend(self._stream.feed(chunk))
        await self._relay.emit(self._rewrite(events), send)

    async def end(self, send: SendChunk) -> None:
        events = self._stream.finish(completed_at=int(self._clock.now()))
        await self._relay.emit(self._rewrite(events), send)

    async def release(self, relay: Relay, send: SendChunk) -> None:
        """``error`` then ``response.failed``, numbered after the rest, with every output item
        (an open message as far as it got), recorded first."""
        assert relay.failure is not None
        output = dict(self._output)
        merged = self._merged.message if self._merged is not None else None
        for message in (self._open, merged):
            if message is not None and message.index not in output:
                parts = list(message.parts)
                if message.part is not None:
                    parts.append(message_text_part("".join(message.text)))
                output[message.index] = {**message.item, "status": "incomplete", "content": parts}
        error = error_object(relay.failure, api="responses")
        first, failed = failure_events(
            self._shell, [output[i] for i in sorted(output)], self._sequence, error
        )
        self._sequence += 2
        await self._relay.emit(Emit(encode_event(first), failed), send)

    def _number(self, event: Event) -> Event:
        event["sequence_number"] = self._sequence
        self._sequence += 1
        return event

    def _close_open(self, out: list[Event]) -> None:
        """The client's open message, closed with the text it has."""
        message, self._open = self._open, None
        if message is None:
            return
        item = message.item
        base = {"item_id": item["id"], "output_index": message.index}
        if message.part is not None:
            text = "".join(message.text)
            part = message_text_part(text)
            done = {"type": "response.output_text.done", **base, "content_index": message.part}
            out.append(self._number({**done, "text": text, "logprobs": []}))
            out.append(
                self._number(
                    {
                        "type": "response.content_part.done",
                        **base,
                        "content_index": message.part,
                        "part": part,
                    }
                )
            )
            message.parts.append(part)
        closed = {**item, "status": "completed", "content": message.parts}
        self._output[message.index] = closed
        out.append(
            self._number({"type": "response.output_item.done", "output_index": message.index, "item": closed})
        )

    def _rewrite(self, events: list[Event]) -> Emit:
        out: list[Event] = []
        final: Event | None = None
        for event in events:
            kind = event["type"]
            index = event.get("output_index")
            if kind == "response.output_item.added" and isinstance(index, int):
                if self._open is not None and not self._items and event["item"]["type"] == "message":
                    self._merged = _Merged(self._open)
                    self._open = None
                    self._items[index] = self._merged.message.index
                    continue
                self._close_open(out)
                self._items[index] = self._next
                self._next += 1
            elif kind in TERMINAL:
                self._close_open(out)
                final = self._final(event)
                continue
            if isinstance(index, int):
                event["output_index"] = self._items[index]
            merged = self._merged
            if merged is not None and event["output_index"] == merged.message.index:
                if not self._merge(event, merged):
                    continue
            elif kind == "response.output_item.done":
                self._output[event["output_index"]] = event["item"]
            out.append(self._number(event))
        return Emit(encode_events(out), final)

    def _merge(self, event: Event, merged: _Merged) -> bool:
        """An event of the merged message, rewritten into the client's item (False: drop it)."""
        kind = event["type"]
        message = merged.message
        if "item_id" in event:
            event["item_id"] = message.item["id"]
        if "content_index" in event:
            position = event["content_index"]
            first = merged.continues and position == 0
            event["content_index"] = merged.base + position
            if kind == "response.content_part.added":
                if first:
                    return False  # the text goes on in the client's open part
                kind_of_part = (event.get("part") or {}).get("type")
                message.part = event["content_index"] if kind_of_part == "output_text" else None
                message.text = []
            elif kind == "response.output_text.delta":
                message.text.append(str(event.get("delta") or ""))
            elif kind == "response.output_text.done" and first:
                event["text"] = merged.prior + event["text"]
            elif kind == "response.content_part.done":
                if first:
                    event["part"] = {**event["part"], "text": merged.prior + event["part"]["text"]}
                message.parts.append(event["part"])
                message.part = None
        if kind == "response.output_item.done":
            fresh = list(event["item"].get("content") or ())
            if merged.continues and fresh:
                fresh[0] = {**fresh[0], "text": merged.prior + fresh[0].get("text", "")}
            content = [*merged.client_parts, *fresh]
            event["item"] = {**event["item"], "id": message.item["id"], "content": content}
            self._output[message.index] = event["item"]
        return True

    def _final(self, event: Event) -> Event:
        response = {
            **self._shell,
            **{k: v for k, v in event["response"].items() if k in _TERMINAL_FIELDS},
            "output": [self._output[i] for i in sorted(self._output)],
        }
        return self._number({"type": event["type"], "response": response})


_TERMINAL_FIELDS = ("status", "incomplete_details", "completed_at", "usage", "error")


class ResponsesContinuer:
    """Continues a Responses client's stream, whatever its upstream spoke."""

    native_api = None

    def __init__(self, turn: Turn) -> None:
        self._turn = turn

    def native_call(self, attempt: Attempt, text: str) -> ConversationCall:
        raise NotImplementedError  # every deployment takes the Chat request

    def partial(self, sent: bytes, relay: Relay) -> Partial | None:
        if not isinstance(relay, ResponsesRelay):
            return None
        answer = read_answer(sent)
        if answer.call:
            return None
        text = "".join(answer.text)
        if isinstance(relay.converter, Resumable):
            return Partial(text, {})
        if answer.shell is None or answer.other_open:
            return None
        return Partial(text, {"answer": answer})

    async def chat(self) -> dict[str, Any]:
        turn = self._turn
        items = await turn.replay_input(for_responses=False)
        return translated(lambda: chat_request_from_responses(turn.data, items))

    def splice(self, partial: Partial, relay: Relay) -> Splice:
        assert isinstance(relay, ResponsesRelay)
        converter = relay.converter
        if isinstance(converter, Resumable):
            return ResponsesSplice(partial, relay, converter)
        return ResponsesTail(partial, relay, self._turn)

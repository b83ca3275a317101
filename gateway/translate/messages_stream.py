"""Chat Completions chunks -> Anthropic Messages stream events.

The sequence is Anthropic's: ``message_start`` (its ``usage.input_tokens`` is the gateway's
estimate of the prompt, never 0, because clients read the prompt size there before any other
usage arrives), then per content block ``content_block_start``, its deltas and
``content_block_stop``, then ``message_delta`` (``stop_reason`` and the usage the upstream
reported) and ``message_stop``.

Blocks are opened as the content changes kind: reasoning (only when the client enabled thinking)
in a ``thinking`` block with ``thinking_delta``; text in a ``text`` block with ``text_delta``;
each tool call in its own ``tool_use`` block (the upstream's id and name in the start,
``input: {}``) with ``input_json_delta`` pieces that concatenate to the call's whole arguments.
Switching kind closes the open block first, so a delta never lands in a block of another type
and a tool call's input is never lost when text precedes it. A call whose arguments never came
gets ``{}``. Pieces of an earlier call that arrive after another block opened (upstreams that
interleave parallel calls) are still sent, under that call's own index.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from gateway.translate.messages_answer import message_id, messages_usage, stop_reason_of
from gateway.translate.messages_chat import MessagesContext

Event = dict[str, Any]
_ENCODER = msgspec.json.Encoder()


def encode_events(events: list[Event]) -> bytes:
    """Named SSE frames (``event: <type>``), as Anthropic sends them."""
    return b"".join(
        b"event: " + event["type"].encode() + b"\ndata: " + _ENCODER.encode(event) + b"\n\n"
        for event in events
    )


class _Call:
    __slots__ = ("arguments", "index")

    def __init__(self, index: int) -> None:
        self.index = index
        self.arguments = False  # any argument text sent


class ChatToMessagesStream:
    """Feed decoded Chat chunks; get Anthropic events. :meth:`finish` ends the message."""

    def __init__(self, *, model: str, input_tokens: int, context: MessagesContext) -> None:
        self._model = model
        self._estimate = max(1, input_tokens)
        self._context = context
        self._started = False
        self._open: str | None = None  # the kind of the open block
        self._index = -1  # of the open (or last) block
        self._calls: dict[int, _Call] = {}
        self._current_call: int | None = None
        self._stop: tuple[str, str | None] | None = None
        self._usage: Mapping[str, Any] | None = None
        self.finished = False

    def _start(self, events: list[Event], model: object) -> None:
        self._started = True
        events.append(
            {
                "type": "message_start",
                "message": {
                    "id": message_id(),
                    "type": "message",
                    "role": "assistant",
                    "model": model if isinstance(model, str) and model else self._model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {
                        "input_tokens": self._estimate,
                        "cache_creation_input_tokens": 0,
                        "cache_read_input_tokens": 0,
                        "output_tokens": 1,
                    },
                },
            }
        )

    def _close(self, events: list[Event]) -> None:
        if self._open is None:
            return
        if self._open == "tool_use" and self._current_call is not None:
            call = self._calls[self._current_call]
            if not call.arguments:
                events.append(self._delta({"type": "input_json_delta", "partial_json": "{}"}, call.index))
        events.append({"type": "content_block_stop", "index": self._index})
        self._open = None
        self._current_call = None

    def _open_block(self, events: list[Event], kind: str, block: Event) -> None:
        self._close(events)
        self._index += 1
        self._open = kind
        events.append({"type": "content_block_start", "index": self._index, "content_block": block})

    @staticmethod
    def _delta(delta: Event, index: int) -> Event:
        return {"type": "content_block_delta", "index": index, "delta": delta}

    def feed(self, chunk: Mapping[str, Any]) -> list[Event]:
        events: list[Event] = []
        if not self._started:
            self._start(events, chunk.get("model"))
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            self._choice(events, choice)
        return events

    def _choice(self, events: list[Event], choice: Mapping[str, Any]) -> None:
        delta = choice.get("delta") or {}
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if isinstance(reasoning, str) and reasoning and self._context.thinking:
            if self._open != "thinking":
                self._open_block(events, "thinking", {"type": "thinking", "thinking": "", "signature": ""})
            events.append(self._delta({"type": "thinking_delta", "thinking": reasoning}, self._index))
        text = delta.get("content") or delta.get("refusal")
        if isinstance(text, str) and text:
            if self._open != "text":
                self._open_block(events, "text", {"type": "text", "text": ""})
            events.append(self._delta({"type": "text_delta", "text": text}, self._index))
        for call in delta.get("tool_calls") or ():
            self._tool_call(events, call)
        if choice.get("finish_reason"):
            self._close(events)
            self._stop = stop_reason_of(choice, self._context)

    def _tool_call(self, events: list[Event], call: Mapping[str, Any]) -> None:
        position = call.get("index")
        key = position if isinstance(position, int) else len(self._calls)
        function = call.get("function") or {}
        known = self._calls.get(key)
        if known is None:
            self._open_block(
                events,
                "tool_use",
                {
                    "type": "tool_use",
                    "id": str(call.get("id") or ""),
                    "name": function.get("name") or "",
                    "input": {},
                },
            )
            known = self._calls[key] = _Call(self._index)
            self._current_call = key
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            known.arguments = True
            events.append(self._delta({"type": "input_json_delta", "partial_json": arguments}, known.index))

    def finish(self) -> list[Event]:
        """The end of the message: the open block closed, ``message_delta`` and ``message_stop``."""
        if self.finished:
            return []
        events: list[Event] = []
        if not self._started:
            self._start(events, None)
        self._close(events)
        stop_reason, stop_sequence = self._stop or ("end_turn", None)
        usage = messages_usage(self._usage, estimate=self._estimate)
        events.append(
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
                "usage": usage,
            }
        )
        events.append({"type": "message_stop"})
        self.finished = True
        return events

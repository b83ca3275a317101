"""Streaming Chat Completions chunks -> Responses API events.

:class:`ChatToResponsesStream` is fed one decoded Chat chunk at a time and returns the Responses
events to send for it. It keeps at most one output item open: a new kind of output (reasoning,
text, a new tool call) closes the open item first, so every item's events are contiguous, as in
OpenAI's own streams:

    response.created, response.in_progress,
    [reasoning item]   output_item.added, content_part.added, reasoning_text.delta..., (closed:)
                       reasoning_text.done, content_part.done, output_item.done
    [message item]     output_item.added, content_part.added, output_text.delta...,
                       output_text.done, content_part.done, output_item.done
                       (a refusal is a second part with refusal.delta / refusal.done)
    [function_call]    output_item.added, function_call_arguments.delta...,
                       function_call_arguments.done, output_item.done      (one per call)
    response.completed | response.incomplete          (from finish())
    error, response.failed                            (from fail())

Tool-call fragments are keyed by ``index``; a fragment that carries a new ``id`` at an index
already in use starts a new call (Ollama, LM Studio and Kimi reuse index 0). A fragment for a
call that was already closed (a server interleaving calls) still lands in the final Response
object, but no event is sent for it.

The ``error`` event carries the error both nested (``error: {...}``, the form the live API sends
and the OpenAI SDK raises on) and flat (``code``, ``message``, ``param``, the documented schema), so
either kind of parser reads it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from gateway.translate.ids import Ids
from gateway.translate.response_object import response_skeleton
from gateway.translate.responses_answer import (
    message_text_part,
    reasoning_text,
    response_error,
    responses_logprobs,
    terminal_status,
    usage_from_chat,
)
from gateway.translate.responses_tools import ToolNames

Event = dict[str, Any]

_ENCODER = msgspec.json.Encoder()
# The events that carry the whole Response object, with only their type and sequence number
# beside it (created and in_progress carry the same one: see :func:`encode_events`).
_CARRIER_KEYS = ("type", "response", "sequence_number")


# The start of the frame of every event type the gateway sends, built once.
_HEADS: dict[str, bytes] = {
    kind: b"event: " + kind.encode() + b"\ndata: "
    for kind in (
        "error",
        "response.created",
        "response.in_progress",
        "response.queued",
        "response.completed",
        "response.incomplete",
        "response.failed",
        "response.output_item.added",
        "response.output_item.done",
        "response.content_part.added",
        "response.content_part.done",
        "response.output_text.delta",
        "response.output_text.done",
        "response.refusal.delta",
        "response.refusal.done",
        "response.reasoning_text.delta",
        "response.reasoning_text.done",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
    )
}


def _head(kind: Any) -> bytes:
    head = _HEADS.get(kind) if type(kind) is str else None
    return head if head is not None else b"event: " + str(kind).encode() + b"\ndata: "


def encode_event(event: Mapping[str, Any]) -> bytes:
    """One Responses SSE frame: ``event: <type>\\ndata: <json>\\n\\n``."""
    kind = event["type"]
    head = _HEADS.get(kind) if type(kind) is str else None
    if head is None:
        head = _head(kind)
    return head + _ENCODER.encode(event) + b"\n\n"


def encode_events(events: Iterable[Mapping[str, Any]]) -> bytes:
    """The frames of ``events``, one after the other (each as :func:`encode_event` makes it).

    An event that carries the same Response object as the one before it (``response.created``
    then ``response.in_progress``), with only its type and sequence number beside it, has that
    object's JSON spliced in rather than encoded again."""
    out = bytearray()
    shared: tuple[object, bytes] | None = None
    for event in events:
        response = event.get("response")
        if response is None or tuple(event) != _CARRIER_KEYS:
            out += _head(event["type"])
            _ENCODER.encode_into(event, out, -1)
            out += b"\n\n"
            continue
        if shared is None or shared[0] is not response:
            shared = response, _ENCODER.encode(response)
        _carrier(out, event, shared[1])
    return bytes(out)


def encode_carrier(event: Mapping[str, Any], response_json: bytes | None) -> bytes:
    """The frame of an event carrying a Response object whose JSON is ``response_json``
    (spliced in when the event holds only its type, that object and its sequence number)."""
    if response_json is None or tuple(event) != _CARRIER_KEYS:
        return encode_event(event)
    out = bytearray()
    _carrier(out, event, response_json)
    return bytes(out)


def _carrier(out: bytearray, event: Mapping[str, Any], response_json: bytes) -> None:
    """Append the frame of a carrier event (:data:`_CARRIER_KEYS`), its Response's JSON given:
    the bytes encoding the whole event gives."""
    kind = event["type"]
    out += _head(kind)
    out += b'{"type":'
    _ENCODER.encode_into(kind, out, -1)
    out += b',"response":'
    out += response_json
    out += b',"sequence_number":'
    _ENCODER.encode_into(event["sequence_number"], out, -1)
    out += b"}\n\n"


class _Item:
    """The open output item and what has been streamed into it."""

    __slots__ = ("buffer", "index", "item", "logprobs", "part_kind", "parts")

    def __init__(self, item: dict[str, Any], index: int) -> None:
        self.item = item  # the dict that ends up in response.output
        self.index = index
        self.buffer: list[str] = []  # text of the open part, or the call's arguments
        self.part_kind: str | None = None  # "output_text" | "refusal" | "reasoning_text" | None
        self.parts: list[dict[str, Any]] = []  # closed content parts
        self.logprobs: list[dict[str, Any]] = []  # of the open output text, when the upstream sent them


class ChatToResponsesStream:
    """Translate one streamed Chat completion into Responses events.

    Call :meth:`start` once (or let the first :meth:`feed` do it), :meth:`feed` per decoded chunk,
    then :meth:`finish` at the end of the upstream stream, or :meth:`fail` on an error. After
    either, :attr:`response` holds the final Response object to store.
    """

    def __init__(
        self,
        *,
        request: Mapping[str, Any],
        response_id: str,
        created_at: int,
        ids: Ids,
        previous_response_id: str | None,
    ) -> None:
        self._shell = response_skeleton(
            request, response_id=response_id, created_at=created_at, previous_response_id=previous_response_id
        )
        self._tools = request.get("tools")
        self._names: ToolNames | None = None  # read from the tools at the first call
        self._ids = ids
        self._seq = 0
        self._started = False
        self._done = False
        self._output: list[dict[str, Any]] = []
        self._open: _Item | None = None
        self._calls: dict[int, _Item] = {}  # tool-call index -> latest call at that index
        self._usage: Mapping[str, Any] | None = None
        self.finish_reason: str | None = None
        """The upstream's finish_reason, once seen (None: the stream has not finished)."""
        self.response: dict[str, Any] | None = None
        """The final Response object, set by :meth:`finish` or :meth:`fail`."""

    # -- public API ---------------------------------------------------------------------------

    @property
    def usage(self) -> dict[str, Any] | None:
        """The Responses ``usage`` reported so far (None until the upstream sent usage)."""
        return usage_from_chat(self._usage)

    def start(self) -> list[Event]:
        """``response.created`` and ``response.in_progress``."""
        events: list[Event] = []
        self._start(events)
        return events

    def feed(self, chunk: Mapping[str, Any]) -> list[Event]:
        """The events for one decoded ``chat.completion.chunk`` (possibly none)."""
        if self._done:
            self._check_open()
        events: list[Event] = []
        if not self._started:
            self._start(events)
        usage = chunk.get("usage")
        if usage:
            self._usage = usage
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta")
            if delta:
                if "reasoning_content" in delta or "reasoning" in delta:
                    thought = reasoning_text(delta)
                    if thought is not None:
                        self._part_delta("reasoning", "reasoning_text", thought, events)
                content = delta.get("content")
                if content:
                    logprobs = choice.get("logprobs")
                    self._part_delta(
                        "message",
                        "output_text",
                        content,
                        events,
                        responses_logprobs(logprobs) if logprobs else None,
                    )
                refusal = delta.get("refusal")
                if refusal:
                    self._part_delta("message", "refusal", refusal, events)
                calls = delta.get("tool_calls")
                if calls:
                    for call in calls:
                        self._tool_delta(call, events)
            finish_reason = choice.get("finish_reason")
            if finish_reason:
                self.finish_reason = finish_reason
        return events

    def finish(self, *, completed_at: int | None = None) -> list[Event]:
        """Close the open item; ``response.completed`` (or ``response.incomplete``)."""
        self._check_open()
        events: list[Event] = []
        if not self._started:
            self._start(events)
        status, incomplete = terminal_status(self.finish_reason)
        self._close(events, "incomplete" if status == "incomplete" else "completed")
        response = dict(self._shell)
        response["status"] = status
        response["incomplete_details"] = incomplete
        response["completed_at"] = completed_at if status == "completed" else None
        response["output"] = self._output
        response["usage"] = usage_from_chat(self._usage)
        self.response = response
        self._done = True
        self._emit(events, {"type": f"response.{status}", "response": response})
        return events

    def fail(self, error_object: Mapping[str, Any]) -> list[Event]:
        """The ``error`` event, then ``response.failed``. ``error_object`` is OpenAI-shaped."""
        self._check_open()
        events: list[Event] = []
        if not self._started:
            self._start(events)
        if self._open is not None:
            self._open.item["status"] = "incomplete"
            self._finalize_item(self._open)
            self._open = None
        nested = dict(error_object)
        nested.setdefault("type", "server_error")
        nested.setdefault("code", None)
        nested.setdefault("param", None)
        nested["message"] = str(nested.get("message") or "")
        self._emit(
            events,
            {
                "type": "error",
                "code": nested["code"],
                "message": nested["message"],
                "param": nested["param"],
                "error": nested,
            },
        )
        response = dict(self._shell)
        response["status"] = "failed"
        response["error"] = response_error(error_object)
        response["output"] = self._output
        self.response = response
        self._done = True
        self._emit(events, {"type": "response.failed", "response": response})
        return events

    # -- internals ----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._done:
            raise RuntimeError("the stream has already finished")

    def _emit(self, events: list[Event], event: Event) -> None:
        event["sequence_number"] = self._seq
        self._seq += 1
        events.append(event)

    def _start(self, events: list[Event]) -> None:
        self._started = True
        shown = dict(self._shell)  # one object for both: framed once (:func:`encode_events`)
        self._emit(events, {"type": "response.created", "response": shown})
        self._emit(events, {"type": "response.in_progress", "response": shown})

    def _open_item(self, item: dict[str, Any], events: list[Event]) -> _Item:
        opened = _Item(item, len(self._output))
        self._output.append(item)
        self._open = opened
        self._emit(
            events, {"type": "response.output_item.added", "output_index": opened.index, "item": dict(item)}
        )
        return opened

    def _part_delta(
        self,
        item_type: str,
        part_kind: str,
        text: str,
        events: list[Event],
        logprobs: list[dict[str, Any]] | None = None,
    ) -> None:
        current = self._open
        if current is None or current.part_kind != part_kind or current.item["type"] != item_type:
            current = self._open_part(item_type, part_kind, events)
        current.buffer.append(text)
        if logprobs:
            current.logprobs.extend(logprobs)
        event: Event = {
            "type": _DELTA_EVENT[part_kind],
            "item_id": current.item["id"],
            "output_index": current.index,
            "content_index": len(current.parts),
            "delta": text,
        }
        if part_kind == "output_text":
            event["logprobs"] = logprobs or []
        event["sequence_number"] = self._seq
        self._seq += 1
        events.append(event)

    def _open_part(self, item_type: str, part_kind: str, events: list[Event]) -> _Item:
        """The open item of ``item_type`` (a new one when another kind is open) with a new
        ``part_kind`` part."""
        current = self._open
        if current is None or current.item["type"] != item_type:
            self._close(events, "completed")
            if item_type == "reasoning":
                item = {
                    "id": self._ids.reasoning(),
                    "type": "reasoning",
                    "summary": [],
                    "status": "in_progress",
                }
            else:
                item = {
                    "id": self._ids.message(),
                    "type": "message",
                    "status": "in_progress",
                    "role": "assistant",
                    "content": [],
                }
            current = self._open_item(item, events)
        if current.part_kind != part_kind:
            self._close_part(current, events)
            current.part_kind = part_kind
            self._emit(
                events,
                {
                    "type": "response.content_part.added",
                    "item_id": current.item["id"],
                    "output_index": current.index,
                    "content_index": len(current.parts),
                    "part": _empty_part(part_kind),
                },
            )
        return current

    def _close_part(self, current: _Item, events: list[Event]) -> None:
        kind = current.part_kind
        if kind is None:
            return
        text = "".join(current.buffer)
        current.buffer.clear()
        current.part_kind = None
        item_id = current.item["id"]
        index = len(current.parts)
        done: Event = {
            "type": _DONE_EVENT[kind],
            "item_id": item_id,
            "output_index": current.index,
            "content_index": index,
        }
        if kind == "output_text":
            logprobs, current.logprobs = current.logprobs, []
            part = message_text_part(text, logprobs=logprobs)
            done["text"] = text
            done["logprobs"] = logprobs
        elif kind == "refusal":
            part = {"type": "refusal", "refusal": text}
            done["refusal"] = text
        else:
            part = {"type": "reasoning_text", "text": text}
            done["text"] = text
        current.parts.append(part)
        self._emit(events, done)
        self._emit(
            events,
            {
                "type": "response.content_part.done",
                "item_id": item_id,
                "output_index": current.index,
                "content_index": index,
                "part": part,
            },
        )

    def _tool_delta(self, fragment: Mapping[str, Any], events: list[Event]) -> None:
        index = fragment.get("index") or 0
        call_id = fragment.get("id")
        function = fragment.get("function") or {}
        call = self._calls.get(index)
        if call is None or (call_id and call_id != call.item["call_id"]):
            self._close(events, "completed")
            item = {
                "id": self._ids.function_call(),
                "type": "function_call",
                "status": "in_progress",
                "call_id": call_id or self._ids.call(),
                "name": function.get("name") or "",
                "arguments": "",
            }
            self._restore(item)
            call = self._open_item(item, events)
            self._calls[index] = call
        elif function.get("name") and not call.item["name"]:
            call.item["name"] = function["name"]
            self._restore(call.item)
        arguments = function.get("arguments")
        if not arguments:
            return
        if call is self._open:
            call.buffer.append(arguments)
            self._emit(
                events,
                {
                    "type": "response.function_call_arguments.delta",
                    "item_id": call.item["id"],
                    "output_index": call.index,
                    "delta": arguments,
                },
            )
        else:  # a late fragment for a closed call: keep it in the final object only
            call.item["arguments"] += arguments

    def _restore(self, item: dict[str, Any]) -> None:
        """A call's namespace and own name back (the tools are read at the first call)."""
        if self._names is None:
            self._names = ToolNames(self._tools)
        if self._names:
            self._names.restore(item)

    def _close(self, events: list[Event], status: str) -> None:
        current = self._open
        if current is None:
            return
        self._open = None
        item = current.item
        if item["type"] == "function_call":
            self._finalize_item(current)
            self._emit(
                events,
                {
                    "type": "response.function_call_arguments.done",
                    "item_id": item["id"],
                    "output_index": current.index,
                    "name": item["name"],
                    "arguments": item["arguments"],
                },
            )
        else:
            self._close_part(current, events)
            self._finalize_item(current)
        item["status"] = status
        self._emit(
            events, {"type": "response.output_item.done", "output_index": current.index, "item": dict(item)}
        )

    def _finalize_item(self, current: _Item) -> None:
        item = current.item
        if item["type"] == "function_call":
            item["arguments"] = "".join(current.buffer)
            return
        if current.part_kind is not None:  # only on failure: keep what was streamed
            text = "".join(current.buffer)
            kind = current.part_kind
            current.parts.append(
                message_text_part(text) if kind == "output_text" else {"type": kind, _PART_FIELD[kind]: text}
            )
            current.part_kind = None
        item["content"] = list(current.parts)


_DELTA_EVENT = {
    "output_text": "response.output_text.delta",
    "refusal": "response.refusal.delta",
    "reasoning_text": "response.reasoning_text.delta",
}
_DONE_EVENT = {
    "output_text": "response.output_text.done",
    "refusal": "response.refusal.done",
    "reasoning_text": "response.reasoning_text.done",
}
_PART_FIELD = {"refusal": "refusal", "reasoning_text": "text"}


def _empty_part(kind: str) -> dict[str, Any]:
    if kind == "output_text":
        return message_text_part("")
    return {"type": kind, _PART_FIELD[kind]: ""}

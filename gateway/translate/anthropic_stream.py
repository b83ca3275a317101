"""Streaming Anthropic Messages events -> Chat Completions chunks.

:class:`AnthropicToChatStream` takes one SSE event at a time (its ``event:`` name and decoded
``data``) and returns the ``chat.completion.chunk`` objects to send for it:

* ``message_start``: the first chunk, ``delta: {"role": "assistant", "content": ""}``;
* ``content_block_start`` of a ``tool_use`` block: a tool-call delta with ``id``, ``type`` and
  ``function.name`` (``arguments: ""``), its ``index`` counting tool calls in order of
  appearance (0, 1, ...), whatever the Anthropic block index is;
* ``text_delta``: ``delta.content``; ``input_json_delta``: an ``arguments`` fragment at the
  call's index (empty fragments produce nothing). A tool call whose input streamed nothing gets
  ``"{}"`` when its block stops, so clients never parse an empty string;
* ``message_delta`` with a ``stop_reason``: the finish chunk ``delta: {}`` with
  ``finish_reason``; its cumulative ``usage`` is recorded;
* ``message_stop``: nothing; :attr:`finished` becomes true and :meth:`usage_chunk` gives the
  ``include_usage`` chunk if the client asked for it;
* ``ping``, thinking and other unknown blocks or events: nothing;
* ``error``: raises :class:`InbandError`, which carries the payload for classification.

The structured-output tool (see :mod:`gateway.translate.anthropic_tools`) streams as ``content``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.translate.anthropic_answer import chat_usage_from_anthropic, finish_reason_from_stop_reason
from gateway.translate.anthropic_context import AnthropicContext

Chunk = dict[str, Any]


class InbandError(Exception):
    """An ``event: error`` inside an Anthropic stream (after HTTP 200).

    ``payload`` is the event's data, e.g.
    ``{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}``.
    """

    def __init__(self, payload: Mapping[str, Any]) -> None:
        error = payload.get("error")
        self.payload = dict(payload)
        self.error: dict[str, Any] = dict(error) if isinstance(error, Mapping) else {}
        self.error_type: str | None = self.error.get("type")
        self.message: str = str(self.error.get("message") or "")
        super().__init__(f"{self.error_type}: {self.message}")


# What an Anthropic content block is, for the deltas that follow it.
_TEXT = 0
_TOOL = 1
_JSON = 2


class _Block:
    __slots__ = ("kind", "streamed", "tool_index")

    def __init__(self, kind: int, tool_index: int = -1) -> None:
        self.kind = kind
        self.tool_index = tool_index
        self.streamed = False  # whether any input JSON arrived


class AnthropicToChatStream:
    """Translate one streamed Anthropic Message into Chat Completions chunks."""

    def __init__(
        self, *, model: str, completion_id: str, created: int, context: AnthropicContext | None = None
    ) -> None:
        self._model = model
        self._id = completion_id
        self._created = created
        self._context = context if context is not None else AnthropicContext()
        self._blocks: dict[int, _Block] = {}
        self._tools = 0
        self._usage: dict[str, Any] = {}
        self.finished = False
        """True once ``message_stop`` has been seen."""
        self.finish_reason: str | None = None
        """The Chat finish_reason, once ``message_delta`` has carried a stop_reason."""

    def feed(self, event_type: str, data: Mapping[str, Any]) -> list[Chunk]:
        """The chunks for one Anthropic stream event (possibly none)."""
        kind = event_type or data.get("type")
        if kind == "content_block_delta":
            return self._delta(data)
        if kind == "content_block_start":
            return self._block_start(data)
        if kind == "content_block_stop":
            return self._block_stop(data)
        if kind == "message_start":
            message = data.get("message") or {}
            self._add_usage(message.get("usage"))
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "message_delta":
            self._add_usage(data.get("usage"))
            stop_reason = (data.get("delta") or {}).get("stop_reason")
            if stop_reason is None:
                return []
            finish_reason = finish_reason_from_stop_reason(stop_reason)
            if finish_reason == "tool_calls" and self._tools == 0:
                finish_reason = "stop"  # only the structured-output tool was called
            self.finish_reason = finish_reason
            return [self._chunk({}, finish_reason)]
        if kind == "message_stop":
            self.finished = True
            return []
        if kind == "error":
            raise InbandError(data)
        return []  # ping, and events Anthropic may add later

    @property
    def usage(self) -> dict[str, Any]:
        """The Chat ``usage`` so far (final after ``message_delta``)."""
        return chat_usage_from_anthropic(self._usage)

    def usage_chunk(self) -> Chunk:
        """The ``stream_options.include_usage`` chunk: ``choices: []`` and the full usage."""
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": [],
            "usage": self.usage,
        }

    # -- internals ----------------------------------------------------------------------------

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> Chunk:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
            "usage": None,
        }

    def _add_usage(self, usage: Any) -> None:
        if isinstance(usage, Mapping):
            for key, value in usage.items():
                if value is not None:
                    self._usage[key] = value

    def _block_start(self, data: Mapping[str, Any]) -> list[Chunk]:
        block = data.get("content_block") or {}
        index = data.get("index", 0)
        kind = block.get("type")
        if kind == "text":
            self._blocks[index] = _Block(_TEXT)
            text = block.get("text")
            return [self._chunk({"content": text})] if text else []
        if kind == "tool_use":
            name = block.get("name") or ""
            if name == self._context.json_tool:
                self._blocks[index] = _Block(_JSON)
                return []
            tool_index = self._tools
            self._tools += 1
            self._blocks[index] = _Block(_TOOL, tool_index)
            call = {
                "index": tool_index,
                "id": self._context.tool_ids.from_anthropic(str(block.get("id") or "")),
                "type": "function",
                "function": {"name": name, "arguments": ""},
            }
            return [self._chunk({"tool_calls": [call]})]
        return []

    def _delta(self, data: Mapping[str, Any]) -> list[Chunk]:
        block = self._blocks.get(data.get("index", 0))
        if block is None:
            return []
        delta = data.get("delta") or {}
        kind = delta.get("type")
        if kind == "text_delta" and block.kind == _TEXT:
            text = delta.get("text")
            return [self._chunk({"content": text})] if text else []
        if kind == "input_json_delta":
            fragment = delta.get("partial_json")
            if not fragment:
                return []
            block.streamed = True
            return [self._input_chunk(block, fragment)]
        return []

    def _block_stop(self, data: Mapping[str, Any]) -> list[Chunk]:
        block = self._blocks.get(data.get("index", 0))
        if block is None or block.kind == _TEXT or block.streamed:
            return []
        return [self._input_chunk(block, "{}")]

    def _input_chunk(self, block: _Block, fragment: str) -> Chunk:
        if block.kind == _JSON:
            return self._chunk({"content": fragment})
        return self._chunk({"tool_calls": [{"index": block.tool_index, "function": {"arguments": fragment}}]})

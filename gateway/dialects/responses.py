"""The Responses upstream dialect (``POST /responses``, OpenAI's stateful API).

It is the one dialect that stores answers upstream: a follow-up on the deployment that produced
its parent may chain natively (``previous_response_id`` and only the new input). Responses
requests pass through with the deployment's model, the store setting and repaired tools; their
events are re-framed, with the Response object made the gateway's (:class:`NativeConverter`).
A stateful chat's step becomes ``input`` items and its events are read back as Chat chunks
(:class:`ResponsesChunks`). Chat Completions requests go to the same provider's Chat endpoint.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from gateway.clock import Clock
from gateway.config import UpstreamApi
from gateway.dialects.base import (
    ChunkReader,
    ConversationStep,
    Emit,
    Produced,
    ResponsesTurn,
    failure_events,
)
from gateway.dialects.chat_completions import ChatEndpointCalls
from gateway.errors import ClassifiedError, classify_stream_error
from gateway.translate import encode_event, response_skeleton
from gateway.upstream import Deployment
from gateway.upstream.call import EventRole, decode_object, malformed_event
from gateway.upstream.committed import StreamFailure, StreamTruncated
from gateway.upstream.failover import Attempt
from gateway.upstream.sse import SSEEvent
from gateway.upstream.tool_schemas import repair_chat_tools, repair_responses_tools

PATH = "/responses"
_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(dict[str, Any])
_SEQUENCE = re.compile(r'"sequence_number"\s*:\s*(\d+)')
_LIFECYCLE = frozenset({"response.created", "response.in_progress", "response.queued"})
_FINISHED = frozenset({"response.completed", "response.incomplete"})
# The events the converter reads (every other one is passed on as it came).
_READ = _LIFECYCLE | _FINISHED | {"response.output_item.done", "error", "response.failed"}


def deployment_key(deployment: Deployment) -> str:
    """Which deployment stored an answer (``provider/upstream model``): only it can continue it."""
    return f"{deployment.provider}/{deployment.upstream_model}"


def is_stale_chain(error: ClassifiedError) -> bool:
    """The upstream does not know the parent we chained to (expired, other account...)."""
    return error.code == "previous_response_not_found" or error.param == "previous_response_id"


class ResponsesEventRoles:
    """Responses events: created/in_progress/queued are harmless; error/failed are failures."""

    def role(self, event: SSEEvent) -> tuple[EventRole, dict[str, Any] | None]:
        if event.data == "[DONE]":
            return EventRole.DONE, None
        payload = decode_object(event.data)
        if payload is None:
            return EventRole.ERROR, None
        kind = payload.get("type") or event.event
        if kind in _LIFECYCLE:
            return EventRole.HARMLESS, payload
        if kind in ("error", "response.failed"):
            return EventRole.ERROR, payload
        if kind in _FINISHED:
            return EventRole.DONE, payload
        return EventRole.MEANINGFUL, payload


ROLES = ResponsesEventRoles()


def _reframe(event: SSEEvent) -> bytes:
    return b"event: " + event.event.encode() + b"\ndata: " + event.data.encode() + b"\n\n"


class NativeConverter:
    """A Responses upstream's events, with the Response object made the gateway's.

    Events are re-framed as they came, without JSON re-encoding, except the few that carry the
    Response object (created, in_progress, completed...), whose ``id``, ``previous_response_id``
    and ``store`` are the gateway's. ``output_item.done`` items are kept, so the record has every
    output item even if the upstream's final object leaves some out.
    """

    def __init__(
        self,
        *,
        response_id: str,
        previous_response_id: str | None,
        store: bool,
        provider: str,
        skeleton: Callable[[], dict[str, Any]] | None = None,
        background: bool = False,
    ) -> None:
        self._id = response_id
        # A gateway background run: the upstream answers it in the foreground.
        self._background = background
        # The Response a failure before ``response.created`` reports (the request's own fields).
        self._skeleton = skeleton
        self._previous = previous_response_id
        self._store = store
        self._provider = provider
        self._shell: dict[str, Any] | None = None
        self._items: dict[int, dict[str, Any]] = {}
        self._last_data = ""
        self.upstream_id: str | None = None

    def _own(self, response: dict[str, Any]) -> dict[str, Any]:
        upstream_id = response.get("id")
        if isinstance(upstream_id, str):
            self.upstream_id = upstream_id
        response["id"] = self._id
        response["previous_response_id"] = self._previous
        response["store"] = self._store
        if self._background:
            response["background"] = True
        return response

    def event(self, event: SSEEvent, payload: dict[str, Any] | None) -> Emit:
        kind = event.event
        if kind == "message":  # no `event:` line: the type is in the data
            if event.data == "[DONE]":
                return Emit()
            payload = payload if payload is not None else decode_object(event.data)
            kind = str(payload.get("type")) if payload is not None else ""
        if kind not in _READ:  # the common case: passed on as it came
            self._last_data = event.data
            return Emit(_reframe(event))
        if kind in _LIFECYCLE or kind in _FINISHED or kind == "response.output_item.done":
            if payload is None:
                payload = decode_object(event.data)
            if payload is None:
                raise StreamFailure(classify_stream_error({}, provider=self._provider))
            self._last_data = event.data
            if kind == "response.output_item.done":
                index, item = payload.get("output_index"), payload.get("item")
                if isinstance(index, int) and isinstance(item, dict):
                    self._items[index] = item
                return Emit(_reframe(event))
            response = payload.get("response")
            if not isinstance(response, dict):
                raise StreamFailure(classify_stream_error({}, provider=self._provider))
            self._shell = self._own(response)
            if kind in _FINISHED:
                if not response.get("output") and self._items:
                    response["output"] = self.output()
                return Emit(final=payload)
            return Emit(encode_event(payload))
        if payload is None:
            payload = decode_object(event.data) or {}
        raise StreamFailure(classify_stream_error(payload, provider=self._provider))  # error, failed

    def output(self) -> list[dict[str, Any]]:
        return [self._items[index] for index in sorted(self._items)]

    def end(self) -> Emit:
        raise StreamTruncated

    def fail(self, error: Mapping[str, Any]) -> Emit:
        found = _SEQUENCE.search(self._last_data)
        sequence = int(found.group(1)) + 1 if found else 0
        shell = self._shell
        if shell is None:
            shell = (
                self._skeleton()
                if self._skeleton is not None
                else {"id": self._id, "object": "response", "previous_response_id": self._previous}
            )
        first, failed = failure_events(shell, self.output(), sequence, error)
        self.upstream_id = None  # never chain natively from a failed response
        return Emit(encode_event(first), failed)


class NativeCall:
    """A Responses request on a Responses upstream."""

    def __init__(self, attempt: Attempt, turn: ResponsesTurn, body: bytes) -> None:
        self.request = attempt.upstream.request("POST", PATH, body)
        self.roles = ROLES
        self._turn = turn
        self._provider = attempt.upstream.classifier_key

    def answer(self, content: bytes) -> Produced:
        response = _DECODER.decode(content)
        upstream_id = response.get("id")
        turn = self._turn
        response["id"] = turn.response_id
        response["previous_response_id"] = turn.previous_response_id
        response["store"] = turn.store
        if turn.data.get("background") is True:
            response["background"] = True
        return Produced(response, upstream_id if isinstance(upstream_id, str) else None)

    def converter(self) -> NativeConverter:
        turn = self._turn
        return NativeConverter(
            response_id=turn.response_id,
            previous_response_id=turn.previous_response_id,
            store=turn.store,
            provider=self._provider,
            background=turn.data.get("background") is True,
            skeleton=lambda: response_skeleton(
                turn.data,
                response_id=turn.response_id,
                created_at=turn.created_at,
                previous_response_id=turn.previous_response_id,
            ),
        )


# -- stateful chats ----------------------------------------------------------------------------


def responses_input(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Chat Completions messages as Responses ``input`` items (one representation inside)."""
    items: list[dict[str, Any]] = []
    for m in messages:
        role = m["role"]
        if role in ("system", "user"):
            items.append({"type": "message", "role": role, "content": m.get("content") or ""})
        elif role == "assistant":
            if m.get("content"):
                items.append({"type": "message", "role": "assistant", "content": m["content"]})
            for call in m.get("tool_calls") or ():
                fn = call["function"]
                items.append(
                    {
                        "type": "function_call",
                        "call_id": call["id"],
                        "name": fn["name"],
                        "arguments": fn["arguments"],
                    }
                )
        elif role == "tool":
            items.append(
                {"type": "function_call_output", "call_id": m["tool_call_id"], "output": m["content"]}
            )
    return items


def responses_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Chat Completions function tools in the Responses API's flat shape (not strict)."""
    out: list[dict[str, Any]] = []
    for tool in tools:
        fn = tool["function"]
        flat: dict[str, Any] = {"type": "function", "name": fn["name"], "parameters": fn.get("parameters")}
        if fn.get("description"):
            flat["description"] = fn["description"]
        flat["strict"] = False
        out.append(flat)
    return out


def _chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}


def _chat_usage(usage: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "prompt_tokens": int(usage.get("input_tokens") or 0),
        "completion_tokens": int(usage.get("output_tokens") or 0),
        "total_tokens": int(usage.get("total_tokens") or 0),
        "completion_tokens_details": {
            "reasoning_tokens": int((usage.get("output_tokens_details") or {}).get("reasoning_tokens") or 0)
        },
        "prompt_tokens_details": {
            "cached_tokens": int((usage.get("input_tokens_details") or {}).get("cached_tokens") or 0)
        },
    }


class ResponsesChunks:
    """Responses events read as Chat chunks: text deltas, function calls keyed by their output
    index, and a last chunk with the finish reason and the usage at ``response.completed``
    (``response.incomplete`` without calls is ``length``)."""

    def __init__(self, provider: str) -> None:
        self._provider = provider
        self._args: dict[int, str] = {}  # the arguments streamed so far, per call
        self.finished = False
        self.response_id: str | None = None

    def feed(self, event: SSEEvent, payload: dict[str, Any] | None) -> list[dict[str, Any]]:
        if event.data == "[DONE]":
            return []
        data = payload if payload is not None else decode_object(event.data)
        if data is None:
            raise StreamFailure(malformed_event(self._provider))
        kind = data.get("type")
        if kind in ("error", "response.failed"):
            raise StreamFailure(classify_stream_error(data, provider=self._provider))
        if kind == "response.created":
            self.response_id = (data.get("response") or {}).get("id")
        elif kind == "response.output_text.delta":
            text = data.get("delta") or ""
            return [_chunk({"content": text})] if text else []
        elif kind in ("response.output_item.added", "response.output_item.done"):
            return self._call(data, done=kind == "response.output_item.done")
        elif kind == "response.function_call_arguments.delta":
            index = int(data.get("output_index") or 0)
            piece = data.get("delta") or ""
            if index in self._args and piece:
                self._args[index] += piece
                return [_chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})]
        elif kind in _FINISHED:
            return self._finish(data, incomplete=kind == "response.incomplete")
        return []

    def _call(self, data: dict[str, Any], *, done: bool) -> list[dict[str, Any]]:
        item = data.get("item") or {}
        if item.get("type") != "function_call":
            return []
        index = int(data.get("output_index") or 0)
        out: list[dict[str, Any]] = []
        if index not in self._args:
            self._args[index] = ""
            call = {
                "index": index,
                "id": item.get("call_id") or "",
                "function": {"name": item.get("name") or ""},
            }
            out.append(_chunk({"tool_calls": [call]}))
        arguments = item.get("arguments") or ""
        streamed = self._args[index]
        if done and arguments and arguments != streamed:
            # The whole arguments came with the item: what was not streamed yet.
            rest = arguments[len(streamed) :] if arguments.startswith(streamed) else arguments
            self._args[index] = arguments
            out.append(_chunk({"tool_calls": [{"index": index, "function": {"arguments": rest}}]}))
        return out

    def _finish(self, data: dict[str, Any], *, incomplete: bool) -> list[dict[str, Any]]:
        response = data.get("response") or {}
        self.response_id = response.get("id") or self.response_id
        reason = "tool_calls" if self._args else ("length" if incomplete else "stop")
        chunk = _chunk({}, reason)
        usage = response.get("usage")
        if isinstance(usage, dict):
            chunk["usage"] = _chat_usage(usage)
        self.finished = True
        return [chunk]

    def end(self) -> list[dict[str, Any]]:
        if not self.finished:
            raise StreamTruncated
        return []


class ResponsesConversation:
    def __init__(self, attempt: Attempt, body: bytes) -> None:
        self.request = attempt.upstream.request("POST", PATH, body)
        self.roles = ROLES
        self._provider = attempt.upstream.classifier_key

    def reader(self, clock: Clock) -> ChunkReader:
        return ResponsesChunks(self._provider)


class ResponsesDialect(ChatEndpointCalls):
    """Chat Completions requests and continuations go to the provider's Chat Completions endpoint."""

    api = UpstreamApi.RESPONSES
    stores_responses = True

    def conversation(self, attempt: Attempt, step: ConversationStep) -> ResponsesConversation:
        body: dict[str, Any] = {
            "model": attempt.deployment.upstream_model,
            "input": responses_input(step.messages),
            "stream": True,
            "store": step.store,
        }
        if step.previous_response_id is not None:
            body["previous_response_id"] = step.previous_response_id
        if step.tools:
            body["tools"] = responses_tools(
                list(repair_chat_tools(step.tools, attempt.upstream.schema_target))
            )
        return ResponsesConversation(attempt, _ENCODER.encode(body))

    async def responses_call(
        self, attempt: Attempt, turn: ResponsesTurn, *, clock: Clock, native: bool
    ) -> NativeCall:
        data = dict(turn.data)
        data["model"] = attempt.deployment.upstream_model
        data["store"] = turn.upstream_store
        data.pop("background", None)  # the gateway runs background responses itself
        tools = data.get("tools")
        if isinstance(tools, list) and tools:
            data["tools"] = repair_responses_tools(tools, attempt.upstream.schema_target)
        if native:
            data["previous_response_id"] = turn.parent_upstream_id
        elif turn.previous_response_id is not None:
            data.pop("previous_response_id", None)
            data["input"] = await turn.replay_input(for_responses=True)
        return NativeCall(attempt, turn, _ENCODER.encode(data))

"""One model step: stream an answer (Chat Completions or Responses upstream), retried as a whole
(spec §3.2).

A Responses upstream gets the same messages as ``input`` items; on the first step of a
follow-up turn it may get a :class:`Chain` instead (system + new user messages +
``previous_response_id``) when the attempt goes to the deployment that produced the previous
answer. An upstream that no longer knows that response (``previous_response_not_found``) is asked
again at once with the full history, and so is any other deployment (spec §6.4, §6.6).

The unit retried is the step: open the stream under the startup guard (``open_stream``), then
read it to the end under the idle watchdog. A failure anywhere discards the partial step,
publishes a ``retry`` event and waits on the injected clock (``CHAT_RETRY_POLICY``: 25 attempts,
1 s doubling to 60 s, Retry-After as a minimum); when a deployment is spent and the failure
allows it, the next deployment of the plan is tried. Nothing is persisted by a failed attempt.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import msgspec

from gateway.chats.model import Part, Usage
from gateway.chats.prompt import Chain, responses_input, responses_tools
from gateway.clock import STREAM_IDLE, Clock, Watchdog
from gateway.config import UpstreamApi
from gateway.errors import (
    ClassifiedError,
    build_error,
    classify_exception,
    classify_stream_error,
    stream_idle_timeout_error,
    stream_truncated_error,
)
from gateway.errors._model import ErrorKind
from gateway.upstream import Deployment, Router
from gateway.upstream.call import ChatStreamDialect, OpenedStream, ResponsesStreamDialect, open_stream
from gateway.upstream.failover import RETRY_BACKOFF, Attempt, AttemptFailed, AttemptRecord
from gateway.upstream.retry import CHAT_RETRY_POLICY, RetryEvent, RetryPolicy, rfc3339
from gateway.upstream.tool_schemas import repair_chat_tools

_ENC = msgspec.json.Encoder()
_DIALECT = ChatStreamDialect()
_RESPONSES_DIALECT = ResponsesStreamDialect()

Publish = Callable[[dict[str, Any]], Awaitable[None]]


class StepFailed(Exception):
    def __init__(self, error: ClassifiedError) -> None:
        super().__init__(error.message)
        self.error = error


class ToolCall(msgspec.Struct):
    index: int
    id: str = ""
    name: str = ""
    args: str = ""
    created_at: str | None = None
    published: bool = False


def deployment_key(deployment: Deployment) -> str:
    return f"{deployment.provider}/{deployment.upstream_model}"


def chain_broken(error: ClassifiedError) -> bool:
    return error.code == "previous_response_not_found" or error.param == "previous_response_id"


class StepState:
    """What the step has produced so far (read by the loop when a turn is interrupted)."""

    def __init__(self) -> None:
        self.text = ""
        self.response_id: str | None = None  # a Responses upstream's id for this answer
        self.calls: dict[int, ToolCall] = {}
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.done = False

    def complete_calls(self) -> list[ToolCall]:
        return [c for _, c in sorted(self.calls.items()) if c.created_at is not None]


class StepRunner:
    def __init__(
        self,
        router: Router,
        clock: Clock,
        publish: Publish,
        *,
        on_retry: Callable[[RetryEvent], Awaitable[None]],
        policy: RetryPolicy = CHAT_RETRY_POLICY,
        store: bool = True,
    ) -> None:
        self._router = router
        self._clock = clock
        self._publish = publish
        self._on_retry = on_retry
        self._policy = policy
        self.store = store

    async def run(
        self,
        model: str,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        state_box: list[StepState],
        chain: Chain | None = None,
    ) -> tuple[StepState, Deployment]:
        """Run the step; ``state_box[0]`` is always the current attempt's state."""
        plan = [d for d in self._router.plan(model) if d.api in (UpstreamApi.CHAT, UpstreamApi.RESPONSES)]
        if not plan:
            raise StepFailed(build_error(ErrorKind.CONFIG, retryable=False))
        last: ClassifiedError | None = None
        started = self._clock.monotonic()
        for deployment in plan:
            upstream = self._router.upstream(deployment)
            number = 0
            while True:
                number += 1
                state = StepState()
                state_box[:] = [state]
                record = AttemptRecord(
                    provider=upstream.name,
                    deployment=deployment.index,
                    upstream_model=deployment.upstream_model,
                    number=number,
                )
                attempt = Attempt(deployment, upstream, number, record)
                chained = (
                    chain
                    if chain is not None
                    and deployment.api is UpstreamApi.RESPONSES
                    and chain.deployment == deployment_key(deployment)
                    else None
                )
                try:
                    if deployment.api is UpstreamApi.RESPONSES:
                        await self._responses_attempt(attempt, messages, tools, state, chained)
                    else:
                        await self._attempt(attempt, messages, tools, state)
                    return state, deployment
                except AttemptFailed as failed:
                    last = failed.classified
                if chained is not None and chain_broken(last):
                    # The upstream forgot the response: replay the history now, not as a retry.
                    chain = None
                    number -= 1
                    continue
                delay = self._policy.should_retry(last, number, self._clock.monotonic() - started)
                if delay is None:
                    break
                await self._on_retry(
                    RetryEvent.scheduled(last, attempt=number, delay=delay, now=self._clock.now())
                )
                await self._clock.sleep(delay, name=RETRY_BACKOFF)
            if not last.failover:
                break
        assert last is not None
        raise StepFailed(last)

    async def _attempt(
        self, attempt: Attempt, messages: list[dict[str, Any]], tools: list[dict[str, Any]], state: StepState
    ) -> None:
        upstream = attempt.upstream
        body: dict[str, Any] = {
            "model": attempt.deployment.upstream_model,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if tools:
            body["tools"] = list(repair_chat_tools(tools, upstream.schema_target))
        request = upstream.request("POST", "/chat/completions", _ENC.encode(body))
        opened = await open_stream(attempt, request, _DIALECT, self._clock)
        provider = upstream.classifier_key
        watchdog = Watchdog(self._clock, upstream.settings.timeouts.idle, name=STREAM_IDLE)
        try:
            for _event, _role, payload in opened.events:
                if payload is not None:
                    await self._chunk(payload, state)
            await self._rest(opened, state, watchdog, lambda data: self._event(data, state, provider))
        except asyncio.CancelledError:
            if watchdog.absorb():
                raise AttemptFailed(
                    stream_idle_timeout_error(provider, idle_seconds=upstream.settings.timeouts.idle)
                ) from None
            raise
        except httpx.HTTPError as exc:
            raise AttemptFailed(classify_exception(exc, provider=provider)) from None
        finally:
            watchdog.cancel()
            await opened.aclose()
        if not state.done:
            raise AttemptFailed(stream_truncated_error(provider))
        self._stamp_calls(state)

    async def _rest(
        self,
        opened: OpenedStream,
        state: StepState,
        watchdog: Watchdog,
        handle: Callable[[str], Awaitable[None]],
    ) -> None:
        while not state.done:
            try:
                chunk = await opened.chunks.__anext__()
            except StopAsyncIteration:
                events = opened.decoder.flush()
                for event in events:
                    await handle(event.data)
                return
            watchdog.touch()
            for event in opened.decoder.feed(chunk):
                await handle(event.data)

    # -- Responses upstream ------------------------------------------------------------
    async def _responses_attempt(
        self,
        attempt: Attempt,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        state: StepState,
        chain: Chain | None,
    ) -> None:
        upstream = attempt.upstream
        body: dict[str, Any] = {
            "model": attempt.deployment.upstream_model,
            "input": responses_input(chain.messages if chain is not None else messages),
            "stream": True,
            "store": self.store,
        }
        if chain is not None:
            body["previous_response_id"] = chain.previous_response_id
        if tools:
            body["tools"] = responses_tools(list(repair_chat_tools(tools, upstream.schema_target)))
        request = upstream.request("POST", "/responses", _ENC.encode(body))
        opened = await open_stream(attempt, request, _RESPONSES_DIALECT, self._clock)
        provider = upstream.classifier_key
        watchdog = Watchdog(self._clock, upstream.settings.timeouts.idle, name=STREAM_IDLE)

        async def handle(data: str) -> None:
            if data == "[DONE]":
                return
            try:
                payload = msgspec.json.decode(data)
            except msgspec.DecodeError:
                raise AttemptFailed(
                    classify_stream_error({"error": {"message": "malformed stream event"}}, provider=provider)
                ) from None
            if isinstance(payload, dict):
                await self._responses_event(payload, state, provider)

        try:
            for _event, _role, payload in opened.events:
                if payload is not None:
                    await self._responses_event(payload, state, provider)
            await self._rest(opened, state, watchdog, handle)
        except asyncio.CancelledError:
            if watchdog.absorb():
                raise AttemptFailed(
                    stream_idle_timeout_error(provider, idle_seconds=upstream.settings.timeouts.idle)
                ) from None
            raise
        except httpx.HTTPError as exc:
            raise AttemptFailed(classify_exception(exc, provider=provider)) from None
        finally:
            watchdog.cancel()
            await opened.aclose()
        if not state.done:
            raise AttemptFailed(stream_truncated_error(provider))
        self._stamp_calls(state)

    async def _responses_event(self, event: dict[str, Any], state: StepState, provider: str) -> None:
        kind = event.get("type")
        if kind in ("error", "response.failed"):
            raise AttemptFailed(classify_stream_error(event, provider=provider))
        if kind == "response.created":
            state.response_id = (event.get("response") or {}).get("id")
        elif kind == "response.output_text.delta":
            text = event.get("delta") or ""
            if text:
                state.text += text
                await self._part(Part(type="text", text=text))
        elif kind in ("response.output_item.added", "response.output_item.done"):
            item = event.get("item") or {}
            if item.get("type") != "function_call":
                return
            index = int(event.get("output_index") or 0)
            call = state.calls.setdefault(index, ToolCall(index=index))
            call.id = item.get("call_id") or call.id
            call.name = item.get("name") or call.name
            if kind == "response.output_item.done":
                call.args = item.get("arguments") or call.args
                call.created_at = rfc3339(self._clock.now())
                await self._publish_call(call)
        elif kind == "response.function_call_arguments.delta":
            growing = state.calls.get(int(event.get("output_index") or 0))
            piece = event.get("delta") or ""
            if growing is not None and piece:
                growing.args += piece
                await self._part(
                    Part(type="tool-call", tool_call_id=growing.id, tool_name=growing.name, args_delta=piece)
                )
        elif kind in ("response.completed", "response.incomplete"):
            response = event.get("response") or {}
            state.response_id = response.get("id") or state.response_id
            usage = response.get("usage")
            if isinstance(usage, dict):
                state.usage = Usage(
                    input_tokens=int(usage.get("input_tokens") or 0),
                    output_tokens=int(usage.get("output_tokens") or 0),
                    total_tokens=int(usage.get("total_tokens") or 0),
                    reasoning_tokens=int(
                        (usage.get("output_tokens_details") or {}).get("reasoning_tokens") or 0
                    ),
                    cache_read_tokens=int(
                        (usage.get("input_tokens_details") or {}).get("cached_tokens") or 0
                    ),
                )
            state.finish_reason = "tool_calls" if state.calls else "stop"
            if kind == "response.incomplete" and not state.calls:
                state.finish_reason = "length"
            state.done = True

    async def _event(self, data: str, state: StepState, provider: str) -> None:
        if data == "[DONE]":
            state.done = state.finish_reason is not None
            return
        try:
            payload = msgspec.json.decode(data)
        except msgspec.DecodeError:
            raise AttemptFailed(
                classify_stream_error({"error": {"message": "malformed stream event"}}, provider=provider)
            ) from None
        if not isinstance(payload, dict):
            return
        if "error" in payload:
            raise AttemptFailed(classify_stream_error(payload, provider=provider))
        await self._chunk(payload, state)

    async def _chunk(self, chunk: dict[str, Any], state: StepState) -> None:
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            details = usage.get("completion_tokens_details") or {}
            cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
            state.usage = Usage(
                input_tokens=int(usage.get("prompt_tokens") or 0),
                output_tokens=int(usage.get("completion_tokens") or 0),
                total_tokens=int(usage.get("total_tokens") or 0),
                reasoning_tokens=int(details.get("reasoning_tokens") or 0),
                cache_read_tokens=int(cached),
            )
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if text:
                state.text += text
                await self._part(Part(type="text", text=text))
            for call_delta in delta.get("tool_calls") or ():
                await self._call_delta(call_delta, state)
            if choice.get("finish_reason"):
                state.finish_reason = choice["finish_reason"]
                self._stamp_calls(state)
                for call in state.complete_calls():
                    if not call.published:
                        await self._publish_call(call)
        if state.finish_reason is not None and chunk.get("usage"):
            state.done = True

    async def _call_delta(self, delta: dict[str, Any], state: StepState) -> None:
        index = int(delta.get("index") or 0)
        # A new index means every earlier call is complete.
        if index not in state.calls:
            now = rfc3339(self._clock.now())
            for earlier in state.calls.values():
                if earlier.created_at is None:
                    earlier.created_at = now
                    await self._publish_call(earlier)
        call = state.calls.setdefault(index, ToolCall(index=index))
        fn = delta.get("function") or {}
        call.id = delta.get("id") or call.id
        call.name = call.name or fn.get("name") or ""
        piece = fn.get("arguments") or ""
        if piece:
            call.args += piece
            await self._part(
                Part(type="tool-call", tool_call_id=call.id, tool_name=call.name, args_delta=piece)
            )

    def _stamp_calls(self, state: StepState) -> None:
        now = rfc3339(self._clock.now())
        for call in state.calls.values():
            if call.created_at is None:
                call.created_at = now

    async def _publish_call(self, call: ToolCall) -> None:
        call.published = True
        await self._part(
            Part(
                type="tool-call",
                tool_call_id=call.id,
                tool_name=call.name,
                args=call.args or "{}",
                created_at=call.created_at,
            )
        )

    async def _part(self, part: Part) -> None:
        await self._publish({"type": "message_part", "message_part": {"role": "assistant", "part": part}})

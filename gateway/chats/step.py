"""One model step: stream an answer from the chat's model, on any upstream dialect, retried as a
whole.

The step runs on the failover loop every endpoint uses (:class:`~gateway.upstream.failover.Failover`)
with the chats' own retry policy (``CHAT_RETRY_POLICY``: 25 attempts, 1 s doubling to 60 s,
Retry-After as a minimum), the context-window rule of the plan, and each scheduled retry
published as a ``retry`` event. One attempt opens the stream through the deployment's dialect
(:meth:`~gateway.dialects.UpstreamDialect.conversation_call`) under the startup guard, then reads
it to the end as Chat Completions chunks under the post-commit guard (idle timeout, truncation,
in-band errors). Any failure discards the partial step: the attempt fails and the loop decides.
Nothing is persisted by a failed attempt.

A stream that breaks after its commit point with a retryable failure (cut, idle stall, in-band
failure, too many malformed events) is continued first when the plan has a deployment whose
provider can continue an assistant message (``continuation``): the same conversation with the
text streamed so far as a trailing assistant message, read into the same step, so the parts
already published stay valid and the rest follows them (the rules of
:mod:`gateway.exchange.rescue`: text only, at most ``MAX_RESCUES``, a refusal leaves the
original failure to the loop). Only when that is not possible does the attempt fail.

On the first step of a follow-up turn, an attempt on the deployment that stored the previous
answer may chain (:class:`Chain`: system + new user messages + ``previous_response_id``). An
upstream that no longer knows that response (``previous_response_not_found``) is asked again at
once with the full history (the loop's ``replay`` hook), and so is any other deployment.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from gateway.chats.model import Part, Usage
from gateway.chats.prompt import Chain
from gateway.clock import Clock, Watchdog
from gateway.dialects import ChunkReader, dialect_for
from gateway.dialects.responses import deployment_key, is_stale_chain
from gateway.errors import AttemptFailed, ClassifiedError, ErrorKind, build_error
from gateway.errors.client import GatewayError
from gateway.exchange.rescue import MAX_RESCUES
from gateway.token_estimate import estimate_chat_tokens
from gateway.upstream import Deployment, Router
from gateway.upstream.call import OpenedStream, open_stream
from gateway.upstream.catalog import ModelCatalog
from gateway.upstream.committed import run_committed
from gateway.upstream.context_check import fit_plan
from gateway.upstream.failover import Attempt, Failover, Trace
from gateway.upstream.retry import CHAT_RETRY_POLICY, RetryEvent, RetryPolicy, rfc3339
from gateway.upstream.sse import SSEEvent

Publish = Callable[[dict[str, Any]], Awaitable[None]]


class ToolCall(msgspec.Struct):
    index: int
    id: str = ""
    name: str = ""
    args: str = ""
    created_at: str | None = None
    published: bool = False


class StepState:
    """What the step has produced so far (read by the loop when a turn is interrupted)."""

    def __init__(self) -> None:
        self.text = ""
        self.response_id: str | None = None  # a Responses upstream's id for this answer
        self.calls: dict[int, ToolCall] = {}
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.done = False
        self.committed = False  # the stream passed its commit point (parts were published)

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
        catalog: ModelCatalog | None = None,
        policy: RetryPolicy = CHAT_RETRY_POLICY,
        store: bool = True,
    ) -> None:
        self._router = router
        self._clock = clock
        self._publish = publish
        self._on_retry = on_retry
        self._catalog = catalog
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
        """Run the step; ``state_box[0]`` is always the current attempt's state. Raises
        :class:`AttemptFailed` when no attempt succeeded."""
        plan = self._plan(model, messages, tools)
        chained = [chain]  # dropped once an upstream forgot the response

        def chain_for(deployment: Deployment) -> Chain | None:
            found = chained[0]
            if found is None or not dialect_for(deployment.api).stores_responses:
                return None
            return found if found.deployment == deployment_key(deployment) else None

        def replay(attempt: Attempt, error: ClassifiedError) -> bool:
            if chain_for(attempt.deployment) is None or not is_stale_chain(error):
                return False
            chained[0] = None  # the upstream forgot the response: the history, now, uncounted
            return True

        async def attempt(attempt: Attempt) -> tuple[StepState, Deployment]:
            state = StepState()
            state_box[:] = [state]
            try:
                await self._attempt(attempt, messages, tools, state, chain_for(attempt.deployment))
            except AttemptFailed as failed:
                if not await self._continue(
                    plan, attempt.deployment, messages, tools, state, failed.classified
                ):
                    raise
            return state, attempt.deployment

        failover: Failover[tuple[StepState, Deployment]] = Failover(
            self._router,
            self._clock,
            Trace(),
            policy=lambda _: self._policy,
            on_retry=self._on_retry,
            replay=replay,
        )
        return await failover.run(plan, attempt)

    def _plan(
        self, model: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]]
    ) -> list[Deployment]:
        plan = self._router.plan(model)
        if not plan:
            raise AttemptFailed(build_error(ErrorKind.CONFIG, retryable=False))
        if self._catalog is None:
            return plan
        try:
            return fit_plan(
                plan,
                self._catalog,
                lambda: estimate_chat_tokens({"messages": messages, "tools": tools}),
                param="messages",
            )
        except GatewayError as refused:
            raise AttemptFailed(
                build_error(ErrorKind.CONFIG, status_code=400, detail=refused.message, code=refused.code)
            ) from None

    async def _attempt(
        self,
        attempt: Attempt,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        state: StepState,
        chain: Chain | None,
    ) -> None:
        call = dialect_for(attempt.deployment.api).conversation_call(
            attempt,
            chain.messages if chain is not None else messages,
            tools,
            previous_response_id=chain.previous_response_id if chain is not None else None,
            store=self.store,
        )
        opened = await open_stream(attempt, call.request, call.roles, self._clock)
        state.committed = True
        await self._read_stream(attempt, opened, call.reader(self._clock), state)

    async def _read_stream(
        self, attempt: Attempt, opened: OpenedStream, reader: ChunkReader, state: StepState
    ) -> None:
        """Read a committed stream into ``state``; raises AttemptFailed when it breaks."""
        upstream = attempt.upstream
        failures: list[ClassifiedError] = []

        async def body(idle: Watchdog) -> None:
            for event, _, payload in opened.events:
                if await self._read(reader, reader.feed(event, payload), state):
                    return
            async for chunk in opened.chunks:
                idle.touch()
                for event in opened.decoder.feed(chunk):
                    if await self._read(reader, reader.feed(event, None), state):
                        return
            for event in opened.decoder.flush():
                if await self._read(reader, reader.feed(event, None), state):
                    return
            await self._read(reader, reader.end(), state)

        async def fail(failure: ClassifiedError) -> None:
            failures.append(failure)

        await run_committed(
            opened,
            body,
            fail,
            provider=upstream.classifier_key,
            clock=self._clock,
            idle_timeout=upstream.settings.timeouts.idle,
        )
        if failures:
            raise AttemptFailed(failures[0])
        state.response_id = reader.response_id
        state.done = True
        self._stamp_calls(state)

    async def _continue(
        self,
        plan: list[Deployment],
        broken: Deployment,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        state: StepState,
        failure: ClassifiedError,
    ) -> bool:
        """Continue a broken committed stream into ``state``; False when it cannot be."""
        if not (state.committed and failure.retryable and failure.failover) or state.calls:
            return False
        index = plan.index(broken) if broken in plan else len(plan)
        candidates = [d for d in plan[index + 1 :] if self._router.upstream(d).settings.continues]
        if not candidates:
            return False
        chat: dict[str, Any] = {"messages": messages}
        if tools:
            chat["tools"] = tools
        health = self._router.health
        for _ in range(MAX_RESCUES):
            broken_usage = state.usage

            async def once(attempt: Attempt) -> None:
                call = dialect_for(attempt.deployment.api).continuation_call(attempt, chat, state.text)
                opened = await open_stream(attempt, call.request, call.roles, self._clock)
                await self._read_stream(
                    attempt, opened, _Trimmed(call.reader(self._clock), state.text), state
                )

            failover: Failover[None] = Failover(self._router, self._clock, Trace())
            state.usage = None  # the continuation's own, added to the broken part's below
            try:
                await failover.run(candidates, once)
            except AttemptFailed as failed:
                after = failed.classified
                if state.calls or not (after.retryable and after.failover):
                    health.rescue(broken.provider, "refused" if not after.retryable else "failed")
                    return False
                continue  # broke again after its own commit: continue what it added
            finally:
                state.usage = _add(broken_usage, state.usage)
            health.rescue(broken.provider, "continued")
            return True
        return False

    async def _read(self, reader: ChunkReader, chunks: list[dict[str, Any]], state: StepState) -> bool:
        """Take the chunks of one event; True when the answer is complete."""
        for chunk in chunks:
            await self._chunk(chunk, state)
        return reader.finished

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


class _Trimmed:
    """A continuation's reader: its first text loses the whitespace the published text already
    ends with (a prefill is sent without it, so the upstream may repeat it)."""

    def __init__(self, reader: ChunkReader, text: str) -> None:
        self._reader = reader
        self._space = text[len(text.rstrip()) :]
        self._first = True
        self.finished = False
        self.response_id: str | None = None  # a continued answer is stored nowhere as a whole

    def feed(self, event: SSEEvent, payload: dict[str, Any] | None) -> list[dict[str, Any]]:
        chunks = self._trim(self._reader.feed(event, payload))
        self.finished = self._reader.finished
        return chunks

    def end(self) -> list[dict[str, Any]]:
        chunks = self._trim(self._reader.end())
        self.finished = self._reader.finished
        return chunks

    def _trim(self, chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not self._first:
            return chunks
        for chunk in chunks:
            for choice in chunk.get("choices") or ():
                delta = choice.get("delta") or {}
                text = delta.get("content")
                if isinstance(text, str) and text:
                    self._first = False
                    if self._space:
                        delta["content"] = (
                            text[len(self._space) :] if text.startswith(self._space) else text.lstrip()
                        )
                    return chunks
        return chunks


def _add(a: Usage | None, b: Usage | None) -> Usage | None:
    if a is None or b is None:
        return a or b
    return Usage(
        input_tokens=a.input_tokens + b.input_tokens,
        output_tokens=a.output_tokens + b.output_tokens,
        total_tokens=a.total_tokens + b.total_tokens,
        reasoning_tokens=a.reasoning_tokens + b.reasoning_tokens,
        cache_read_tokens=a.cache_read_tokens + b.cache_read_tokens,
    )

"""The turn: model steps until the model stops calling local tools.

Each step streams through :class:`StepRunner`; built-in tool calls of the step run
concurrently; the step is persisted atomically (assistant message with every call, then one
tool message per executed call). A call to a dynamic tool ends the turn in
``requires_action``. An interrupt persists what the step produced so far, with synthetic error
results stamped at the interrupt time for calls that have none.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from gateway.chats.model import Message, Part, PendingCall
from gateway.chats.prompt import build_messages, resolve_chain
from gateway.chats.step import StepRunner, StepState, ToolCall
from gateway.chats.store import ChatStore, message_template
from gateway.chats.tools import ToolSet
from gateway.clock import Clock
from gateway.dialects import dialect_for
from gateway.dialects.responses import deployment_key
from gateway.errors import AttemptFailed, ClassifiedError, ErrorKind, build_error, chat_event_error
from gateway.upstream import Deployment, Router
from gateway.upstream.catalog import ModelCatalog
from gateway.upstream.retry import RetryEvent, rfc3339

log = logging.getLogger("gateway.chats")
_ENC = msgspec.json.Encoder()
INTERRUPTED = "tool call was interrupted before it produced a result"

# Called after each upstream step that produced an answer (the policy's usage charge).
OnStep = Callable[[StepState, Deployment], Awaitable[None]]


class Outcome(enum.Enum):
    DONE = "done"
    REQUIRES_ACTION = "requires_action"
    ERROR = "error"
    LOST = "lost"


def unexpected_error() -> ClassifiedError:
    """What a turn ends with when the gateway itself failed (a bug, corrupt state)."""
    return build_error(ErrorKind.GENERIC, retryable=False)


async def end_in_error(store: ChatStore, chat_id: str, worker: str, now: str, error: ClassifiedError) -> bool:
    """``running`` -> ``error`` with an ``error`` event; False when the worker no longer owns
    the chat (interrupted, deleted, taken over)."""
    event = {"type": "error", "chat_id": chat_id, "error": chat_event_error(error)}
    result = await store.run(
        "finish", chat_id, now, worker, "error", error.message, _ENC.encode(event).decode()
    )
    return result[0] == "error"


class Turn:
    """One run of one chat by one worker."""

    def __init__(
        self,
        *,
        store: ChatStore,
        router: Router,
        clock: Clock,
        catalog: ModelCatalog | None,
        chat_id: str,
        model: str,
        worker: str,
        tools: ToolSet,
        max_steps: int,
        action_timeout: float,
        upstream_store: bool = True,
        on_step: OnStep | None = None,
    ) -> None:
        self.store = store
        self.on_step = on_step
        self.clock = clock
        self.catalog = catalog
        self.chat_id = chat_id
        self.model = model
        self.worker = worker
        self.tools = tools
        self.max_steps = max_steps
        self.action_timeout = action_timeout
        self.state_box: list[StepState] = []
        self.results: dict[str, Part] = {}
        self.persisted_step = True
        # Set just before the turn's closing transition: an interrupt seen after that is ours.
        self.ending = False
        self.deployment: Deployment | None = None
        self.upstream_store = upstream_store
        self.runner = StepRunner(
            router, clock, self._publish, on_retry=self._retry, catalog=catalog, store=upstream_store
        )

    async def _publish(self, event: dict[str, Any]) -> None:
        await self.store.publish(
            self.chat_id, self.worker, {"type": event.pop("type"), "chat_id": self.chat_id, **event}
        )

    async def _retry(self, event: RetryEvent) -> None:
        # Clients drop the partial parts of the turn on `retry`; a reconnecting client's
        # snapshot starts after it too.
        await self.store.publish(
            self.chat_id,
            self.worker,
            {"type": "retry", "chat_id": self.chat_id, "retry": event.payload()},
            starts_turn=True,
        )

    def _now(self) -> str:
        return rfc3339(self.clock.now())

    async def run(self) -> Outcome:
        for step in range(self.max_steps):
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                # An interrupt that something below swallowed: no new step after it.
                raise asyncio.CancelledError
            history = await self.store.messages(self.chat_id)
            self.persisted_step = False
            self.results = {}
            # Only a turn's first step may chain; later ones replay what the turn added.
            chain = resolve_chain(history) if step == 0 and self.upstream_store else None
            try:
                state, deployment = await self.runner.run(
                    self.model, build_messages(history), self.tools.definitions(), self.state_box, chain
                )
            except AttemptFailed as failed:
                self.persisted_step = True
                return await self.fail(failed.classified)
            self.deployment = deployment
            if self.on_step is not None:
                await self.on_step(state, deployment)
            calls = [c for c in state.complete_calls() if c.id]
            builtin = [c for c in calls if c.name not in self.tools.dynamic]
            dynamic = [c for c in calls if c.name in self.tools.dynamic]
            await self._execute(builtin)
            if not await self._persist(state, calls):
                return Outcome.LOST
            if dynamic:
                self.ending = True
                pending = [PendingCall(c.id, c.name, c.args or "{}") for c in dynamic]
                deadline = self.clock.now() + self.action_timeout
                event = {
                    "type": "action_required",
                    "chat_id": self.chat_id,
                    "action_required": {"tool_calls": pending},
                }
                result = await self.store.run(
                    "finish",
                    self.chat_id,
                    self._now(),
                    self.worker,
                    "requires_action",
                    _ENC.encode(pending).decode(),
                    repr(deadline),
                    _ENC.encode(event).decode(),
                )
                if result[0] == "requires_action":
                    await self.store.track_action(self.chat_id, deadline)
                    return Outcome.REQUIRES_ACTION
                return Outcome.DONE
            if not (builtin and state.finish_reason == "tool_calls"):
                break
        return await self.finish()

    async def fail(self, error: ClassifiedError) -> Outcome:
        """End the turn in ``error`` with an ``error`` event (if the chat is still ours)."""
        self.ending = True
        ended = await end_in_error(self.store, self.chat_id, self.worker, self._now(), error)
        return Outcome.ERROR if ended else Outcome.DONE

    async def finish(self) -> Outcome:
        self.ending = True
        # A queued message may be promoted: mark first, so a crash before the enqueue is seen.
        await self.store.mark_pending(self.chat_id, self.clock.now())
        result = await self.store.run("finish", self.chat_id, self._now(), self.worker, "done")
        if result[0] == "pending" and result[1] == "1":
            await self.store.enqueue(self.chat_id)
        return Outcome.DONE

    async def _execute(self, calls: list[ToolCall]) -> None:
        done_at: dict[str, str] = {}

        async def one(call: ToolCall) -> tuple[str, bool]:
            try:
                return await self.tools.execute(call.name, call.args)
            finally:
                done_at[call.id] = self._now()

        tasks = [asyncio.ensure_future(one(c)) for c in calls]
        try:
            outcomes = await asyncio.gather(*tasks)
        except asyncio.CancelledError:
            for task in tasks:
                task.cancel()
            for call, task in zip(calls, tasks, strict=True):
                if task.done() and not task.cancelled() and task.exception() is None:
                    self.results[call.id] = self._result_part(call, *task.result(), done_at[call.id])
            raise
        for call, (result, is_error) in zip(calls, outcomes, strict=True):
            part = self._result_part(call, result, is_error, done_at[call.id])
            self.results[call.id] = part
        for call in calls:  # published in call order
            await self._publish(
                {"type": "message_part", "message_part": {"role": "tool", "part": self.results[call.id]}}
            )

    def _result_part(self, call: ToolCall, result: str, is_error: bool, at: str) -> Part:
        tool = self.tools.builtin.get(call.name)
        return Part(
            type="tool-result",
            tool_call_id=call.id,
            tool_name=call.name,
            mcp_server=tool.server if tool else None,
            result=result,
            is_error=is_error,
            created_at=at,
        )

    def _messages(self, state: StepState, calls: list[ToolCall], results: list[Part]) -> list[Message]:
        now = self._now()
        content: list[Part] = []
        if state.text:
            content.append(Part(type="text", text=state.text))
        for call in calls:
            tool = self.tools.builtin.get(call.name)
            content.append(
                Part(
                    type="tool-call",
                    tool_call_id=call.id,
                    tool_name=call.name,
                    mcp_server=tool.server if tool else None,
                    args=call.args or "{}",
                    created_at=call.created_at,
                )
            )
        usage = state.usage
        if usage is not None and self.deployment is not None and self.catalog is not None:
            usage = msgspec.structs.replace(usage, context_limit=self.catalog.window(self.deployment))
        messages = [
            Message(
                id=0,
                chat_id=self.chat_id,
                role="assistant",
                content=content,
                created_at=now,
                model=self.model,
                usage=usage,
                **self._upstream_ids(state),
            )
        ]
        messages += [
            Message(id=0, chat_id=self.chat_id, role="tool", content=[r], created_at=r.created_at or now)
            for r in results
        ]
        return messages

    def _upstream_ids(self, state: StepState) -> dict[str, str]:
        deployment = self.deployment
        if not self.upstream_store or state.response_id is None or deployment is None:
            return {}
        if not dialect_for(deployment.api).stores_responses:
            return {}
        return {"provider_response_id": state.response_id, "deployment": deployment_key(deployment)}

    async def _persist(self, state: StepState, calls: list[ToolCall]) -> bool:
        results = [self.results[c.id] for c in calls if c.id in self.results]
        messages = self._messages(state, calls, results)
        if not messages[0].content:
            self.persisted_step = True
            return True
        self.persisted_step = True
        # Shielded: an interrupt arriving now must not leave the step half known.
        out = await asyncio.shield(
            self.store.run(
                "persist_step",
                self.chat_id,
                self._now(),
                self.worker,
                *(message_template(m) for m in messages),
            )
        )
        return out[0] == "ok"

    async def persist_interrupted(self) -> None:
        """After an interrupt: the partial step, with error results for calls left without one."""
        if self.persisted_step or not self.state_box:
            return
        state = self.state_box[0]
        now = self._now()
        calls = [c for c in state.complete_calls() if c.id]
        for call in calls:
            if call.id not in self.results:
                self.results[call.id] = self._result_part(
                    call, _ENC.encode({"error": INTERRUPTED}).decode(), True, now
                )
        await self._persist(state, calls)

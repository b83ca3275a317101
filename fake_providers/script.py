"""Scripted behaviour: steps queued through `POST /_fake/script` for the next requests.

A request for model M takes the head step of M's queue, or, when M has none, of the queue for all
models. A step applies to `times` requests (null: every request, until cleared) and then leaves the
queue. Only generation requests (e.g. chat completions) take steps; listings and the journal do not.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import msgspec

from fake_providers.faults import UnknownFault, parse_fault


class ScriptedToolCall(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """A tool call to answer with. `arguments`: a JSON value (sent JSON-encoded) or a string (sent
    verbatim, so broken JSON is possible); omitted: generated from the tool's schema."""

    name: str
    arguments: Any = msgspec.UNSET
    id: str | None = None


class ScriptedUsage(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Token counts to report. The cache counts are Anthropic's (other dialects ignore them)."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None


class ScriptedReply(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Overrides of the deterministic answer. Unset fields keep the usual behaviour.

    finish_reason uses Chat Completions names (`stop`, `length`, `tool_calls`, `content_filter`);
    each dialect maps them to its own. `chunks` sets how streamed text is split (joined, it is the text).
    """

    text: str | None = None
    chunks: list[str] | None = None
    tool_calls: list[ScriptedToolCall] | None = None
    finish_reason: str | None = None
    usage: ScriptedUsage | None = None
    thinking: str | None = None  # Anthropic: a signed thinking block before the answer


class ScriptStep(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """One scripted behaviour.

    fault: a fault name from the catalogue (`429`, `fault-429`, `stall-3`, `slow-50ms`, ...).
    reply: what to answer (used when the fault still produces an answer: slow, stall, cut, ...).
    times: how many requests this step serves; null serves every request until cleared.
    headers: response headers added or replaced on this answer.
    status, body: replace the status and the JSON body of an error fault.
    """

    fault: str | None = None
    reply: ScriptedReply | None = None
    times: int | None = 1
    headers: dict[str, str] = {}
    status: int | None = None
    body: Any = msgspec.UNSET


class ScriptRequest(msgspec.Struct, forbid_unknown_fields=True):
    """The `POST /_fake/script` body. `model`: the model whose requests take these steps (null: any)."""

    steps: list[ScriptStep]
    model: str | None = None


class ScriptQueue(msgspec.Struct):
    """One queue in the `GET /_fake/script` view; `times` shows what is left of each step."""

    model: str | None
    steps: list[ScriptStep]


class ScriptView(msgspec.Struct):
    queues: list[ScriptQueue]


class InvalidScript(ValueError):
    pass


def check_step(step: ScriptStep, index: int) -> None:
    if step.times is not None and step.times < 1:
        raise InvalidScript(f"steps[{index}].times must be at least 1 (or null for every request)")
    if step.fault is not None:
        try:
            parse_fault(step.fault)
        except UnknownFault as exc:
            raise InvalidScript(f"steps[{index}].fault: {exc}") from exc
    if step.status is not None and not 100 <= step.status <= 599:
        raise InvalidScript(f"steps[{index}].status must be an HTTP status")


class ScriptBook:
    """The queued steps, per model and for all models."""

    def __init__(self) -> None:
        self._queues: dict[str | None, deque[ScriptStep]] = {}

    def add(self, request: ScriptRequest) -> None:
        for index, step in enumerate(request.steps):
            check_step(step, index)
        queue = self._queues.setdefault(request.model, deque())
        queue.extend(msgspec.structs.replace(step) for step in request.steps)

    def take(self, model: str) -> ScriptStep | None:
        for key in (model, None):
            queue = self._queues.get(key)
            if queue:
                step = queue[0]
                if step.times is not None:
                    step.times -= 1
                    if step.times == 0:
                        queue.popleft()
                return step
        return None

    def view(self) -> ScriptView:
        return ScriptView(
            queues=[
                ScriptQueue(model=model, steps=list(queue)) for model, queue in self._queues.items() if queue
            ]
        )

    def clear(self) -> None:
        self._queues.clear()

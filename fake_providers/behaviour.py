"""What one generation request should get: a scripted step, a fault named by the model, or neither."""

from __future__ import annotations

from typing import Any

import msgspec

from fake_providers.faults import Fault, fault_for_model, parse_fault
from fake_providers.script import ScriptBook, ScriptedReply


class Behaviour(msgspec.Struct, frozen=True, kw_only=True):
    fault: Fault | None = None
    reply: ScriptedReply | None = None
    headers: dict[str, str] = {}
    status: int | None = None
    body: Any = msgspec.UNSET


def resolve_behaviour(book: ScriptBook, model: str) -> Behaviour:
    """Scripts come first; then a `fault-…` model name. Raises UnknownFault for a bad model name."""
    step = book.take(model)
    if step is not None:
        return Behaviour(
            fault=parse_fault(step.fault) if step.fault is not None else None,
            reply=step.reply,
            headers=step.headers,
            status=step.status,
            body=step.body,
        )
    return Behaviour(fault=fault_for_model(model))

"""Turning a behaviour into a `ReplyPlan`: where each fault strikes in a JSON body or an SSE stream.

This is dialect-neutral: the dialect supplies headers, error bodies and in-band error frames; the
body or frames of the successful answer are rendered lazily, only when the fault needs them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import msgspec

from fake_providers.behaviour import Behaviour
from fake_providers.dialect import Dialect, ErrorAnswer
from fake_providers.exchange import Exchange
from fake_providers.faults import DEFAULT_CHUNKS_BEFORE_FAULT, ErrorKind, Fault, FaultKind
from fake_providers.reply import Ending, ReplyPlan
from fake_providers.sse import DONE_FRAME, truncated

_ENCODER = msgspec.json.Encoder()


def _error_body(answer: ErrorAnswer, behaviour: Behaviour) -> bytes:
    """The dialect's error body, unless the scripted step brings its own."""
    return answer.body if behaviour.body is msgspec.UNSET else _ENCODER.encode(behaviour.body)


def error_plan(dialect: Dialect, exchange: Exchange, error: ErrorKind, behaviour: Behaviour) -> ReplyPlan:
    answer = dialect.error_answer(error, exchange)
    return ReplyPlan(
        status=behaviour.status or answer.status,
        headers=tuple(answer.headers),
        parts=(_error_body(answer, behaviour),),
    )


def _error_as_200(dialect: Dialect, exchange: Exchange, error: ErrorKind, behaviour: Behaviour) -> ReplyPlan:
    answer = dialect.error_answer(error, exchange)
    headers = tuple(dialect.success_headers(exchange, stream=False))
    return ReplyPlan(status=behaviour.status or 200, headers=headers, parts=(_error_body(answer, behaviour),))


def json_plan(headers: tuple[tuple[str, str], ...], body: bytes, fault: Fault | None) -> ReplyPlan:
    kind = fault.kind if fault is not None else None
    half = body[: len(body) // 2]
    # Stalled and cut bodies announce their whole length and send half of it.
    announced = (*headers, ("content-length", str(len(body))))
    if kind is FaultKind.RESET:
        return ReplyPlan(status=200, reset=True)
    if kind is FaultKind.SILENCE:
        return ReplyPlan(status=200, headers=announced, ending=Ending.HANG)
    if kind is FaultKind.STALL:
        return ReplyPlan(status=200, headers=announced, parts=(half,), ending=Ending.HANG)
    if kind is FaultKind.CUT:
        return ReplyPlan(status=200, headers=announced, parts=(half,), ending=Ending.CLOSE)
    if kind is FaultKind.MALFORMED:
        return ReplyPlan(status=200, headers=headers, parts=(half,))
    if kind is FaultKind.SLOW and fault is not None:
        return ReplyPlan(
            status=200, headers=headers, parts=(body,), first_delay=fault.first_delay, delay_headers=True
        )
    return ReplyPlan(status=200, headers=headers, parts=(body,))


def stream_plan(
    dialect: Dialect,
    exchange: Exchange,
    headers: tuple[tuple[str, str], ...],
    frames: Sequence[bytes],
    fault: Fault | None,
) -> ReplyPlan:
    """`frames` is the whole successful stream, its terminal frame last; a fault never sends that one."""
    kind = fault.kind if fault is not None else None
    after = fault.after if fault is not None else None
    before = min(DEFAULT_CHUNKS_BEFORE_FAULT if after is None else after, len(frames) - 1)
    if kind is FaultKind.RESET:
        return ReplyPlan(status=200, reset=True)
    if kind is FaultKind.SILENCE:
        return ReplyPlan(status=200, headers=headers, ending=Ending.HANG)
    if kind is FaultKind.STALL:
        return ReplyPlan(status=200, headers=headers, parts=tuple(frames[:before]), ending=Ending.HANG)
    if kind is FaultKind.CUT:
        return ReplyPlan(status=200, headers=headers, parts=tuple(frames[:before]), ending=Ending.CLOSE)
    if kind is FaultKind.MALFORMED:
        bad = min(before, max(len(frames) - 2, 0))
        parts = (*frames[:bad], truncated(frames[bad]), *frames[bad + 1 :])
        return ReplyPlan(status=200, headers=headers, parts=parts)
    if kind is FaultKind.GARBAGE:
        # A cut-off copy of the chunk it precedes: the stream loses nothing.
        at = min(before, max(len(frames) - 1, 0))
        parts = (*frames[:at], truncated(frames[at]), *frames[at:])
        return ReplyPlan(status=200, headers=headers, parts=parts)
    if kind is FaultKind.NO_DONE:
        kept = frames[:-1] if frames and frames[-1] == DONE_FRAME else frames
        return ReplyPlan(status=200, headers=headers, parts=tuple(kept))
    if kind is FaultKind.INBAND and fault is not None:
        error = fault.error or dialect.default_inband_error
        head = tuple(frames[: min(dialect.inband_head if after is None else after, len(frames) - 1)])
        tail = dialect.inband_frames(error, exchange, sent=len(head))
        return ReplyPlan(status=200, headers=headers, parts=(*head, *tail))
    if kind is FaultKind.SLOW and fault is not None:
        return ReplyPlan(
            status=200, headers=headers, parts=tuple(frames), first_delay=fault.first_delay, gap=fault.gap
        )
    return ReplyPlan(status=200, headers=headers, parts=tuple(frames))


def plan_answer(
    dialect: Dialect,
    exchange: Exchange,
    behaviour: Behaviour,
    *,
    stream: bool,
    render_json: Callable[[], bytes],
    render_stream: Callable[[], Sequence[bytes]],
) -> ReplyPlan:
    """The whole answer to a valid generation request, fault included, with scripted headers applied."""
    fault = behaviour.fault
    kind = fault.kind if fault is not None else None
    if kind is FaultKind.HTTP_ERROR and fault is not None and fault.error is not None:
        plan = error_plan(dialect, exchange, fault.error, behaviour)
    elif kind is FaultKind.ERROR_200 and fault is not None:
        plan = _error_as_200(dialect, exchange, fault.error or dialect.default_200_error, behaviour)
    elif kind is FaultKind.INBAND and not stream and fault is not None:
        plan = _error_as_200(dialect, exchange, fault.error or dialect.default_inband_error, behaviour)
    elif stream:
        headers = tuple(dialect.success_headers(exchange, stream=True))
        plan = stream_plan(dialect, exchange, headers, render_stream(), fault)
    else:
        headers = tuple(dialect.success_headers(exchange, stream=False))
        plan = json_plan(headers, render_json(), fault)
    return plan.with_headers(behaviour.headers)

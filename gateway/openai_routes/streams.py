"""The event streams of the simple routes: what commits them and what ends them cleanly.

* Completions (``/v1/completions``): chunks like Chat's, with ``choices[].text``; text, a finish
  reason or the usage commits; ``[DONE]`` ends.
* Transcriptions (``/v1/audio/transcriptions`` with ``stream``): ``transcript.text.delta``
  events commit; ``transcript.text.done`` ends.

After the commit point both are relayed byte for byte by the shared passthrough relay; an
in-band failure is Chat's ``data: {"error": ...}`` frame, never a ``[DONE]``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from gateway.clock import Clock
from gateway.errors import chat_stream_error_frame
from gateway.upstream.call import EventRole, EventRoles, decode_object
from gateway.upstream.relay import PassthroughRelay, StreamTap
from gateway.upstream.sse import SSEEvent


class CompletionRoles:
    def role(self, event: SSEEvent) -> tuple[EventRole, dict[str, Any] | None]:
        if event.data == "[DONE]":
            return EventRole.DONE, None
        chunk = decode_object(event.data)
        if chunk is None or "error" in chunk:
            return EventRole.ERROR, chunk
        if chunk.get("usage"):
            return EventRole.MEANINGFUL, chunk
        for choice in chunk.get("choices") or ():
            if choice.get("text") or choice.get("finish_reason"):
                return EventRole.MEANINGFUL, chunk
        return EventRole.HARMLESS, chunk


class TranscriptRoles:
    def role(self, event: SSEEvent) -> tuple[EventRole, dict[str, Any] | None]:
        if event.data == "[DONE]":
            return EventRole.DONE, None
        payload = decode_object(event.data)
        if payload is None or "error" in payload or payload.get("type") == "error":
            return EventRole.ERROR, payload
        kind = str(payload.get("type") or "")
        if kind.endswith(".done") or (kind.endswith(".delta") and payload.get("delta")):
            return EventRole.MEANINGFUL, payload
        return EventRole.HARMLESS, payload


class StreamKind(NamedTuple):
    roles: EventRoles
    done_marker: bytes  # found in the last event of a complete stream
    usage_chunk: bool  # asks for (and reads) Chat-style usage chunks


COMPLETIONS = StreamKind(CompletionRoles(), b"data: [DONE]", usage_chunk=True)
TRANSCRIPTS = StreamKind(TranscriptRoles(), b'"transcript.text.done"', usage_chunk=False)


def relay(
    kind: StreamKind, *, provider: str, clock: Clock, idle_timeout: float, tap: StreamTap | None
) -> PassthroughRelay:
    return PassthroughRelay(
        roles=kind.roles,
        done_marker=kind.done_marker,
        error_frames=chat_stream_error_frame,
        provider=provider,
        clock=clock,
        idle_timeout=idle_timeout,
        tap=tap,
    )

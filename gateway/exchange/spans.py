"""The trace span of one upstream attempt (chat-like operations: Chat Completions, Responses)."""

from __future__ import annotations

from gateway.telemetry.tracing import AttemptSpan, Tracing
from gateway.upstream.failover import Attempt


def attempt_span(tracing: Tracing, attempt: Attempt, *, public_model: str, stream: bool) -> AttemptSpan:
    upstream = attempt.upstream
    return tracing.attempt(
        operation="chat",
        kind=upstream.kind,
        provider=upstream.name,
        base_url=upstream.base_url,
        request_model=attempt.deployment.upstream_model,
        public_model=public_model,
        number=attempt.number,
        stream=stream,
    )

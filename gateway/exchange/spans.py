"""The trace span of one upstream attempt, named for the route's operation (``chat`` for Chat
Completions, Responses and Messages; ``embeddings``, ``text_completion``, ... for the other
OpenAI routes: the same names the request metrics carry)."""

from __future__ import annotations

from gateway.telemetry.metrics import operation_of
from gateway.telemetry.tracing import AttemptSpan, Tracing
from gateway.upstream.failover import Attempt


def attempt_span(
    tracing: Tracing, attempt: Attempt, *, route: str, public_model: str, stream: bool
) -> AttemptSpan:
    upstream = attempt.upstream
    return tracing.attempt(
        operation=operation_of(route),
        kind=upstream.kind,
        provider=upstream.name,
        base_url=upstream.base_url,
        request_model=attempt.deployment.upstream_model,
        public_model=public_model,
        number=attempt.number,
        stream=stream,
    )

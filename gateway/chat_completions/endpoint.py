"""``POST /v1/chat/completions``: route, forward, relay — with retries, failover and the commit point."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import msgspec

from gateway.api import asgi_io
from gateway.api.asgi_io import ClientDisconnected
from gateway.chat_completions.over_anthropic import (
    AnthropicToChatTranslator,
    anthropic_body,
    chat_completion_body,
)
from gateway.chat_completions.request import ChatRequest, parse_chat_request
from gateway.config import UpstreamApi
from gateway.errors import chat_stream_error_frame, error_response
from gateway.errors.client import GatewayError, InvalidRequest, NotFound
from gateway.policy.usage import StreamUsageTap, usage_from_body
from gateway.pricing import Usage
from gateway.services import Services
from gateway.telemetry.tracing import AttemptSpan, response_model, run_attempt
from gateway.token_estimate import estimate_chat_tokens
from gateway.translate import AnthropicContext, TranslationError
from gateway.upstream.call import (
    AnthropicStreamDialect,
    ChatStreamDialect,
    OpenedStream,
    call_json,
    open_stream,
)
from gateway.upstream.context_check import fit_plan
from gateway.upstream.failover import Attempt, AttemptFailed, Failover, Trace
from gateway.upstream.relay import PassthroughRelay
from gateway.upstream.sse import DONE_FRAME
from gateway.upstream.tool_schemas import repair_chat_tools
from gateway.upstream.translating_relay import TranslatingRelay

_ENCODER = msgspec.json.Encoder()
_CHAT_DIALECT = ChatStreamDialect()
_ANTHROPIC_DIALECT = AnthropicStreamDialect()
DONE_MARKER = DONE_FRAME[:-2]
T = TypeVar("T")


class Relay(Protocol):
    async def run(self, opened: OpenedStream, send: Callable[[bytes], Awaitable[None]]) -> None: ...


def translated(build: Callable[[], T]) -> T:
    """Run a dialect translation; a request it cannot express is the client's 400."""
    try:
        return build()
    except TranslationError as exc:
        raise InvalidRequest(exc.message, param=exc.param, code=exc.code) from exc


def model_not_found(model: str) -> NotFound:
    return NotFound(
        f"The model `{model}` does not exist or you do not have access to it.", code="model_not_found"
    )


def upstream_chat_body(request: ChatRequest, attempt: Attempt, *, ask_usage: bool = False) -> bytes:
    data: dict[str, Any] = request.data
    if ask_usage:
        # Policy: ask for streaming usage; the relay hides the extra chunk from this client.
        options = data.get("stream_options")
        data = {
            **data,
            "stream_options": {**(options if isinstance(options, dict) else {}), "include_usage": True},
        }
    if data.get("model") != attempt.deployment.upstream_model:
        data = {**data, "model": attempt.deployment.upstream_model}
    tools = data.get("tools")
    if isinstance(tools, list) and tools:
        repaired = repair_chat_tools(tools, attempt.upstream.schema_target)
        if repaired is not tools:
            data = {**data, "tools": repaired}
    return _ENCODER.encode(data)


async def handle(services: Services, scope: Any, receive: Any, send: Any) -> None:
    gauge = services.metrics.in_flight(ROUTE)
    gauge.inc()
    try:
        await _handle(services, scope, receive, send)
    finally:
        gauge.dec()


async def _handle(services: Services, scope: Any, receive: Any, send: Any) -> None:
    started = time.perf_counter()
    request_id = asgi_io.new_request_id()
    trace = Trace()
    base_headers = [("x-request-id", request_id)]
    policy = services.policy
    ticket = None
    try:
        caller = await policy.authenticate(asgi_io.presented_key_from_scope(scope))
        body = await asgi_io.read_body(scope, receive, services.settings.server.max_body_bytes)
        request = parse_chat_request(body)
        max_tokens = request.data.get("max_completion_tokens") or request.data.get("max_tokens")
        ticket = await policy.admit(
            caller,
            model=request.model,
            body_size=len(body),
            max_tokens=max_tokens if isinstance(max_tokens, int) else None,
            request_id=request_id,
            endpoint=ROUTE,
            started=started,
        )
        ticket.stream = request.stream
        base_headers += ticket.headers
        plan = services.router.plan(request.model)
        if not plan:
            raise model_not_found(request.model)
        plan = fit_plan(plan, services.catalog, lambda: estimate_chat_tokens(request.data), param="messages")
    except GatewayError as exc:
        await asgi_io.send_error(send, exc, headers=base_headers)
        if ticket is not None:
            ticket.settle(status=exc.status_code, error_type="invalid_request")
        services.metrics.request(
            route=ROUTE,
            model=None,
            status=exc.status_code,
            error_type=_refusal_type(exc),
            duration_s=time.perf_counter() - started,
            overhead_s=time.perf_counter() - started,
            ttft_s=None,
        )
        return
    except ClientDisconnected:
        return
    outcome = _Outcome()
    ask_usage = (
        request.stream and not request.include_usage and policy.enabled and policy.config.inject_stream_usage
    )
    no_options = policy.config.no_stream_options_providers

    clock = services.clock

    def headers_now(extra: dict[str, str] | None = None) -> list[tuple[str, str]]:
        out = [*(extra or {}).items(), *base_headers]
        if services.settings.server.timing_headers:
            out += trace.headers(time.perf_counter() - started)
        return out

    tracing = services.tracing

    async def try_json(attempt: Attempt) -> bytes:
        if tracing is None:
            return await json_once(attempt)
        span = tracing.attempt_span(attempt, public_model=request.model, stream=False)
        content = await run_attempt(span, json_once(attempt))
        span.succeed(usage=usage_from_body(content), model=response_model(content))
        return content

    async def try_stream(attempt: Attempt) -> tuple[OpenedStream, Relay]:
        if tracing is None:
            return await stream_once(attempt)
        span = tracing.attempt_span(attempt, public_model=request.model, stream=True)
        opened = await run_attempt(span, stream_once(attempt))
        outcome.span = span  # ended in _finish, when the stream is over
        return opened

    async def json_once(attempt: Attempt) -> bytes:
        upstream, deployment = attempt.upstream, attempt.deployment
        if deployment.api is UpstreamApi.ANTHROPIC:
            context = AnthropicContext()
            body = translated(lambda: anthropic_body(request.data, deployment.upstream_model, context))
            response = await call_json(attempt, upstream.request("POST", "/messages", body), clock)
            return chat_completion_body(
                response.content, model=deployment.upstream_model, created=int(clock.now()), context=context
            )
        req = upstream.request("POST", "/chat/completions", upstream_chat_body(request, attempt))
        return (await call_json(attempt, req, clock)).content

    async def stream_once(attempt: Attempt) -> tuple[OpenedStream, Relay]:
        upstream, deployment = attempt.upstream, attempt.deployment
        timeouts = upstream.settings.timeouts
        if deployment.api is UpstreamApi.ANTHROPIC:
            context = AnthropicContext()
            body = translated(lambda: anthropic_body(request.data, deployment.upstream_model, context))
            opened = await open_stream(
                attempt, upstream.request("POST", "/messages", body), _ANTHROPIC_DIALECT, clock
            )
            translator = outcome.translator = AnthropicToChatTranslator(
                model=deployment.upstream_model,
                created=int(clock.now()),
                include_usage=request.include_usage,
                provider=upstream.classifier_key,
                context=context,
            )
            relay: Relay = TranslatingRelay(
                translator=translator,
                provider=upstream.classifier_key,
                clock=clock,
                idle_timeout=timeouts.idle,
            )
            return opened, relay
        inject = ask_usage and upstream.name not in no_options
        req = upstream.request(
            "POST", "/chat/completions", upstream_chat_body(request, attempt, ask_usage=inject)
        )
        opened = await open_stream(attempt, req, _CHAT_DIALECT, clock)
        outcome.tap = StreamUsageTap(strip=inject) if policy.enabled else None
        relay = PassthroughRelay(
            dialect=_CHAT_DIALECT,
            done_marker=DONE_MARKER,
            error_frames=chat_stream_error_frame,
            provider=upstream.classifier_key,
            clock=clock,
            idle_timeout=timeouts.idle,
            tap=outcome.tap,
        )
        return opened, relay

    async def forward(chunk: bytes) -> None:
        if outcome.ttft is None:
            outcome.ttft = time.perf_counter() - started
        await asgi_io.send_chunk(send, chunk)

    try:
        async with asgi_io.cancel_on_disconnect(receive):
            try:
                if not request.stream:
                    content = await Failover[bytes](services.router, clock, trace).run(plan, try_json)
                    outcome.usage = usage_from_body(content) if policy.enabled else None
                    await asgi_io.send_bytes(send, 200, content, headers=headers_now())
                    outcome.status = 200
                    return
                opened, relay = await Failover[tuple[OpenedStream, Relay]](services.router, clock, trace).run(
                    plan, try_stream
                )
            except AttemptFailed as failed:
                status, headers, payload = error_response(failed.classified)
                outcome.status, outcome.error_type = status, "upstream"
                await asgi_io.send_bytes(send, status, payload, headers=headers_now(headers))
                return
            except GatewayError as exc:
                outcome.status, outcome.error_type = exc.status_code, "invalid_request"
                await asgi_io.send_error(send, exc, headers=headers_now())
                return
            outcome.status = 200
            await asgi_io.start_stream(send, headers=headers_now())
            await relay.run(opened, forward)
            failure = getattr(relay, "failure", None)
            if failure is not None:
                outcome.error_type = "upstream"
                outcome.attempt_error = str(failure.kind)
            await asgi_io.end_stream(send)
    except ClientDisconnected:
        outcome.status, outcome.error_type = 499, "client_disconnect"
        return
    finally:
        _finish(services, ticket, outcome, trace, started)


ROUTE = "/v1/chat/completions"


class _Outcome:
    """What the request came to, for settlement and metrics."""

    __slots__ = ("attempt_error", "error_type", "span", "status", "tap", "translator", "ttft", "usage")

    def __init__(self) -> None:
        self.status = 500
        self.error_type = "internal"
        self.attempt_error = ""  # the failure kind of a committed stream that broke
        self.span: AttemptSpan | None = None
        self.usage: Usage | None = None
        self.tap: StreamUsageTap | None = None
        self.translator: AnthropicToChatTranslator | None = None
        self.ttft: float | None = None


def _refusal_type(exc: GatewayError) -> str:
    if exc.status_code == 429:
        return "insufficient_quota" if exc.error_type == "insufficient_quota" else "rate_limit"
    if exc.status_code == 401:
        return "authentication"
    if exc.code == "model_not_allowed":
        return "model_not_allowed"
    if exc.status_code == 503:
        return "store_unavailable"
    return "invalid_request"


def _finish(services: Services, ticket: Any, outcome: _Outcome, trace: Trace, started: float) -> None:
    if outcome.status == 200 and outcome.error_type == "internal":
        outcome.error_type = ""
    usage = outcome.usage
    if usage is None and outcome.tap is not None:
        usage = outcome.tap.usage
    if usage is None and outcome.translator is not None:
        usage = outcome.translator.usage
    last = trace.attempts[-1] if trace.attempts else None
    if outcome.span is not None:
        model = outcome.tap.model if outcome.tap is not None else None
        model = model or (last.upstream_model if last else None)
        if outcome.error_type:
            outcome.span.fail(outcome.attempt_error or outcome.error_type, usage=usage, model=model)
        else:
            outcome.span.succeed(usage=usage, model=model)
    if ticket is not None:
        ticket.settle(
            status=outcome.status,
            usage=usage,
            error_type=outcome.error_type or None,
            provider=last.provider if last else None,
            upstream_model=last.upstream_model if last else None,
            attempts=len(trace.attempts),
            ttft_s=outcome.ttft,
            upstream_s=trace.upstream_s + trace.backoff_s,
        )
    services.metrics.finished(
        route=ROUTE,
        model=ticket.model if ticket is not None else None,
        status=outcome.status,
        error_type=outcome.error_type,
        started=started,
        trace=trace,
        ttft_s=outcome.ttft,
    )

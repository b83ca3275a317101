"""``POST /v1/chat/completions``: route, forward, relay — with retries, failover and the commit point."""

from __future__ import annotations

import time
from typing import Any

import httpx
import msgspec

from gateway.api import asgi_io
from gateway.api.asgi_io import ClientDisconnected
from gateway.config import UpstreamApi
from gateway.errors import chat_stream_error_frame, error_response
from gateway.errors.client import GatewayError, NotFound
from gateway.proxy.attempts import Attempt, AttemptFailed, Failover, Trace
from gateway.proxy.chat_request import ChatRequest, parse_chat_request
from gateway.proxy.relay import PassthroughRelay
from gateway.proxy.sse import DONE_FRAME
from gateway.proxy.upstream_call import ChatStreamDialect, OpenedStream, call_json, open_stream
from gateway.services import Services

_ENCODER = msgspec.json.Encoder()
_CHAT_DIALECT = ChatStreamDialect()


def model_not_found(model: str) -> NotFound:
    return NotFound(
        f"The model `{model}` does not exist or you do not have access to it.", code="model_not_found"
    )


def upstream_chat_body(request: ChatRequest, attempt: Attempt) -> bytes:
    data: dict[str, Any] = request.data
    if data.get("model") != attempt.deployment.upstream_model:
        data = {**data, "model": attempt.deployment.upstream_model}
    return _ENCODER.encode(data)


async def handle(services: Services, scope: Any, receive: Any, send: Any) -> None:
    started = time.perf_counter()
    request_id = asgi_io.new_request_id()
    trace = Trace()
    base_headers = [("x-request-id", request_id)]
    try:
        services.keys.authenticate(asgi_io.presented_key_from_scope(scope))
        body = await asgi_io.read_body(scope, receive, services.settings.server.max_body_bytes)
        request = parse_chat_request(body)
        plan = services.router.plan(request.model)
        if not plan:
            raise model_not_found(request.model)
    except GatewayError as exc:
        await asgi_io.send_error(send, exc, headers=base_headers)
        return
    except ClientDisconnected:
        return

    failover: Failover[Any] = Failover(services.router, services.clock, trace)
    clock = services.clock

    def headers_now(extra: dict[str, str] | None = None) -> list[tuple[str, str]]:
        out = [*(extra or {}).items(), *base_headers]
        if services.settings.server.timing_headers:
            out += trace.headers(time.perf_counter() - started)
        return out

    async def try_json(attempt: Attempt) -> httpx.Response:
        if attempt.deployment.api is UpstreamApi.ANTHROPIC:
            raise NotImplementedError("anthropic upstream")
        req = attempt.upstream.request("POST", "/chat/completions", upstream_chat_body(request, attempt))
        return await call_json(attempt, req, clock)

    async def try_stream(attempt: Attempt) -> OpenedStream:
        if attempt.deployment.api is UpstreamApi.ANTHROPIC:
            raise NotImplementedError("anthropic upstream")
        req = attempt.upstream.request("POST", "/chat/completions", upstream_chat_body(request, attempt))
        return await open_stream(attempt, req, _CHAT_DIALECT, clock)

    try:
        async with asgi_io.cancel_on_disconnect(receive):
            if not request.stream:
                try:
                    response = await failover.run(plan, try_json)
                except AttemptFailed as failed:
                    status, headers, payload = error_response(failed.classified)
                    await asgi_io.send_bytes(send, status, payload, headers=headers_now(headers))
                    return
                await asgi_io.send_bytes(send, 200, response.content, headers=headers_now())
                return

            try:
                opened = await failover.run(plan, try_stream)
            except AttemptFailed as failed:
                status, headers, payload = error_response(failed.classified)
                await asgi_io.send_bytes(send, status, payload, headers=headers_now(headers))
                return
            await asgi_io.start_stream(send, headers=headers_now())
            provider = trace.attempts[-1].provider
            upstream = services.upstreams[provider]
            relay = PassthroughRelay(
                dialect=_CHAT_DIALECT,
                done_marker=DONE_FRAME[:-2],
                error_frames=chat_stream_error_frame,
                provider=upstream.classifier_key,
                clock=clock,
                idle_timeout=upstream.settings.timeouts.idle,
            )

            async def forward(chunk: bytes) -> None:
                await asgi_io.send_chunk(send, chunk)

            await relay.run(opened, forward)
            await asgi_io.end_stream(send)
    except ClientDisconnected:
        return

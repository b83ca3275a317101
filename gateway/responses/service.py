"""``/v1/responses``: create (with retries, failover and the commit point), retrieve, delete, list.

Creating follows the Chat Completions proxy: authenticate, parse, plan, then
``Failover.run(plan, try_once)``. Before the first upstream call the parent (if any) is read for
this key only; its ``function_call`` items must be answered by the new input. Each attempt then
picks native chaining or a replay for its own deployment (see :mod:`.upstreams`). An upstream
that answers ``previous_response_not_found`` to a native attempt is asked again at once, within
the same attempt, with the full history: the client never sees it and it is not a failure.

The record is written before the client can see the end: before a non-streamed body is sent,
and before ``response.completed`` on a stream.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
import msgspec
from redis.exceptions import RedisError

from gateway.api import asgi_io
from gateway.api.asgi_io import ClientDisconnected
from gateway.chat_completions.endpoint import model_not_found
from gateway.clock import Watchdog
from gateway.config import UpstreamApi
from gateway.errors import error_response
from gateway.errors.client import GatewayError, InvalidRequest, ServiceUnavailable
from gateway.policy.auth import Principal
from gateway.policy.outcome import Outcome
from gateway.policy.usage import usage_from_responses
from gateway.responses import errors
from gateway.responses.items import check_tool_outputs
from gateway.responses.request import ResponsesRequest, parse_responses_request
from gateway.responses.store import ResponseStore
from gateway.responses.stream import (
    AnthropicConverter,
    ChatConverter,
    Converter,
    NativeConverter,
    ResponsesRelay,
)
from gateway.responses.upstreams import IDS, Produced, Turn, is_stale_chain
from gateway.services import Services
from gateway.telemetry.tracing import AttemptSpan, run_attempt
from gateway.translate import AnthropicContext, AnthropicToResponsesStream, ChatToResponsesStream
from gateway.upstream import Deployment
from gateway.upstream.call import (
    AnthropicStreamDialect,
    ChatStreamDialect,
    OpenedStream,
    ResponsesStreamDialect,
    call_json,
    open_stream,
)
from gateway.upstream.context_check import fit_plan
from gateway.upstream.failover import Attempt, AttemptFailed, Failover, Trace

log = logging.getLogger("gateway.responses")

_ENCODER = msgspec.json.Encoder()
_RESPONSES_DIALECT = ResponsesStreamDialect()
_CHAT_DIALECT = ChatStreamDialect()
_ANTHROPIC_DIALECT = AnthropicStreamDialect()
UPSTREAM_DELETE = "upstream_delete"


def store_unavailable() -> ServiceUnavailable:
    return ServiceUnavailable(
        "The response store is unavailable; please try again.",
        code="response_store_unavailable",
        headers={"x-should-retry": "true"},
    )


def response_store(services: Services) -> ResponseStore:
    settings = services.settings
    return ResponseStore(services.redis, prefix=settings.redis.key_prefix, ttl=settings.responses.ttl_seconds)


async def _begin(
    services: Services, store: ResponseStore, principal: Principal, request: ResponsesRequest
) -> Turn:
    """Read what the request continues from (for this key only) and check it may continue."""
    settings = services.settings.responses
    now = services.clock.now()
    parent = None
    touched_at = now
    if request.previous_response_id is not None:
        parent = await store.read_parent(request.previous_response_id, principal.key_id)
        if parent is None:
            raise errors.previous_response_not_found(request.previous_response_id)
        if parent.depth + 2 > settings.max_chain_length:
            raise errors.chain_too_long(settings.max_chain_length)
        check_tool_outputs(parent.calls, request.items)
        if store.touch_due(parent, now):
            await store.touch_chain(parent)
        else:
            touched_at = parent.chain_touched_at
    return Turn(
        request=request,
        principal=principal,
        store=store,
        clock=services.clock,
        parent=parent,
        upstream_store=settings.upstream_store,
        chain_touched_at=touched_at,
        anthropic_max_tokens=settings.anthropic_max_tokens,
    )


async def create(services: Services, scope: Any, receive: Any, send: Any) -> None:
    """``POST /v1/responses``."""
    started = time.perf_counter()
    request_id = asgi_io.new_request_id()
    trace = Trace()
    base_headers = [("x-request-id", request_id)]
    store = response_store(services)
    ticket = None  # policy: the admitted request, settled on every exit (gateway/policy)
    outcome = Outcome()
    try:
        caller = await services.policy.authenticate(asgi_io.presented_key_from_scope(scope))
        principal = caller.principal
        body = await asgi_io.read_body(scope, receive, services.settings.server.max_body_bytes)
        request = parse_responses_request(body)
        max_tokens = request.data.get("max_output_tokens")
        ticket = await services.policy.admit(
            caller,
            model=request.model,
            body_size=len(body),
            max_tokens=max_tokens if isinstance(max_tokens, int) else None,
            request_id=request_id,
            endpoint="/v1/responses",
            started=started,
        )
        ticket.stream = request.stream
        base_headers += ticket.headers
        plan = services.router.plan(request.model)
        if not plan:
            raise model_not_found(request.model)
        turn = await _begin(services, store, principal, request)
        plan = fit_plan(plan, services.catalog, turn.prompt_tokens, param="input")
    except GatewayError as exc:
        await asgi_io.send_error(send, exc, headers=base_headers)
        outcome.failed(exc.status_code, "invalid_request")
        outcome.settle(ticket, trace)
        return
    except RedisError:
        log.exception("response store unavailable")
        await asgi_io.send_error(send, store_unavailable(), headers=base_headers)
        outcome.settle(ticket, trace)
        return
    except ClientDisconnected:
        outcome.failed(499, "client_disconnect")
        outcome.settle(ticket, trace)
        return

    clock = services.clock

    def headers_now(extra: dict[str, str] | None = None) -> list[tuple[str, str]]:
        out = [*(extra or {}).items(), *base_headers]
        if services.settings.server.timing_headers:
            out += trace.headers(time.perf_counter() - started)
        return out

    async def native_or_replay(attempt: Attempt, call: Any) -> Any:
        """Chain natively where possible; an upstream that forgot the parent gets the history."""
        if not turn.native(attempt.deployment):
            try:
                return await call(attempt, False)
            except AttemptFailed as failed:
                # A translated request's `messages` is the client's `input`.
                if failed.classified.param == "messages":
                    raise AttemptFailed(msgspec.structs.replace(failed.classified, param="input")) from None
                raise
        try:
            return await call(attempt, True)
        except AttemptFailed as failed:
            if not is_stale_chain(failed.classified):
                raise
            log.info(
                "upstream %s forgot response %s; replaying the history",
                attempt.upstream.name,
                turn.parent.upstream_id if turn.parent else None,
            )
            return await call(attempt, False)

    async def json_once(attempt: Attempt, native: bool) -> tuple[Deployment, Produced]:
        upstream, deployment = attempt.upstream, attempt.deployment
        if deployment.api is UpstreamApi.RESPONSES:
            body = await turn.responses_body(deployment, upstream.schema_target, native=native)
            response = await call_json(attempt, upstream.request("POST", "/responses", body), clock)
            return deployment, turn.from_responses(response.content)
        if deployment.api is UpstreamApi.ANTHROPIC:
            context = AnthropicContext()
            body = await turn.anthropic_body(deployment, context)
            response = await call_json(attempt, upstream.request("POST", "/messages", body), clock)
            return deployment, turn.from_anthropic(response.content, context)
        body = await turn.chat_body(deployment, upstream.schema_target)
        response = await call_json(attempt, upstream.request("POST", "/chat/completions", body), clock)
        return deployment, turn.from_chat(response.content)

    async def stream_once(attempt: Attempt, native: bool) -> tuple[Deployment, OpenedStream, Converter]:
        upstream, deployment = attempt.upstream, attempt.deployment
        provider = upstream.classifier_key
        converter: Converter
        if deployment.api is UpstreamApi.RESPONSES:
            body = await turn.responses_body(deployment, upstream.schema_target, native=native)
            req = upstream.request("POST", "/responses", body)
            opened = await open_stream(attempt, req, _RESPONSES_DIALECT, clock)
            converter = NativeConverter(
                response_id=turn.response_id,
                previous_response_id=turn.previous_response_id,
                store=turn.request.store,
                provider=provider,
            )
            return deployment, opened, converter
        if deployment.api is UpstreamApi.ANTHROPIC:
            context = AnthropicContext()
            body = await turn.anthropic_body(deployment, context)
            opened = await open_stream(
                attempt, upstream.request("POST", "/messages", body), _ANTHROPIC_DIALECT, clock
            )
            converter = AnthropicConverter(
                AnthropicToResponsesStream(
                    request=turn.request.data,
                    response_id=turn.response_id,
                    created_at=turn.created_at,
                    ids=IDS,
                    previous_response_id=turn.previous_response_id,
                    context=context,
                ),
                provider=provider,
                completed_at=lambda: int(clock.now()),
            )
            return deployment, opened, converter
        body = await turn.chat_body(deployment, upstream.schema_target)
        opened = await open_stream(
            attempt, upstream.request("POST", "/chat/completions", body), _CHAT_DIALECT, clock
        )
        converter = ChatConverter(
            ChatToResponsesStream(
                request=turn.request.data,
                response_id=turn.response_id,
                created_at=turn.created_at,
                ids=IDS,
                previous_response_id=turn.previous_response_id,
            ),
            provider=provider,
            completed_at=lambda: int(clock.now()),
        )
        return deployment, opened, converter

    tracing = services.tracing
    stream_spans: list[AttemptSpan] = []  # the committed stream's span, ended with it

    async def try_json(attempt: Attempt) -> tuple[Deployment, Produced]:
        span = tracing.attempt_span(attempt, public_model=request.model, stream=False) if tracing else None
        result: tuple[Deployment, Produced] = await run_attempt(span, native_or_replay(attempt, json_once))
        if span is not None:
            answer = result[1].response
            span.succeed(usage=usage_from_responses(answer.get("usage")), model=answer.get("model"))
        return result

    async def try_stream(attempt: Attempt) -> tuple[Deployment, OpenedStream, Converter]:
        span = tracing.attempt_span(attempt, public_model=request.model, stream=True) if tracing else None
        result: tuple[Deployment, OpenedStream, Converter] = await run_attempt(
            span, native_or_replay(attempt, stream_once)
        )
        if span is not None:
            stream_spans.append(span)
        return result

    try:
        async with asgi_io.cancel_on_disconnect(receive):
            try:
                if not turn.request.stream:
                    json_failover: Failover[tuple[Deployment, Produced]] = Failover(
                        services.router, clock, trace
                    )
                    deployment, produced = await json_failover.run(plan, try_json)
                    outcome.usage = usage_from_responses(produced.response.get("usage"))
                    await turn.save(deployment, produced.response, produced.upstream_id)
                    await asgi_io.send_bytes(
                        send, 200, _ENCODER.encode(produced.response), headers=headers_now()
                    )
                    outcome.ok()
                    return
                stream_failover: Failover[tuple[Deployment, OpenedStream, Converter]] = Failover(
                    services.router, clock, trace
                )
                deployment, opened, converter = await stream_failover.run(plan, try_stream)
            except AttemptFailed as failed:
                status, headers, payload = error_response(failed.classified, api="responses")
                headers.pop("content-type", None)  # send_bytes sets it
                await asgi_io.send_bytes(send, status, payload, headers=headers_now(headers))
                outcome.failed(status, "upstream")
                return
            except GatewayError as exc:
                await asgi_io.send_error(send, exc, headers=headers_now())
                outcome.failed(exc.status_code, "invalid_request")
                return
            except RedisError:
                log.exception("response store unavailable")
                await asgi_io.send_error(send, store_unavailable(), headers=headers_now())
                outcome.failed(503, "internal")
                return

            upstream = services.upstreams[deployment.provider]

            async def record(response: dict[str, Any]) -> None:
                outcome.usage = usage_from_responses(response.get("usage"))
                upstream_id = converter.upstream_id if isinstance(converter, NativeConverter) else None
                await turn.save(deployment, response, upstream_id)

            relay = ResponsesRelay(
                converter=converter,
                record=record,
                provider=upstream.classifier_key,
                clock=clock,
                idle_timeout=upstream.settings.timeouts.idle,
            )

            async def forward(chunk: bytes) -> None:
                await asgi_io.send_chunk(send, chunk)

            await asgi_io.start_stream(send, headers=headers_now())
            outcome.ok()
            await relay.run(opened, forward)
            if relay.failure is not None:
                outcome.failed(200, "upstream")
            await asgi_io.end_stream(send)
    except ClientDisconnected:
        outcome.failed(499, "client_disconnect")
        return
    finally:
        outcome.settle(ticket, trace)
        for span in stream_spans:
            if outcome.error_type:
                span.fail(outcome.error_type, usage=outcome.usage)
            else:
                span.succeed(usage=outcome.usage, model=None)
        services.metrics.finished(
            route="/v1/responses",
            model=request.model,
            status=outcome.status,
            error_type=outcome.error_type,
            started=started,
            trace=trace,
        )


# -- retrieve, delete, list -----------------------------------------------------------------------


async def retrieve(
    services: Services, principal: Principal, response_id: str, *, stream: str | None = None
) -> bytes:
    if stream is not None and stream.lower() == "true":
        # Replaying a stored response as events (with `starting_after`) is a background-mode
        # feature; the gateway has no background responses.
        raise InvalidRequest(
            "Streaming a stored response is not supported by this gateway; retrieve it without 'stream'.",
            param="stream",
            code="unsupported_parameter",
        )
    found = await response_store(services).response_body(response_id, principal.key_id)
    if found is None:
        raise errors.response_not_found(response_id)
    return _ENCODER.encode(found)


async def cancel(services: Services, principal: Principal, response_id: str) -> bytes:
    """Only background responses can be cancelled, and the gateway has none."""
    found = await response_store(services).response_body(response_id, principal.key_id)
    if found is None:
        raise errors.response_not_found(response_id)
    raise InvalidRequest(
        "Only background responses can be cancelled; this response has already finished.",
        param="response_id",
        code="unsupported_parameter",
    )


async def delete(services: Services, principal: Principal, response_id: str) -> bytes:
    meta = await response_store(services).delete(response_id, principal.key_id)
    if meta is None:
        raise errors.response_not_found(response_id)
    if meta.upstream_id is not None:
        await _delete_upstream(services, meta.deployment.partition("/")[0], meta.upstream_id)
    return _ENCODER.encode({"id": response_id, "object": "response", "deleted": True})


async def _delete_upstream(services: Services, provider: str, upstream_id: str) -> None:
    """Best effort: the upstream's copy goes too. Failures are logged, never shown."""
    upstream = services.upstreams.get(provider)
    if upstream is None:
        return
    guard = Watchdog(services.clock, upstream.settings.timeouts.request, name=UPSTREAM_DELETE)
    try:
        response = await upstream.send(upstream.request("DELETE", f"/responses/{upstream_id}"), stream=False)
        if response.status_code >= 400 and response.status_code != 404:
            log.warning(
                "upstream %s refused to delete %s: HTTP %s", provider, upstream_id, response.status_code
            )
    except httpx.HTTPError as exc:
        log.warning("upstream %s: deleting %s failed: %s", provider, upstream_id, exc)
    except asyncio.CancelledError:
        if guard.absorb():
            log.warning("upstream %s: deleting %s timed out", provider, upstream_id)
            return
        raise
    finally:
        guard.cancel()


def _limit(raw: str | None) -> int:
    if raw is None:
        return 20
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequest(
            f"Invalid 'limit': expected an integer, but got '{raw}' instead.",
            param="limit",
            code="invalid_type",
        ) from None
    if value < 1:
        raise InvalidRequest(
            f"Invalid 'limit': integer below minimum value. Expected a value >= 1, but got {value} instead.",
            param="limit",
            code="integer_below_min_value",
        )
    if value > 100:
        raise InvalidRequest(
            f"Invalid 'limit': integer above maximum value. Expected a value <= 100, but got {value} instead.",
            param="limit",
            code="integer_above_max_value",
        )
    return value


class ItemPage(msgspec.Struct, kw_only=True):
    object: str = "list"
    data: list[dict[str, Any]]
    first_id: str | None
    last_id: str | None
    has_more: bool


async def list_input_items(
    services: Services,
    principal: Principal,
    response_id: str,
    *,
    limit: str | None,
    order: str | None,
    after: str | None,
) -> bytes:
    """A page of the turn's input items: ``order`` desc (newest first) unless asc, after ``after``."""
    count = _limit(limit)
    direction = order or "desc"
    if direction not in ("asc", "desc"):
        raise InvalidRequest(
            f"Invalid value: '{direction}'. Supported values are: 'asc' and 'desc'.",
            param="order",
            code="invalid_value",
        )
    items = await response_store(services).input_items(response_id, principal.key_id)
    if items is None:
        raise errors.response_not_found(response_id)
    ordered = items if direction == "asc" else items[::-1]
    start = 0
    if after is not None:
        position = next((i for i, item in enumerate(ordered) if item.get("id") == after), None)
        if position is None:
            raise InvalidRequest(
                f"Invalid 'after': no input item with id '{after}' in response '{response_id}'.",
                param="after",
                code="invalid_value",
            )
        start = position + 1
    data = ordered[start : start + count]
    return _ENCODER.encode(
        ItemPage(
            data=data,
            first_id=data[0].get("id") if data else None,
            last_id=data[-1].get("id") if data else None,
            has_more=start + count < len(ordered),
        )
    )

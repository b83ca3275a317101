"""The governed passthrough: one adapter for every simple OpenAI route on the shared request
cycle (completions, moderations, images, audio).

A :class:`Route` says what differs: its path, the provider capability it needs, whether its
body is JSON or multipart, whether it streams events and how they read, whether its answer is
streamed back as bytes (speech). Everything else is the :class:`~gateway.exchange.Exchange`'s:
the key, the model's allow-list, limits and budgets, the plan (deployments whose provider
does not serve the route left out), retries and failover, the commit point of a stream and its
in-band errors, usage, metrics, traces and settlement. The body goes upstream as the client
sent it with ``model`` set to the deployment's; the answer comes back as the upstream sent it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import NamedTuple

import httpx

from gateway.clock import STREAM_IDLE, Watchdog
from gateway.config.providers import OpenAIRoute
from gateway.dialects.openai_routes import call_whole, open_body, served, usage_of
from gateway.exchange import ClientChannel, Exchange
from gateway.exchange.spans import attempt_span
from gateway.openai_routes.requests import RouteRequest, parse_json, parse_multipart
from gateway.openai_routes.streams import StreamKind, relay
from gateway.policy.usage import StreamUsageTap
from gateway.pricing import Usage
from gateway.services import Services
from gateway.telemetry.tracing import response_model, run_attempt
from gateway.upstream import Deployment
from gateway.upstream.call import OpenedStream, open_stream
from gateway.upstream.committed import Relay
from gateway.upstream.failover import Attempt


class Route(NamedTuple):
    path: str  # the client's, e.g. ``/v1/completions``
    family: OpenAIRoute  # what a provider must serve
    upstream_path: str  # under the provider's base URL, e.g. ``/completions``
    multipart: bool = False
    default_model: str | None = None  # OpenAI's default when the client names none
    stream: StreamKind | None = None  # the events of ``stream: true``; None: it does not stream
    streamed_answer: bool = False  # the answer's bytes are relayed as they arrive (speech)


class Whole:
    """A whole answer, relayed as the upstream sent it (its content type kept)."""

    __slots__ = ("body", "content_type")

    def __init__(self, body: bytes, content_type: str) -> None:
        self.body = body
        self.content_type = content_type

    def usage(self) -> Usage | None:
        return usage_of(self.body) if "json" in self.content_type else None

    def model(self) -> str | None:
        return response_model(self.body) if "json" in self.content_type else None


class Calls:
    """One request's upstream calls on a route."""

    __slots__ = ("ask_usage", "no_options", "request", "route", "services")

    def __init__(self, services: Services, route: Route, request: RouteRequest) -> None:
        policy = services.policy
        self.services = services
        self.route = route
        self.request = request
        kind = route.stream
        self.ask_usage = bool(
            request.stream
            and kind is not None
            and kind.usage_chunk
            and request.data is not None
            and not _asked_usage(request)
            and policy.enabled
            and policy.config.inject_stream_usage
        )
        self.no_options = policy.config.no_stream_options_providers

    def _request(self, attempt: Attempt, *, ask_usage: bool = False) -> httpx.Request:
        body = self.request.body_for(attempt.deployment.upstream_model, ask_usage=ask_usage)
        headers = None if self.request.data is not None else {"content-type": self.request.content_type}
        return attempt.upstream.request("POST", self.route.upstream_path, body, headers=headers)

    async def whole(self, attempt: Attempt) -> Whole:
        response = await call_whole(attempt, self._request(attempt), self.services.clock)
        return Whole(response.content, response.headers.get("content-type", "application/json"))

    async def events(self, attempt: Attempt) -> tuple[OpenedStream, Relay]:
        kind = self.route.stream
        assert kind is not None
        ask = self.ask_usage and attempt.upstream.name not in self.no_options
        clock = self.services.clock
        opened = await open_stream(attempt, self._request(attempt, ask_usage=ask), kind.roles, clock)
        tap = StreamUsageTap(strip=ask) if kind.usage_chunk and self.services.policy.enabled else None
        upstream = attempt.upstream
        return opened, relay(
            kind,
            provider=upstream.classifier_key,
            clock=clock,
            idle_timeout=upstream.settings.timeouts.idle,
            tap=tap,
        )

    async def opened(self, attempt: Attempt) -> httpx.Response:
        return await open_body(attempt, self._request(attempt), self.services.clock)


def _asked_usage(request: RouteRequest) -> bool:
    options = request.data.get("stream_options") if request.data is not None else None
    return isinstance(options, dict) and options.get("include_usage") is True


async def send_whole(exchange: Exchange, answer: Whole) -> None:
    """A whole answer with its own content type (JSON, text, subtitles)."""
    if exchange.services.policy.enabled:
        exchange.outcome.usage = answer.usage()
    headers = exchange.headers_now([("content-type", answer.content_type)])
    await exchange.channel.send_json(200, answer.body, headers)
    exchange.outcome.ok()


async def open_answer(
    exchange: Exchange, plan: list[Deployment], call: Callable[[Attempt], Awaitable[httpx.Response]]
) -> httpx.Response:
    """A streamed answer opened on the plan (each attempt traced when traces are on; the one
    that answers ends its span with the request)."""
    tracing = exchange.services.tracing
    if tracing is None:
        response: httpx.Response = await exchange.failover(None).run(plan, call)
        return response
    model = exchange.model or ""

    async def traced(attempt: Attempt) -> httpx.Response:
        span = attempt_span(tracing, attempt, route=exchange.route, public_model=model, stream=True)
        opened = await run_attempt(span, call(attempt))
        exchange.span = span
        return opened

    found: httpx.Response = await exchange.failover(None).run(plan, traced)
    return found


async def relay_body(exchange: Exchange, response: httpx.Response) -> None:
    """Relay a committed answer's bytes as they arrive, under the idle timer. A body that breaks
    or stalls cannot carry an error any more: the answer is left unfinished (the client sees a
    truncated body, never a clean end) and the request counted as an upstream failure."""
    services = exchange.services
    headers = [("content-type", response.headers.get("content-type", "application/octet-stream"))]
    try:
        await exchange.channel.start_stream(exchange.headers_now(headers))
    except BaseException:
        await response.aclose()
        raise
    exchange.outcome.ok()
    last = exchange.trace.attempts[-1]
    idle_timeout = services.router.upstreams[last.provider].settings.timeouts.idle
    idle = Watchdog(services.clock, idle_timeout, name=STREAM_IDLE)
    broken = ""
    try:
        if response.is_stream_consumed:
            await exchange.send_chunk(response.content)
        else:
            async for chunk in response.aiter_raw():
                idle.touch()
                if chunk:
                    await exchange.send_chunk(chunk)
    except httpx.HTTPError:
        broken = "stream_truncated"
    except BaseException:
        if not idle.absorb():
            raise
        broken = "stream_idle_timeout"
    finally:
        idle.cancel()
        await response.aclose()
    if broken:
        exchange.outcome.error_type = "upstream"
        exchange.outcome.attempt_error = broken
        return
    await exchange.channel.end_stream()


async def handle(route: Route, services: Services, channel: ClientChannel) -> None:
    async with Exchange(services, channel, route=route.path, error_api="chat") as exchange:
        caller = await exchange.authenticate()
        raw = await exchange.read_body()
        streams = route.stream is not None
        if route.multipart:
            content_type = channel.header(b"content-type")
            request = parse_multipart(raw, content_type, default_model=route.default_model, streams=streams)
        else:
            request = parse_json(raw, default_model=route.default_model, streams=streams)
        await exchange.admit(
            caller,
            model=request.model,
            body_size=len(raw),
            max_tokens=request.max_tokens,
            stream=request.stream,
        )
        plan = served(
            exchange.plan(request.model, lambda: 0, param="model"),
            services.router,
            route.family,
            path=route.path,
        )
        calls = Calls(services, route, request)
        async with exchange.upstream():
            if request.stream:
                await exchange.stream(plan, calls.events)
            elif route.streamed_answer:
                response = await open_answer(exchange, plan, calls.opened)
                await relay_body(exchange, response)
            else:
                await send_whole(exchange, await exchange.json(plan, calls.whole))

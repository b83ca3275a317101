"""One request's life, the same for every endpoint.

An :class:`Exchange` holds what every request has: its id, start time and :class:`Trace`, the
caller and the admission ticket, the :class:`Outcome`, the time to first token. The endpoint
drives it in order — :meth:`~Exchange.authenticate`, :meth:`~Exchange.read_body`,
:meth:`~Exchange.admit`, :meth:`~Exchange.plan`, then inside :meth:`~Exchange.upstream` either
:meth:`~Exchange.json` and :meth:`~Exchange.send_json` or :meth:`~Exchange.stream` — and
supplies only what differs: parsing its body, the upstream call of one attempt (through the
deployment's dialect) and the rendering of the answer in its own dialect.

A stream that breaks after its commit point may be continued on another deployment when the
endpoint supplies a :class:`~gateway.exchange.rescue.Continuer` (see :mod:`.rescue`).

Leaving the ``async with Exchange(...)`` block answers what went wrong (a refusal, a failed
upstream, a disconnect) and runs :meth:`~Exchange.finish` on every path: the committed stream's
attempt span ends, the ticket is settled, the request is counted (``gw_requests``, the duration,
overhead and TTFT histograms, one attempt histogram per attempt). A refusal before any upstream
call is counted the same way on every endpoint.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, Literal, Protocol, TypeVar

from gateway.errors import AttemptFailed, ClassifiedError, error_response
from gateway.errors.anthropic import anthropic_refusal, anthropic_upstream_error
from gateway.errors.client import GatewayError
from gateway.exchange.channel import ClientChannel, ClientDisconnected, new_request_id, send_error
from gateway.exchange.rescue import Continuer, Rescue
from gateway.exchange.spans import attempt_span
from gateway.policy.engine import Caller, Ticket
from gateway.policy.errors import model_not_found
from gateway.pricing import Usage
from gateway.services import Services
from gateway.telemetry.tracing import AttemptSpan, run_attempt
from gateway.token_estimate import text_tokens
from gateway.upstream import Deployment
from gateway.upstream.call import OpenedStream
from gateway.upstream.committed import Relay
from gateway.upstream.context_check import fit_plan
from gateway.upstream.failover import Attempt, Failover, Trace

A = TypeVar("A", bound="JsonAnswer")
Opened = tuple[OpenedStream, Relay]
ErrorApi = Literal["chat", "responses", "anthropic"]
Replay = Callable[[Attempt, ClassifiedError], bool]


class JsonAnswer(Protocol):
    """A whole answer in the client's dialect."""

    @property
    def body(self) -> bytes: ...

    def usage(self) -> Usage | None: ...

    def model(self) -> str | None:
        """The upstream's own model name, as the answer tells it."""
        ...


class Outcome:
    """What the request came to (500 ``internal`` until told otherwise)."""

    __slots__ = ("attempt_error", "error_type", "status", "usage")

    def __init__(self) -> None:
        self.status = 500
        self.error_type = "internal"
        self.usage: Usage | None = None
        self.attempt_error = ""  # the failure kind of a committed stream that broke

    def ok(self) -> None:
        self.status, self.error_type = 200, ""

    def failed(self, status: int, error_type: str) -> None:
        self.status, self.error_type = status, error_type


def refusal_type(exc: GatewayError) -> str:
    """The ``error_type`` label of a request the gateway refused itself."""
    if exc.status_code == 429:
        return "insufficient_quota" if exc.error_type == "insufficient_quota" else "rate_limit"
    if exc.status_code == 401:
        return "authentication"
    if exc.code == "model_not_allowed":
        return "model_not_allowed"
    if exc.status_code == 503:
        return "store_unavailable"
    return "invalid_request"


class Exchange:
    """One request, from its first byte to its settlement. ``error_api`` is the dialect of the
    client's error bodies (``chat``, ``responses`` or ``anthropic``)."""

    __slots__ = (
        "_broken_reported",
        "_broken_text",
        "_estimate",
        "_gauge",
        "_tape",
        "channel",
        "error_api",
        "headers",
        "model",
        "outcome",
        "relay",
        "request_id",
        "rescued_usage",
        "route",
        "services",
        "span",
        "started",
        "ticket",
        "trace",
        "ttft",
    )

    def __init__(
        self, services: Services, channel: ClientChannel, *, route: str, error_api: ErrorApi
    ) -> None:
        self.started = time.perf_counter()
        self.services = services
        self.channel = channel
        self.route = route
        self.error_api = error_api
        self.request_id = new_request_id()
        self.trace = Trace()
        self.headers: list[tuple[str, str]] = [("x-request-id", self.request_id)]
        self.outcome = Outcome()
        self.ticket: Ticket | None = None
        self.model: str | None = None
        self.ttft: float | None = None
        self.span: AttemptSpan | None = None  # the committed stream's attempt, ended in finish()
        self.relay: Relay | None = None
        self.rescued_usage: Usage | None = None  # what continuations of a broken stream used
        self._tape: list[bytes] | None = None  # what the client received, kept for a rescue
        self._broken_text = ""
        self._broken_reported: Usage | None = None
        self._estimate: Callable[[], int] | None = None
        self._gauge = services.metrics.in_flight(route)

    async def __aenter__(self) -> Exchange:
        self._gauge.inc()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        try:
            if isinstance(exc, asyncio.CancelledError) and self.services.draining.absorb():
                # Ended by the drain before its answer started (a started stream ends in stream()).
                self.outcome.failed(503, "shutdown")
                await self._refuse(self.services.draining.refusal())
                return True
            if isinstance(exc, GatewayError):
                self.outcome.failed(exc.status_code, refusal_type(exc))
                await self._refuse(exc)
                return True
            if isinstance(exc, AttemptFailed):
                if self.error_api == "anthropic":
                    status, headers, payload = anthropic_upstream_error(exc.classified, self.request_id)
                else:
                    status, headers, payload = error_response(exc.classified, api=self.error_api)
                self.outcome.failed(status, "upstream")
                if not self.channel.started:
                    await self.channel.send_json(status, payload, self.headers_now(headers))
                return True
            if isinstance(exc, ClientDisconnected):
                self.outcome.failed(499, "client_disconnect")
                return True
            return False  # a bug: counted as 500 internal; the HTTP layer answers it
        finally:
            self._gauge.dec()
            self.finish()

    async def _refuse(self, error: GatewayError) -> None:
        """Answer ``error`` in the route's error dialect, unless the answer has started."""
        if self.channel.started:
            return
        if self.error_api == "anthropic":
            status, headers, payload = anthropic_refusal(error, self.request_id)
            await self.channel.send_json(status, payload, self.headers_now(headers))
        else:
            await send_error(self.channel, error, self.headers_now())

    # -- before the upstream ---------------------------------------------------------------------

    async def authenticate(self, *, admits: bool = False) -> Caller:
        """The caller. An admin-created key served from the cache is checked against its
        current version in Redis first (a block, rotation or deletion on any replica applies
        at once) — unless ``admits``: the endpoint admits the request before it reads or
        writes anything of the caller's, and the admission script makes that check itself."""
        return await self.services.policy.authenticate(self.channel.presented_key(), verify=not admits)

    async def read_body(self) -> bytes:
        return await self.channel.read_body(self.services.settings.server.max_body_bytes)

    async def admit(
        self, caller: Caller, *, model: str, body_size: int, max_tokens: object, stream: bool
    ) -> Ticket:
        """The policy's admission; its headers go on every answer from now on."""
        ticket = await self.services.policy.admit(
            caller,
            model=model,
            body_size=body_size,
            max_tokens=max_tokens if isinstance(max_tokens, int) else None,
            request_id=self.request_id,
            endpoint=self.route,
            started=self.started,
        )
        ticket.stream = stream
        self.ticket = ticket
        self.model = ticket.model
        self.headers += ticket.headers
        return ticket

    def plan(self, model: str, estimate: Callable[[], int], *, param: str) -> list[Deployment]:
        """The deployments to try, without those whose context window the prompt clearly
        overflows (``estimate``: the prompt's tokens; ``param``: where a refusal points)."""
        plan = self.services.router.plan(model)
        if not plan:
            raise model_not_found(model)
        self._estimate = estimate
        return fit_plan(plan, self.services.catalog, estimate, param=param)

    def headers_now(self, extra: Iterable[tuple[str, str]] | dict[str, str] = ()) -> list[tuple[str, str]]:
        """The answer's headers: ``extra``, the request id and policy headers, the timings."""
        pairs = extra.items() if isinstance(extra, dict) else extra
        out = [*pairs, *self.headers]
        if self.services.settings.server.timing_headers:
            out += self.trace.headers(time.perf_counter() - self.started)
        return out

    # -- the upstream ----------------------------------------------------------------------------

    def upstream(self) -> AbstractAsyncContextManager[None]:
        """The block in which the upstream is called: a client that goes away cancels it."""
        return self.channel.cancel_on_disconnect()

    def failover(self, replay: Replay | None) -> Failover[Any]:
        return Failover(self.services.router, self.services.clock, self.trace, replay=replay)

    async def json(
        self, plan: list[Deployment], call: Callable[[Attempt], Awaitable[A]], *, replay: Replay | None = None
    ) -> A:
        """The first whole answer the plan's attempts give (``replay``: the failover's hook)."""
        tracing = self.services.tracing
        if tracing is None:
            answer: A = await self.failover(replay).run(plan, call)
            return answer
        model = self.model or ""

        async def traced(attempt: Attempt) -> A:
            span = attempt_span(tracing, attempt, route=self.route, public_model=model, stream=False)
            answer = await run_attempt(span, call(attempt))
            span.succeed(usage=answer.usage(), model=answer.model())
            return answer

        result: A = await self.failover(replay).run(plan, traced)
        return result

    async def send_json(self, answer: JsonAnswer) -> None:
        if self.services.policy.enabled:
            self.outcome.usage = answer.usage()
        await self.channel.send_json(200, answer.body, self.headers_now())
        self.outcome.ok()

    async def stream(
        self,
        plan: list[Deployment],
        call: Callable[[Attempt], Awaitable[Opened]],
        *,
        replay: Replay | None = None,
        continuer: Continuer | None = None,
    ) -> None:
        """Open a stream on the plan (up to its commit point), then relay it to the client.
        ``continuer``: how to continue the stream elsewhere if it breaks after the commit."""
        tracing = self.services.tracing
        opened_on: list[Deployment] = []

        async def attempt(attempt: Attempt) -> Opened:
            result = await call(attempt)
            opened_on[:] = [attempt.deployment]
            return result

        if tracing is None:
            opened, relay = await self.failover(replay).run(plan, attempt)
        else:
            model = self.model or ""

            async def traced(attempt_: Attempt) -> Opened:
                span = attempt_span(tracing, attempt_, route=self.route, public_model=model, stream=True)
                result = await run_attempt(span, attempt(attempt_))
                self.span = span
                return result

            opened, relay = await self.failover(replay).run(plan, traced)
        self.relay = relay
        rescue = None
        if continuer is not None and Rescue.possible(self.services, plan):
            rescue = Rescue(self.services, self.trace, plan, continuer, self.send_chunk)
            relay.hold = True
            self._tape = []
        try:
            await self.channel.start_stream(self.headers_now())
        except BaseException:
            await opened.aclose()
            raise
        self.outcome.ok()
        ended = False
        try:
            await relay.run(opened, self.send_chunk)
            if relay.failure is not None and rescue is not None and self._tape is not None:
                await self._rescue(rescue, relay, opened_on[0], self._tape)
            elif relay.failure is not None:
                self.services.router.breakers.failed(
                    opened_on[0].provider, opened_on[0].upstream_model, relay.failure
                )
        except asyncio.CancelledError:
            if not self.services.draining.absorb():
                raise
            # The drain is over: the stream ends with its in-band error (not the upstream's
            # fault: no breaker counts it, no rescue continues it).
            ended = True
            relay.failure = self.services.draining.stream_error(opened_on[0].provider)
            await relay.release(self.send_chunk)
        if relay.failure is not None:
            self.outcome.error_type = "shutdown" if ended else "upstream"
            self.outcome.attempt_error = str(relay.failure.kind)
        await self.channel.end_stream()

    async def _rescue(self, rescue: Rescue, relay: Relay, broken: Deployment, tape: list[bytes]) -> None:
        await rescue.run(relay, broken, tape)
        self.rescued_usage = rescue.usage
        self._broken_text = rescue.broken_text
        self._broken_reported = rescue.broken_usage

    async def send_chunk(self, chunk: bytes) -> None:
        if self.ttft is None:
            self.ttft = time.perf_counter() - self.started
        if self._tape is not None:
            self._tape.append(chunk)
        await self.channel.send_chunk(chunk)

    def _broken_usage(self) -> Usage:
        """An estimate of what a broken stream that reported no usage used: the prompt, and the
        text the client received from it."""
        prompt = self._estimate() if self._estimate is not None else 0
        return Usage(input_tokens=prompt, output_tokens=text_tokens(self._broken_text), source="estimated")

    # -- the end ---------------------------------------------------------------------------------

    def finish(self) -> None:
        """End the stream's span, settle the ticket, count the request (every exit path)."""
        outcome, trace, relay = self.outcome, self.trace, self.relay
        usage = outcome.usage
        if usage is None and relay is not None:
            usage = relay.usage
            if self.rescued_usage is not None:  # the broken stream's part, then the rest
                usage = (self._broken_reported or self._broken_usage()).plus(self.rescued_usage)
        last = trace.attempts[-1] if trace.attempts else None
        if self.span is not None:
            model = (relay.model if relay is not None else None) or (last.upstream_model if last else None)
            if outcome.error_type:
                self.span.fail(outcome.attempt_error or outcome.error_type, usage=usage, model=model)
            else:
                self.span.succeed(usage=usage, model=model)
        if self.ticket is not None:
            self.ticket.settle(
                status=outcome.status,
                usage=usage,
                error_type=outcome.error_type or None,
                provider=last.provider if last else None,
                upstream_model=last.upstream_model if last else None,
                attempts=len(trace.attempts),
                ttft_s=self.ttft,
                upstream_s=trace.upstream_s + trace.backoff_s,
            )
        self.services.metrics.finished(
            route=self.route,
            model=self.model,
            status=outcome.status,
            error_type=outcome.error_type,
            started=self.started,
            trace=trace,
            ttft_s=self.ttft,
        )

"""``POST /v1/responses``: parse, read what the request continues from, then one upstream call
per attempt through the deployment's dialect; the rest is the :class:`~gateway.exchange.Exchange`'s.

Before the first upstream call the parent (if any) is read for this key only; its
``function_call`` items must be answered by the new input. Each attempt then picks native
chaining or a replay for its own deployment (:class:`~gateway.responses.upstreams.Turn`). An
upstream that answers ``previous_response_not_found`` to a native attempt is asked again at
once, within the same attempt, with the full history (the failover loop's ``replay`` hook): the
client never sees it and it is not a failure.

The record is written before the client can see the end: before a non-streamed body is sent,
and before ``response.completed`` on a stream.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from redis.exceptions import RedisError

from gateway.dialects import Produced, ResponsesCall, dialect_for
from gateway.dialects.responses import is_stale_chain
from gateway.errors import AttemptFailed, ClassifiedError
from gateway.exchange import ClientChannel, Exchange
from gateway.policy.usage import usage_from_responses
from gateway.pricing import Usage
from gateway.responses import background
from gateway.responses.continuation import ResponsesContinuer
from gateway.responses.prepared import prepare
from gateway.responses.request import parse_responses_request
from gateway.responses.service import response_store, store_unavailable
from gateway.responses.session import LastResponse
from gateway.responses.stream import ResponsesRelay
from gateway.responses.upstreams import Turn, begin_turn
from gateway.services import Services
from gateway.upstream import Deployment
from gateway.upstream.call import OpenedStream, call_json, open_stream
from gateway.upstream.committed import Relay
from gateway.upstream.failover import Attempt

log = logging.getLogger("gateway.responses")
_ENCODER = msgspec.json.Encoder()
ROUTE = "/v1/responses"


class Answer:
    """A whole Response object, as sent to the client, and the deployment that produced it."""

    __slots__ = ("deployment", "json", "produced")

    def __init__(self, deployment: Deployment, produced: Produced) -> None:
        self.deployment = deployment
        self.produced = produced
        self.json: bytes | None = None  # the Response's JSON, when recording it made it

    @property
    def body(self) -> bytes:
        return self.json if self.json is not None else _ENCODER.encode(self.produced.response)

    def usage(self) -> Usage | None:
        return usage_from_responses(self.produced.response.get("usage"))

    def model(self) -> str | None:
        model = self.produced.response.get("model")
        return model if isinstance(model, str) else None


class Responses:
    """One request's upstream calls."""

    def __init__(self, services: Services, turn: Turn) -> None:
        self.services = services
        self.turn = turn

    def replay(self, attempt: Attempt, error: ClassifiedError) -> bool:
        """A native chain the upstream forgot: ask again with the history."""
        turn = self.turn
        if not (turn.native(attempt.deployment) and is_stale_chain(error)):
            return False
        parent = turn.parent.upstream_id if turn.parent else None
        log.info("upstream %s forgot response %s; replaying the history", attempt.upstream.name, parent)
        return True

    async def call(self, attempt: Attempt) -> ResponsesCall:
        native = self.turn.native(attempt.deployment) and not attempt.replay
        dialect = dialect_for(attempt.deployment.api)
        try:
            return await dialect.responses_call(attempt, self.turn, clock=self.services.clock, native=native)
        except RedisError:
            log.exception("response store unavailable")
            raise store_unavailable() from None

    async def json(self, attempt: Attempt) -> Answer:
        call = await self.call(attempt)
        try:
            response = await call_json(attempt, call.request, self.services.clock)
        except AttemptFailed as failed:
            if _names_messages(failed, attempt, self.turn):
                raise _as_input(failed) from None
            raise
        return Answer(attempt.deployment, call.answer(response.content))

    async def stream(self, attempt: Attempt) -> tuple[OpenedStream, Relay]:
        call = await self.call(attempt)
        clock = self.services.clock
        try:
            opened = await open_stream(attempt, call.request, call.roles, clock)
        except AttemptFailed as failed:
            if _names_messages(failed, attempt, self.turn):
                raise _as_input(failed) from None
            raise
        converter = call.converter()
        deployment, turn = attempt.deployment, self.turn

        async def record(response: dict[str, Any]) -> bytes | None:
            await turn.save(deployment, response, converter.upstream_id)
            return turn.response_json

        relay = ResponsesRelay(
            converter=converter,
            record=record,
            provider=attempt.upstream.classifier_key,
            clock=clock,
            idle_timeout=attempt.upstream.settings.timeouts.idle,
        )
        return opened, relay


def _names_messages(failed: AttemptFailed, attempt: Attempt, turn: Turn) -> bool:
    """A refusal naming a translated request's ``messages``: the client's ``input``."""
    return failed.classified.param == "messages" and not turn.native(attempt.deployment)


def _as_input(failed: AttemptFailed) -> AttemptFailed:
    return AttemptFailed(msgspec.structs.replace(failed.classified, param="input"))


async def create(services: Services, channel: ClientChannel) -> None:
    await respond(services, channel)


async def respond(
    services: Services, channel: ClientChannel, *, last: LastResponse | None = None, generate: bool = True
) -> Turn | None:
    """Answer one create request on ``channel``; the turn it became (None: refused before).
    ``last``: a WebSocket connection's last response (see :mod:`gateway.responses.session`);
    ``generate``: false for a WebSocket ``generate: false`` (:mod:`gateway.responses.prepared`)."""
    turn: Turn | None = None
    async with Exchange(services, channel, route=ROUTE, error_api="responses") as exchange:
        caller = await exchange.authenticate(admits=True)
        body = await exchange.read_body()
        request = parse_responses_request(body)
        # What the request continues from, and whether any deployment fits its prompt, are
        # checked before admission: refused, the request writes nothing and spends no limit.
        try:
            turn = await begin_turn(services, response_store(services), caller.principal, request, last=last)
        except RedisError:
            log.exception("response store unavailable")
            raise store_unavailable() from None
        early = services.policy.may_use(caller, request.model)
        plan = exchange.plan(request.model, turn.prompt_tokens, param="input") if early else None
        await exchange.admit(
            caller,
            model=request.model,
            body_size=len(body),
            max_tokens=request.data.get("max_output_tokens"),
            stream=request.stream,
        )
        if plan is None:  # the key's cached allow-list said no, and admission read it again
            plan = exchange.plan(request.model, turn.prompt_tokens, param="input")
        try:
            await turn.touch()
        except RedisError:
            log.exception("response store unavailable")
            raise store_unavailable() from None
        if request.background:
            await background.enqueue(services, exchange, turn, body)
            return turn
        if not generate:
            try:
                await prepare(exchange, turn, plan)
            except RedisError:
                log.exception("response store unavailable")
                raise store_unavailable() from None
            return turn
        await run(exchange, services, turn, plan, stream=request.stream)
    return turn


async def run(
    exchange: Exchange, services: Services, turn: Turn, plan: list[Deployment], *, stream: bool
) -> None:
    """The upstream calls of an admitted turn, answered on the exchange's channel."""
    calls = Responses(services, turn)
    async with exchange.upstream():
        if stream:
            continuer = ResponsesContinuer(turn)
            await exchange.stream(plan, calls.stream, replay=calls.replay, continuer=continuer)
        else:
            answer = await exchange.json(plan, calls.json, replay=calls.replay)
            try:
                await turn.save(answer.deployment, answer.produced.response, answer.produced.upstream_id)
            except RedisError:
                log.exception("response store unavailable")
                raise store_unavailable() from None
            answer.json = turn.response_json
            await exchange.send_json(answer)

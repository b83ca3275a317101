"""``POST /v1/responses/input_tokens``: how many input tokens a Responses request would be
(``{"object": "response.input_tokens", "input_tokens": N}``, the SDK's
``responses.input_tokens.count``).

The request is read as a create request (its ``previous_response_id`` chain included). When the
model's first deployment speaks Responses, the upstream counts: its ``/responses/input_tokens``
gets the request with the deployment's model and, as for a create, its own id of the parent or
the replayed history; Responses deployments fail over to each other as usual. Otherwise, or when
every such attempt fails for a reason that is not the client's, the answer is the gateway's
estimate, labelled by the ``x-gateway-token-count: estimate`` header.

The key and the model allow-list are checked as on ``POST /v1/responses``; counting spends no
request or token limit and records no usage.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from redis.exceptions import RedisError

from gateway.dialects import dialect_for
from gateway.errors import AttemptFailed
from gateway.exchange import ClientChannel, Exchange
from gateway.policy.errors import model_not_found
from gateway.pricing import Usage
from gateway.responses.request import parse_responses_request
from gateway.responses.service import response_store, store_unavailable
from gateway.responses.upstreams import Turn, begin_turn
from gateway.services import Services
from gateway.upstream.call import call_json, malformed_body
from gateway.upstream.failover import Attempt

log = logging.getLogger("gateway.responses")
ROUTE = "/v1/responses/input_tokens"
PATH = "/responses/input_tokens"
ESTIMATE_HEADER = ("x-gateway-token-count", "estimate")
_ENCODER = msgspec.json.Encoder()
_OBJECT = msgspec.json.Decoder(dict[str, Any])


class Count:
    __slots__ = ("tokens",)

    def __init__(self, tokens: int) -> None:
        self.tokens = tokens

    @property
    def body(self) -> bytes:
        return _ENCODER.encode({"object": "response.input_tokens", "input_tokens": self.tokens})

    def usage(self) -> Usage | None:
        return None

    def model(self) -> str | None:
        return None


def _counter(services: Services, turn: Turn) -> Any:
    async def call(attempt: Attempt) -> Count:
        data = {k: v for k, v in turn.data.items() if k not in ("stream", "background", "store")}
        data["model"] = attempt.deployment.upstream_model
        if turn.native(attempt.deployment):
            data["previous_response_id"] = turn.parent_upstream_id
        elif turn.previous_response_id is not None:
            data.pop("previous_response_id", None)
            data["input"] = await turn.replay_input(for_responses=True)
        request = attempt.upstream.request("POST", PATH, _ENCODER.encode(data))
        answer = _OBJECT.decode((await call_json(attempt, request, services.clock)).content)
        tokens = answer.get("input_tokens")
        if not isinstance(tokens, int):
            raise AttemptFailed(malformed_body(attempt.upstream.classifier_key))
        return Count(tokens)

    return call


async def count_input_tokens(services: Services, channel: ClientChannel) -> None:
    async with Exchange(services, channel, route=ROUTE, error_api="responses") as exchange:
        caller = await exchange.authenticate()
        body = await exchange.read_body()
        request = parse_responses_request(body)
        if request.model not in services.policy.models:
            raise model_not_found(request.model)
        services.policy.check_model(caller, request.model)
        exchange.model = request.model
        try:
            turn = await begin_turn(services, response_store(services), caller.principal, request)
        except RedisError:
            log.exception("response store unavailable")
            raise store_unavailable() from None
        plan = services.router.plan(request.model)
        if not plan:
            raise model_not_found(request.model)
        native = [d for d in plan if dialect_for(d.api).stores_responses]
        if dialect_for(plan[0].api).stores_responses:
            try:
                async with exchange.upstream():
                    await exchange.send_json(await exchange.json(native, _counter(services, turn)))
                return
            except AttemptFailed as failed:
                # The client's request at fault is answered as it is; an upstream without the
                # route (404, 405) is counted by the estimate, as one that failed.
                if not failed.classified.failover and failed.classified.status_code not in (404, 405):
                    raise
        try:
            estimate = turn.prompt_tokens()
        except RedisError:
            raise store_unavailable() from None
        await channel.send_json(200, Count(estimate).body, exchange.headers_now([ESTIMATE_HEADER]))
        exchange.outcome.ok()

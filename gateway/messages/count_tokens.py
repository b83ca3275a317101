"""``POST /v1/messages/count_tokens``: how many input tokens a Messages prompt is.

Clients (Claude Code first) call it every turn and size their context by it, so the answer is
never a made-up ``0``:

* when the model's first deployment speaks Anthropic Messages, the upstream counts (the body as
  the client sent it, only ``model`` replaced), with the usual failover between Anthropic
  deployments; should every Anthropic attempt fail for a reason that is not the client's, the
  gateway's estimate answers instead;
* otherwise the answer is the gateway's estimate (:mod:`gateway.token_estimate`), labelled by
  the ``x-gateway-token-count: estimate`` header;
* where the estimate cannot size the prompt (PDF and other document blocks, whose tokens depend
  on their rendered pages), the answer is 501 in Anthropic's error shape rather than an
  understated number, and the client falls back to its own count.

The key and the model allow-list are checked as on ``/v1/messages``; counting spends no
request or token limit and records no usage (nothing is generated).
"""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.config import UpstreamApi
from gateway.dialects.anthropic import count_tokens_request
from gateway.errors import AttemptFailed
from gateway.errors.client import GatewayError, InvalidRequest
from gateway.exchange import ClientChannel, Exchange
from gateway.exchange.body import decode_json_object
from gateway.messages.endpoint import Message, client_headers, estimate_messages_tokens
from gateway.messages.passthrough import with_model
from gateway.messages.request import check_prompt, invalid
from gateway.policy.errors import model_not_found
from gateway.services import Services
from gateway.upstream.call import call_json
from gateway.upstream.failover import Attempt

ROUTE = "/v1/messages/count_tokens"
ESTIMATE_HEADER = ("x-gateway-token-count", "estimate")
_RAW = msgspec.json.Decoder(dict[str, msgspec.Raw])
_ENCODER = msgspec.json.Encoder()


class CountUnsupported(GatewayError):
    status_code = 501
    error_type = "not_supported"


def _unsized(data: dict[str, Any]) -> bool:
    """The prompt holds blocks the estimate cannot size (documents)."""
    for message in data["messages"]:
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for block in content:
            if block.get("type") == "document":
                return True
            inner = block.get("content") if block.get("type") == "tool_result" else None
            if isinstance(inner, list) and any(
                isinstance(b, dict) and b.get("type") == "document" for b in inner
            ):
                return True
    return False


async def count_tokens(services: Services, channel: ClientChannel) -> None:
    async with Exchange(services, channel, route=ROUTE, error_api="anthropic") as exchange:
        caller = await exchange.authenticate()
        body = await exchange.read_body()
        try:
            data = decode_json_object(body)
        except InvalidRequest:
            raise invalid("There was an error parsing the body of your request as JSON.") from None
        model = data.get("model")
        if model is None:
            raise invalid("model: Field required")
        if not isinstance(model, str) or not model:
            raise invalid("model: Input should be a valid string")
        check_prompt(data)
        if model not in services.policy.models:
            raise model_not_found(model)
        services.policy.check_model(caller, model)
        exchange.model = model
        plan = services.router.plan(model)
        if not plan:
            raise model_not_found(model)
        native = [d for d in plan if d.api is UpstreamApi.ANTHROPIC]
        if plan[0].api is UpstreamApi.ANTHROPIC:
            raw = _RAW.decode(body)
            headers = client_headers(channel)

            async def call(attempt: Attempt) -> Message:
                request = count_tokens_request(
                    attempt, with_model(body, raw, attempt.deployment.upstream_model), headers
                )
                response = await call_json(attempt, request, services.clock)
                return Message(response.content, None, None)

            try:
                async with exchange.upstream():
                    await exchange.send_json(await exchange.json(native, call))
                return
            except AttemptFailed as failed:
                if not failed.classified.failover:  # the client's request is at fault
                    raise
        if _unsized(data):
            raise CountUnsupported(
                "Token counting is not available for this prompt on this model: its document blocks cannot "
                "be sized without the provider's own count."
            )
        answer = _ENCODER.encode({"input_tokens": estimate_messages_tokens(data)})
        await channel.send_json(200, answer, exchange.headers_now([ESTIMATE_HEADER]))
        exchange.outcome.ok()

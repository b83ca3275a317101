"""``POST /v1/chat/completions``: parse, then one upstream call per attempt through the
deployment's dialect; everything else (policy, plan, failover, commit point, metrics,
settlement) is the :class:`~gateway.exchange.Exchange`'s.

A stream whose upstream speaks Chat Completions is relayed byte for byte; with the policy on,
a tap reads its usage on the way (and hides the usage chunk the gateway asked for when the
client did not).
"""

from __future__ import annotations

from gateway.chat_completions.request import ChatRequest, parse_chat_request
from gateway.dialects import dialect_for
from gateway.exchange import ClientChannel, Exchange
from gateway.exchange.rescue import ChatContinuer
from gateway.policy.usage import StreamUsageTap, usage_from_body
from gateway.pricing import Usage
from gateway.services import Services
from gateway.telemetry.tracing import response_model
from gateway.token_estimate import estimate_chat_tokens
from gateway.upstream.call import OpenedStream, call_json, open_stream
from gateway.upstream.committed import Relay
from gateway.upstream.failover import Attempt

ROUTE = "/v1/chat/completions"


class Completion:
    """A whole Chat Completion, as sent to the client."""

    __slots__ = ("body",)

    def __init__(self, body: bytes) -> None:
        self.body = body

    def usage(self) -> Usage | None:
        return usage_from_body(self.body)

    def model(self) -> str | None:
        return response_model(self.body)


class ChatCompletions:
    """One request's upstream calls."""

    __slots__ = ("ask_usage", "no_options", "request", "services", "tap")

    def __init__(self, services: Services, request: ChatRequest) -> None:
        policy = services.policy
        self.services = services
        self.request = request
        self.tap = policy.enabled  # read the usage of relayed streams
        # Ask for the streaming usage the client did not ask for (hidden from it again).
        self.ask_usage = (
            request.stream
            and not request.include_usage
            and policy.enabled
            and policy.config.inject_stream_usage
        )
        self.no_options = policy.config.no_stream_options_providers

    async def json(self, attempt: Attempt) -> Completion:
        clock = self.services.clock
        call = dialect_for(attempt.deployment.api).chat_call(
            attempt, self.request.data, clock=clock, ask_usage=False
        )
        response = await call_json(attempt, call.request, clock)
        return Completion(call.answer(response.content))

    async def stream(self, attempt: Attempt) -> tuple[OpenedStream, Relay]:
        clock = self.services.clock
        ask = self.ask_usage and attempt.upstream.name not in self.no_options
        call = dialect_for(attempt.deployment.api).chat_call(
            attempt, self.request.data, clock=clock, ask_usage=ask
        )
        opened = await open_stream(attempt, call.request, call.roles, clock)
        tap = StreamUsageTap(strip=ask) if self.tap else None
        return opened, call.relay(clock, include_usage=self.request.include_usage, tap=tap)


async def handle(services: Services, channel: ClientChannel) -> None:
    async with Exchange(services, channel, route=ROUTE, error_api="chat") as exchange:
        caller = await exchange.authenticate(admits=True)
        body = await exchange.read_body()
        request = parse_chat_request(body)
        data = request.data

        def estimate() -> int:
            return estimate_chat_tokens(data)

        # A prompt no deployment fits is refused before admission: it writes nothing and
        # spends no limit (when the key's cached allow-list says no, admission decides first).
        early = services.policy.may_use(caller, request.model)
        plan = exchange.plan(request.model, estimate, param="messages") if early else None
        await exchange.admit(
            caller,
            model=request.model,
            body_size=len(body),
            max_tokens=data.get("max_completion_tokens") or data.get("max_tokens"),
            stream=request.stream,
        )
        if plan is None:
            plan = exchange.plan(request.model, estimate, param="messages")
        calls = ChatCompletions(services, request)
        async with exchange.upstream():
            if request.stream:
                continuer = ChatContinuer(data, include_usage=request.include_usage)
                await exchange.stream(plan, calls.stream, continuer=continuer)
            else:
                await exchange.send_json(await exchange.json(plan, calls.json))

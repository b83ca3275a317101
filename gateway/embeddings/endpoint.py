"""``POST /v1/embeddings``: an adapter on the shared request cycle.

The request is checked (:mod:`.request`), admitted against the key's limits and budgets (its
input estimated from the body; embeddings produce no output tokens), planned on the deployments
whose provider serves embeddings, and sent by the failover loop. An input larger than the
provider's ``embedding_batch_limit`` goes as several upstream requests, one after the other,
whose answers are joined in order with their usage summed; a retry of the same upstream model
sends only the batches still missing (vectors of different models are never mixed). The
client gets the vectors in the encoding it asked for (:mod:`.vectors`); ``prompt_tokens`` is
the request's input usage, priced at the model's embedding price.
"""

from __future__ import annotations

from typing import Any

import httpx
import msgspec

from gateway.config.providers import OpenAIRoute
from gateway.dialects.openai_routes import call_whole, served, usage_of
from gateway.embeddings import vectors
from gateway.embeddings.request import EmbeddingsRequest, batches, parse_embeddings_request
from gateway.exchange import ClientChannel, Exchange
from gateway.pricing import Usage
from gateway.services import Services
from gateway.telemetry.tracing import response_model
from gateway.upstream.failover import Attempt

ROUTE = "/v1/embeddings"
PATH = "/embeddings"
_ENCODER = msgspec.json.Encoder()


class Embeddings:
    """A whole embeddings answer, as sent to the client."""

    __slots__ = ("body",)

    def __init__(self, body: bytes) -> None:
        self.body = body

    def usage(self) -> Usage | None:
        return usage_of(self.body)

    def model(self) -> str | None:
        return response_model(self.body)


class EmbeddingCalls:
    """One request's upstream calls; answers kept per upstream model across retries."""

    __slots__ = ("done", "raw", "request", "services")

    def __init__(self, services: Services, request: EmbeddingsRequest, raw: bytes) -> None:
        self.services = services
        self.request = request
        self.raw = raw
        self.done: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}

    def _request(self, attempt: Attempt, chunk: Any) -> httpx.Request:
        """The upstream request for ``chunk`` of the input (the client's body as it is when it
        is the whole input and the deployment's model has the public name)."""
        data = self.request.data
        model = attempt.deployment.upstream_model
        if chunk is data["input"] and data.get("model") == model:
            body = self.raw
        else:
            body = _ENCODER.encode({**data, "model": model, "input": chunk})
        return attempt.upstream.request("POST", PATH, body)

    async def call(self, attempt: Attempt) -> Embeddings:
        upstream = attempt.upstream
        clock = self.services.clock
        encoding = self.request.encoding
        plan = batches(self.request, upstream.settings.embedding_batch_limit)
        if len(plan) == 1:
            response = await call_whole(attempt, self._request(attempt, plan[0][1]), clock)
            body = response.content
            if vectors.in_encoding(body, encoding):
                return Embeddings(body)
            answer = vectors.decode_answer(body, upstream.classifier_key)
            return Embeddings(vectors.joined([(0, answer)], encoding))
        done = self.done.setdefault((upstream.name, attempt.deployment.upstream_model), {})
        for offset, chunk in plan:
            if offset not in done:
                response = await call_whole(attempt, self._request(attempt, chunk), clock)
                done[offset] = vectors.decode_answer(response.content, upstream.classifier_key)
        return Embeddings(vectors.joined([(offset, done[offset]) for offset, _ in plan], encoding))


async def handle(services: Services, channel: ClientChannel) -> None:
    async with Exchange(services, channel, route=ROUTE, error_api="chat") as exchange:
        caller = await exchange.authenticate()
        body = await exchange.read_body()
        request = parse_embeddings_request(body)
        # Embeddings have no output: the smallest output reserve admission takes.
        await exchange.admit(caller, model=request.model, body_size=len(body), max_tokens=1, stream=False)
        plan = served(
            exchange.plan(request.model, lambda: 0, param="input"),
            services.router,
            OpenAIRoute.EMBEDDINGS,
            path=ROUTE,
        )
        calls = EmbeddingCalls(services, request, body)
        async with exchange.upstream():
            await exchange.send_json(await exchange.json(plan, calls.call))

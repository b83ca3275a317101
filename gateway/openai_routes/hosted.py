"""What files and batches share: the admission of every operation, the provider that holds an
object as a one-deployment plan (so its calls get the failover loop's retries, timers and
classification), whole JSON answers, and the store's failures as a 503.

Every file and batch operation is admitted like any request: the key and its team's request
limits, revocation, and the allow-lists of the models it involves (a batch's, a batch file's);
it is settled with a usage event of zero tokens (a batch's tokens are charged when it ends, by
:mod:`.batch_usage`). It is estimated at one token, so an upload's size never counts as tokens.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

import httpx
import msgspec

from gateway.config import ModelSettings, ProviderKind, UpstreamApi
from gateway.config.providers import OpenAIRoute
from gateway.dialects.openai_routes import call_whole, serves
from gateway.errors import AttemptFailed
from gateway.errors.client import InvalidRequest, ServiceUnavailable
from gateway.exchange import Exchange
from gateway.openai_routes.objects import ObjectStore
from gateway.policy.engine import Caller
from gateway.policy.store import STORE_ERRORS
from gateway.pricing import Usage
from gateway.services import Services
from gateway.upstream import Deployment
from gateway.upstream.call import malformed_body
from gateway.upstream.failover import Attempt
from gateway.upstream.http11_transport import BodyPieces

T = TypeVar("T")
_DECODER = msgspec.json.Decoder()
_ENCODER = msgspec.json.Encoder()


class JsonObject:
    """An upstream object (a file, a batch, a list of them) as the client gets it."""

    __slots__ = ("data",)

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    @property
    def body(self) -> bytes:
        return _ENCODER.encode(self.data)

    def usage(self) -> Usage | None:
        return ZERO

    def model(self) -> str | None:
        return None


ZERO = Usage()  # what a file or batch operation uses itself: no tokens (reported as such)


async def admit(exchange: Exchange, caller: Caller, *, models: Sequence[str] = ()) -> None:
    """Admit a file or batch operation once everything that may refuse it has been checked (a
    refused request writes nothing); ``models``: the public models it involves (a batch's, a
    batch file's and its outputs'), each checked against the key's and team's allow-lists (the
    first names the request in usage events)."""
    policy = exchange.services.policy
    for model in models[1:]:
        policy.check_model(caller, model)
    await exchange.admit(caller, model=models[0] if models else "", body_size=0, max_tokens=1, stream=False)


def store_of(services: Services) -> ObjectStore:
    return ObjectStore(services.redis, services.settings.redis.key_prefix)


async def stored(operation: Awaitable[T]) -> T:
    """A store operation; Redis failing is a 503 the client may retry."""
    try:
        return await operation
    except STORE_ERRORS:
        raise ServiceUnavailable(
            "The gateway's object store is unavailable; please try again.",
            code="store_unavailable",
            headers={"x-should-retry": "true"},
        ) from None


def not_supported(provider: str, what: str) -> InvalidRequest:
    return InvalidRequest(
        f"{what} is not supported by provider '{provider}'.", param=None, code="not_supported"
    )


def provider_plan(services: Services, provider: str, what: str) -> list[Deployment]:
    """The provider holding an object, as the plan of its calls."""
    upstream = services.upstreams.get(provider)
    if upstream is None or not serves(upstream, OpenAIRoute.FILES):
        raise not_supported(provider, what)
    api = UpstreamApi.ANTHROPIC if upstream.kind is ProviderKind.ANTHROPIC else UpstreamApi.CHAT
    return [
        Deployment(
            public_model="",
            upstream_model="",
            api=api,
            provider=provider,
            index=0,
            settings=ModelSettings(name="", provider=provider),
        )
    ]


def files_provider(services: Services) -> str | None:
    """The first configured provider that serves files."""
    for name, upstream in services.upstreams.items():
        if serves(upstream, OpenAIRoute.FILES):
            return name
    return None


def decoded(response: httpx.Response, attempt: Attempt) -> dict[str, Any]:
    try:
        data = _DECODER.decode(response.content)
    except msgspec.DecodeError:
        data = None
    if not isinstance(data, dict):
        raise AttemptFailed(malformed_body(attempt.upstream.classifier_key))
    return data


async def call_object(
    exchange: Exchange,
    plan: list[Deployment],
    method: str,
    path: str,
    body: bytes | BodyPieces | None = None,
    *,
    content_type: str | None = None,
) -> dict[str, Any]:
    """One JSON call on the object's provider, with retries."""
    services = exchange.services

    async def once(attempt: Attempt) -> JsonObject:
        headers = {"content-type": content_type} if content_type else None
        request = attempt.upstream.request(method, path, body, headers=headers)
        return JsonObject(decoded(await call_whole(attempt, request, services.clock), attempt))

    answer = await exchange.json(plan, once)
    return answer.data

"""Shared pieces of the Messages conformance tests: a gateway with a Claude and an OpenAI model,
the upstream requests it sent (bytes and headers), and Anthropic SDK clients on it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anthropic
import httpx

from fake_providers.testing import FakeProviders
from gateway.clock import ManualClock
from gateway.testing import GATEWAY_KEY, NO_BACKOFF, RunningGateway, add_anthropic, base_config, serve_gateway

WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


class Sent:
    """One request the gateway sent upstream, as bytes."""

    def __init__(self, request: httpx.Request) -> None:
        self.path = request.url.path
        self.headers = dict(request.headers)
        self.body = request.content


class Recording(httpx.AsyncBaseTransport):
    """The gateway's upstream transport, keeping every POST it sends (not the model listings)."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.sent: list[Sent] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            self.sent.append(Sent(request))
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def config(fake: FakeProviders, redis_url: str, **model_fields: Any) -> dict[str, Any]:
    """``claude`` (the fake Anthropic provider, ``claude-haiku-4-5``), ``gpt-4o-mini`` (Chat
    Completions) and ``llama`` (an OpenAI-compatible server)."""
    return add_anthropic(
        base_config(fake, redis_url), fake, retry=dict(NO_BACKOFF), model_fields=model_fields or None
    )


@contextmanager
def recorded_gateway(
    cfg: dict[str, Any],
) -> Iterator[tuple[RunningGateway[ManualClock], Recording, Recording]]:
    """A gateway whose Anthropic and OpenAI upstream requests are recorded."""
    claude, openai = Recording(), Recording()
    with serve_gateway(
        cfg, clock=ManualClock(), transports={"fake-anthropic": claude, "fake-openai": openai}
    ) as gw:
        yield gw, claude, openai


def client(
    gw: RunningGateway[Any], *, key: str = GATEWAY_KEY, bearer: bool = False, **kwargs: Any
) -> anthropic.Anthropic:
    """The official SDK on the gateway: ``x-api-key`` (``api_key``) or ``Authorization: Bearer``
    (``auth_token``, what ``ANTHROPIC_AUTH_TOKEN`` sets)."""
    kwargs.setdefault("max_retries", 0)
    if bearer:
        return anthropic.Anthropic(base_url=gw.root_url, auth_token=key, **kwargs)
    return anthropic.Anthropic(base_url=gw.root_url, api_key=key, **kwargs)

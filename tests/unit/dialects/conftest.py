"""Dialect adapters against recorded provider answers, served by respx: one provider per
dialect at ``http://upstream.test/v1``, an :class:`Attempt` on its one model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from gateway.clock import ManualClock
from gateway.config import settings_from_mapping
from gateway.translate import Ids, SequentialIds
from gateway.upstream import Router, build_upstreams
from gateway.upstream.call import OpenedStream, open_stream
from gateway.upstream.failover import Attempt, AttemptRecord

RECORDED = Path(__file__).parent / "recorded"
BASE = "http://upstream.test/v1"
KINDS = {"chat": "openai", "responses": "openai", "anthropic": "anthropic"}


def recorded(name: str) -> bytes:
    return (RECORDED / name).read_bytes()


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.MockRouter(assert_all_called=False) as mock:
        yield mock


def attempt_on(api: str, mock: respx.MockRouter, clock: ManualClock) -> Attempt:
    settings = settings_from_mapping(
        {
            "providers": [{"name": "p", "kind": KINDS[api], "base_url": BASE, "api_key": "sk-upstream"}],
            "models": [{"name": "m", "provider": "p", "upstream_model": "upstream-model", "api": api}],
        },
        source="<test>",
    )
    upstreams = build_upstreams(settings, clock, {"p": httpx.MockTransport(mock.async_handler)})
    [deployment] = Router(settings, upstreams).plan("m")
    record = AttemptRecord(provider="p", deployment=0, upstream_model="upstream-model", number=1)
    return Attempt(deployment, upstreams["p"], 1, record)


def sse(body: bytes) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)


async def opened(attempt: Attempt, request: httpx.Request, roles: Any, clock: ManualClock) -> OpenedStream:
    return await open_stream(attempt, request, roles, clock)


class Turn:
    """A Responses request in flight, as the Responses feature hands it to a dialect."""

    def __init__(self, data: dict[str, Any], *, parent_upstream_id: str | None = None) -> None:
        self.data = data
        self.response_id = "resp_gateway"
        self.created_at = 1756300000
        self.previous_response_id = data.get("previous_response_id")
        self.parent_upstream_id = parent_upstream_id
        self.store = True
        self.upstream_store = True
        self.anthropic_max_tokens = 1024
        self.ids: Ids = SequentialIds()
        self.history: list[dict[str, Any]] = []

    async def replay_input(self, *, for_responses: bool) -> list[dict[str, Any]]:
        new = [{"type": "message", "role": "user", "content": self.data["input"]}]
        return [*self.history, *new]

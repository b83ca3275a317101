"""A follow-up sent the moment its parent completed always finds it: the record is written
before the client can see the end, streamed or not."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from fake_providers.testing import FakeProviders
from tests.conftest import GatewayFactory
from tests.integration.responses.support import CHAT_PATH, RESPONSES_PATH, responses_config, user

CHAINS = 20
TURNS = 3


async def _turn(client: Any, model: str, text: str, previous: str | None, stream: bool) -> Any:
    kwargs: dict[str, Any] = {"model": model, "input": text}
    if previous is not None:
        kwargs["previous_response_id"] = previous
    if not stream:
        return await client.responses.create(**kwargs)
    async with client.responses.stream(**kwargs) as events:
        async for _ in events:
            pass
        return await events.get_final_response()


async def _chain(client: Any, model: str, number: int) -> list[Any]:
    responses: list[Any] = []
    previous = None
    for turn in range(TURNS):
        response = await _turn(
            client, model, f"chain {number} turn {turn}", previous, stream=(number + turn) % 2 == 0
        )
        responses.append(response)
        previous = response.id
    return responses


@pytest.mark.asyncio
async def test_concurrent_chains_always_see_their_parents(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = await asyncio.to_thread(gateway_factory, responses_config(fake, redis_url))
    client = gw.async_openai()
    try:
        chains = await asyncio.gather(*(_chain(client, "chat-model", n) for n in range(CHAINS)))
    finally:
        await client.close()

    for number, responses in enumerate(chains):
        assert [r.output_text for r in responses] == [
            f"You said: chain {number} turn {t}" for t in range(TURNS)
        ]
        assert [r.previous_response_id for r in responses] == [None, responses[0].id, responses[1].id]

    sent = await asyncio.to_thread(fake.requests, CHAT_PATH)
    assert len(sent) == CHAINS * TURNS
    last_turns = {
        entry.body["messages"][-1]["content"]: entry.body["messages"]
        for entry in sent
        if entry.body["messages"][-1]["content"].endswith(f"turn {TURNS - 1}")
    }
    assert len(last_turns) == CHAINS
    for number in range(CHAINS):
        assert last_turns[f"chain {number} turn 2"] == [
            user(f"chain {number} turn 0"),
            {"role": "assistant", "content": f"You said: chain {number} turn 0"},
            user(f"chain {number} turn 1"),
            {"role": "assistant", "content": f"You said: chain {number} turn 1"},
            user(f"chain {number} turn 2"),
        ]


@pytest.mark.asyncio
async def test_concurrent_native_chains_chain_on_the_upstream(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = await asyncio.to_thread(gateway_factory, responses_config(fake, redis_url))
    client = gw.async_openai()
    try:
        chains = await asyncio.gather(*(_chain(client, "resp-model", n) for n in range(CHAINS)))
    finally:
        await client.close()

    for number, responses in enumerate(chains):
        assert [r.output_text for r in responses] == [
            f"You said: chain {number} turn {t}" for t in range(TURNS)
        ]
    sent = [entry.body for entry in await asyncio.to_thread(fake.requests, RESPONSES_PATH)]
    assert len(sent) == CHAINS * TURNS  # no replay was ever needed
    follow_ups = [body for body in sent if "previous_response_id" in body]
    assert len(follow_ups) == CHAINS * (TURNS - 1)
    assert all(isinstance(body["input"], str) for body in follow_ups)  # only the new input

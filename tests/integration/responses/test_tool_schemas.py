"""Tool schemas of Responses requests are repaired for the upstream they reach, whichever API it
speaks: a schema the provider would refuse (``required: null``...) never gets there as it came."""

from __future__ import annotations

from typing import Any

import pytest

from fake_providers.testing import FakeProviders
from gateway.schema_fix import Target, repair_schema
from tests.conftest import GatewayFactory, RunningGateway
from tests.integration.responses.support import CHAT_PATH, RESPONSES_PATH, post, responses_config

BROKEN: dict[str, Any] = {"type": "object", "properties": {"q": {"type": "string"}}, "required": None}
VALID: dict[str, Any] = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}


def tool(parameters: dict[str, Any], *, strict: bool) -> dict[str, Any]:
    return {
        "type": "function",
        "name": "lookup",
        "description": "Look up",
        "parameters": parameters,
        "strict": strict,
    }


@pytest.fixture
def gw(gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str) -> RunningGateway:
    return gateway_factory(responses_config(fake, redis_url))


@pytest.mark.parametrize("strict", [False, True], ids=["plain", "strict"])
def test_broken_schemas_reach_a_chat_upstream_repaired(
    gw: RunningGateway, fake: FakeProviders, strict: bool
) -> None:
    answer = post(
        gw,
        {
            "model": "chat-model",
            "input": "Use the tool",
            "tools": [tool(BROKEN, strict=strict)],
            "tool_choice": {"type": "function", "name": "lookup"},
        },
    )
    assert answer.status_code == 200, answer.text  # the fake's validator accepted it
    assert answer.json()["output"][0]["type"] == "function_call"
    assert answer.json()["tools"] == [tool(BROKEN, strict=strict)]  # the client's own tools, echoed
    sent = fake.requests(path=CHAT_PATH)[-1].body["tools"][0]["function"]
    assert (
        sent["parameters"] == repair_schema(BROKEN, Target.OPENAI_STRICT if strict else Target.OPENAI).schema
    )


def test_broken_schemas_reach_a_responses_upstream_repaired(gw: RunningGateway, fake: FakeProviders) -> None:
    answer = post(
        gw,
        {
            "model": "resp-model",
            "input": "Hi",
            "tools": [tool(BROKEN, strict=True), tool(VALID, strict=False)],
        },
    )
    assert answer.status_code == 200, answer.text  # the fake's validator accepted it
    [sent] = [entry.body["tools"] for entry in fake.requests(path=RESPONSES_PATH)]
    assert sent[0]["parameters"] == repair_schema(BROKEN, Target.OPENAI_STRICT).schema
    assert sent[1] == tool(VALID, strict=False)  # valid tools travel untouched

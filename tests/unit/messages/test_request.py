"""A Messages request is checked in Anthropic's words before anything is spent on it."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from gateway.errors.client import InvalidRequest
from gateway.messages.request import parse_messages_request

USE = {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}
RESULT = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}


def parse(**fields: Any) -> Any:
    body = {"model": "claude", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}], **fields}
    body = {k: v for k, v in body.items() if v is not DROP}
    return parse_messages_request(msgspec.json.encode(body))


DROP = object()


def refusal(**fields: Any) -> str:
    with pytest.raises(InvalidRequest) as caught:
        parse(**fields)
    assert caught.value.status_code == 400
    return caught.value.message


def test_a_good_request() -> None:
    request = parse(stream=True, system=[{"type": "text", "text": "s"}])
    assert (request.model, request.stream, request.max_tokens) == ("claude", True, 16)


def test_not_json() -> None:
    with pytest.raises(InvalidRequest, match="error parsing the body"):
        parse_messages_request(b'{"model": ')
    with pytest.raises(InvalidRequest, match="error parsing the body"):
        parse_messages_request(b"[1]")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"model": DROP}, "model: Field required"),
        ({"model": 3}, "model: Input should be a valid string"),
        ({"max_tokens": DROP}, "max_tokens: Field required"),
        ({"max_tokens": "5"}, "max_tokens: Input should be a valid integer"),
        ({"max_tokens": 0}, "max_tokens: Input should be greater than or equal to 1"),
        ({"stream": "yes"}, "stream: Input should be a valid boolean"),
        ({"messages": DROP}, "messages: Field required"),
        ({"messages": {}}, "messages: Input should be a valid list"),
        ({"messages": []}, "messages: at least one message is required"),
        ({"messages": [{"role": "bot", "content": "x"}]}, "messages.0.role: Input should be"),
        ({"messages": [{"role": "user"}]}, "messages.0.content: Field required"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages.0.content: Input should be"),
        (
            {"messages": [{"role": "user", "content": [{"text": "x"}]}]},
            "messages.0.content.0: Input should be",
        ),
        ({"messages": [{"role": "user", "content": [USE]}]}, "only allowed in assistant messages"),
        (
            {"messages": [{"role": "assistant", "content": [{**USE, "input": "x"}]}]},
            "messages.0.content.0.tool_use.input: Input should be a valid dictionary",
        ),
        (
            {"messages": [{"role": "user", "content": [RESULT]}]},
            "messages.0.content.0: unexpected `tool_use_id` found in `tool_result` blocks: toolu_1",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "go"},
                    {"role": "assistant", "content": [USE]},
                    {"role": "user", "content": "what?"},
                ]
            },
            "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_1",
        ),
        ({"system": 5}, "system: Input should be"),
        ({"temperature": "hot"}, "temperature: Input should be a valid number"),
        ({"top_k": 1.5}, "top_k: Input should be a valid integer"),
        ({"stop_sequences": [1]}, "stop_sequences: Input should be"),
        ({"metadata": []}, "metadata: Input should be a valid dictionary"),
        ({"tools": [{"input_schema": {}}]}, "tools.0.name: Field required"),
        ({"tool_choice": {"type": "some"}}, "tool_choice: Input tag does not match"),
        ({"tool_choice": {"type": "tool"}}, "tool_choice.tool.name: Field required"),
    ],
)
def test_refusals(fields: dict[str, Any], message: str) -> None:
    assert message in refusal(**fields)


def test_a_tool_round_trip_and_a_system_message_between_turns_pass() -> None:
    parse(
        messages=[
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": [{"type": "text", "text": "calling"}, USE]},
            {"role": "user", "content": [RESULT, {"type": "text", "text": "and?"}]},
            {"role": "system", "content": "be brief"},
            {"role": "assistant", "content": [USE]},
        ]
    )


@pytest.mark.parametrize(
    "fields", [{"messages": [{"role": ["user"], "content": "x"}]}, {"tool_choice": {"type": ["auto"]}}]
)
def test_values_of_the_wrong_kind_are_400s_not_crashes(fields: dict[str, Any]) -> None:
    refusal(**fields)

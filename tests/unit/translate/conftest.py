"""Helpers for the translation tests: SDK validators that force full (not lazy) validation."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pytest
from anthropic.types.message_create_params import (
    MessageCreateParamsNonStreaming,
    MessageCreateParamsStreaming,
)
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.chat.completion_create_params import (
    CompletionCreateParamsNonStreaming,
    CompletionCreateParamsStreaming,
)
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from gateway.translate import SequentialIds

_EVENT = TypeAdapter(ResponseStreamEvent)
_CHAT_REQUEST = TypeAdapter(CompletionCreateParamsNonStreaming)
_CHAT_STREAM_REQUEST = TypeAdapter(CompletionCreateParamsStreaming)
_ANTHROPIC_REQUEST = TypeAdapter(MessageCreateParamsNonStreaming)
_ANTHROPIC_STREAM_REQUEST = TypeAdapter(MessageCreateParamsStreaming)


def _consume(value: Any) -> Any:
    """TypedDict validation of Iterable fields is lazy; walk everything so errors surface."""
    if isinstance(value, Mapping):
        return {k: _consume(v) for k, v in value.items()}
    if isinstance(value, (str, bytes)):
        return value
    if isinstance(value, Iterable):
        return [_consume(v) for v in value]
    return value


def check_response(obj: Mapping[str, Any]) -> Response:
    return Response.model_validate(obj)


def check_events(events: list[dict[str, Any]]) -> None:
    for event in events:
        parsed = _EVENT.validate_python(event)
        assert parsed.type == event["type"]
        if "response" in event:
            Response.model_validate(event["response"])
    numbers = [e["sequence_number"] for e in events]
    if numbers:
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))


def check_chat_request(body: Mapping[str, Any]) -> None:
    adapter = _CHAT_STREAM_REQUEST if body.get("stream") else _CHAT_REQUEST
    _consume(adapter.validate_python(body))


def check_anthropic_request(body: Mapping[str, Any]) -> None:
    adapter = _ANTHROPIC_STREAM_REQUEST if body.get("stream") else _ANTHROPIC_REQUEST
    _consume(adapter.validate_python(body))


def check_completion(obj: Mapping[str, Any]) -> ChatCompletion:
    return ChatCompletion.model_validate(obj)


def check_chunks(chunks: list[dict[str, Any]]) -> None:
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk)


class Sdk:
    """The official SDKs' types, as validators (test files cannot import conftest by name)."""

    response = staticmethod(check_response)
    events = staticmethod(check_events)
    chat_request = staticmethod(check_chat_request)
    anthropic_request = staticmethod(check_anthropic_request)
    completion = staticmethod(check_completion)
    chunks = staticmethod(check_chunks)


@pytest.fixture
def sdk() -> Sdk:
    return Sdk()


@pytest.fixture
def ids() -> SequentialIds:
    return SequentialIds()

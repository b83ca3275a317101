"""Decoding and checking a Chat Completions request: only what routing needs.

The body is decoded once into plain Python objects (msgspec, C speed); fields the gateway does
not know are kept as they are and reach the upstream untouched.
"""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.errors.client import InvalidRequest
from gateway.exchange.body import (
    decode_json_object,
    invalid_type,
    missing,
    optional_bool,
    optional_object,
    required,
    required_model,
)


class ChatRequest(msgspec.Struct):
    data: dict[str, Any]
    model: str
    stream: bool
    include_usage: bool


def parse_chat_request(body: bytes) -> ChatRequest:
    data = decode_json_object(body)
    model = required_model(data)
    messages = required(data, "messages", list, "an array of objects")
    if not messages:
        raise InvalidRequest(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array "
            "instead.",
            param="messages",
            code="empty_array",
        )
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise invalid_type(f"messages[{i}]", "an object", message)
        if "role" not in message:
            raise missing(f"messages[{i}].role")
    # Checked before any upstream call: a truthy non-boolean read as "stream" by one upstream
    # dialect and as "no stream" by another would be billed and then answered as a 502.
    stream = optional_bool(data, "stream", False)
    options = optional_object(data, "stream_options")
    include_usage = stream and options is not None and options.get("include_usage") is True
    return ChatRequest(data=data, model=model, stream=stream, include_usage=include_usage)

"""Decoding and checking a ``POST /v1/responses`` body: only what the gateway needs.

The body is decoded once; fields the gateway does not interpret stay as they are and reach a
Responses upstream untouched.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from gateway.errors.client import InvalidRequest
from gateway.exchange.body import decode_json_object, invalid_type, missing
from gateway.responses import errors
from gateway.responses.items import Item, normalize_input

_ID = re.compile(r"[A-Za-z0-9_-]+")


class ResponsesRequest(msgspec.Struct):
    data: dict[str, Any]
    model: str
    stream: bool
    store: bool
    previous_response_id: str | None
    items: list[Item]  # the turn's input, normalised (no ids added)


def _bool(data: dict[str, Any], name: str, default: bool) -> bool:
    value = data.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise invalid_type(name, "a boolean", value)
    return value


def parse_responses_request(body: bytes) -> ResponsesRequest:
    data = decode_json_object(body)
    model = data.get("model")
    if model is None:
        raise missing("model")
    if not isinstance(model, str) or not model:
        raise invalid_type("model", "a string", model)
    value = data.get("input")
    if value is not None and not isinstance(value, str | list):
        raise invalid_type("input", "a string or an array of input items", value)
    if isinstance(value, list):
        for index, item in enumerate(value):
            if not isinstance(item, dict):
                raise invalid_type(f"input[{index}]", "an object", item)
    previous = data.get("previous_response_id")
    if previous is not None:
        if not isinstance(previous, str):
            raise invalid_type("previous_response_id", "a string", previous)
        if not _ID.fullmatch(previous):
            raise InvalidRequest(
                f"Invalid 'previous_response_id': '{previous}'. Expected an ID that contains letters, "
                "numbers, underscores, or dashes, but this value contained additional characters.",
                param="previous_response_id",
                code="invalid_value",
            )
    if data.get("conversation") is not None:
        if previous is not None:
            raise errors.conversation_with_previous_response()
        raise errors.conversation_unsupported()
    if _bool(data, "background", False):
        raise errors.background_unsupported()
    instructions = data.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise invalid_type("instructions", "a string", instructions)
    return ResponsesRequest(
        data=data,
        model=model,
        stream=_bool(data, "stream", False),
        store=_bool(data, "store", True),
        previous_response_id=previous,
        items=normalize_input(value),
    )

"""Request bodies every endpoint decodes the same way: one JSON object, OpenAI's wording for
what is missing or of the wrong type."""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.errors.client import InvalidRequest

_DECODER = msgspec.json.Decoder()

INVALID_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
    "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"
)


def decode_json_object(body: bytes) -> dict[str, Any]:
    try:
        data = _DECODER.decode(body)
    except msgspec.DecodeError:
        raise InvalidRequest(INVALID_JSON) from None
    if not isinstance(data, dict):
        raise InvalidRequest(INVALID_JSON)
    return data


def missing(param: str) -> InvalidRequest:
    return InvalidRequest(
        f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
    )


def _type_name(value: object) -> str:
    return {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "a boolean",
        dict: "an object",
        list: "an array",
        type(None): "null",
    }.get(type(value), "a value")


def invalid_type(param: str, expected: str, value: object) -> InvalidRequest:
    return InvalidRequest(
        f"Invalid type for '{param}': expected {expected}, but got {_type_name(value)} instead.",
        param=param,
        code="invalid_type",
    )

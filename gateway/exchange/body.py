"""Request bodies every endpoint decodes the same way: one JSON object, OpenAI's wording for
what is missing or of the wrong type.

Every malformed body is a 400, never a 500: text that is not JSON, JSON that is not an object,
integers beyond 64 bits and arrays or objects nested deeper than the decoder follows.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from gateway.errors.client import InvalidRequest
from gateway.errors.decoding import MALFORMED_JSON

T = TypeVar("T")
_DECODER = msgspec.json.Decoder()

INVALID_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
    "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"
)


def decode_json_object(body: bytes) -> dict[str, Any]:
    try:
        data = _DECODER.decode(body)
    except MALFORMED_JSON:
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


def optional(data: dict[str, Any], name: str, kind: type[T], expected: str) -> T | None:
    """``data[name]`` if it is a ``kind``, None if absent or null; a 400 ``invalid_type`` naming
    ``expected`` otherwise."""
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, kind):
        raise invalid_type(name, expected, value)
    return value


def required(data: dict[str, Any], name: str, kind: type[T], expected: str) -> T:
    """``data[name]``, a ``kind``: a 400 ``missing_required_parameter`` when absent or null,
    ``invalid_type`` naming ``expected`` otherwise."""
    value = optional(data, name, kind, expected)
    if value is None:
        raise missing(name)
    return value


def required_model(data: dict[str, Any]) -> str:
    """``data["model"]``, a non-empty string (an empty one is an ``invalid_type`` too)."""
    model = required(data, "model", str, "a string")
    if not model:
        raise invalid_type("model", "a string", model)
    return model


def optional_bool(data: dict[str, Any], name: str, default: bool) -> bool:
    """``data[name]`` if it is a boolean, ``default`` if absent or null; a 400 ``invalid_type``
    otherwise (``"stream": 1`` is refused, as OpenAI does, rather than read as true)."""
    value = optional(data, name, bool, "a boolean")
    return default if value is None else value


def optional_object(data: dict[str, Any], name: str) -> dict[str, Any] | None:
    """``data[name]`` if it is an object, None if absent or null; a 400 ``invalid_type`` otherwise."""
    return optional(data, name, dict, "an object")


def parse_count(raw: str, *, max_digits: int = 18) -> int | None:
    """A non-negative decimal integer written in ASCII digits (at most ``max_digits`` of
    them, so it fits 64 bits); None for anything else (``"²"``, ``"-1"``, ``"1e3"``, 5,000
    digits). ``str.isdigit`` alone accepts digits ``int`` refuses."""
    if not raw or len(raw) > max_digits or not raw.isascii() or not raw.isdigit():
        return None
    return int(raw)

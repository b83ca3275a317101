"""OpenAI's error envelope and the exact error bodies the fakes send."""

from __future__ import annotations

import re
from typing import Any

import msgspec

_ENCODER = msgspec.json.Encoder()

KEYS_URL = "https://platform.openai.com/account/api-keys"

MISSING_KEY_MESSAGE = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header using "
    "Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if "
    "you're accessing the API from your browser and are prompted for a username and password. You can "
    f"obtain an API key from {KEYS_URL}."
)

UNPARSEABLE_BODY_MESSAGE = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
    "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. "
    "If you have trouble figuring out how to fix this, please contact us through our help center at "
    "help.openai.com.)"
)


class ErrorDetail(msgspec.Struct):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorEnvelope(msgspec.Struct):
    error: ErrorDetail


class OpenAIError(Exception):
    """A request OpenAI would refuse; `status` defaults to 400 `invalid_request_error`."""

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        type: str = "invalid_request_error",
        status: int = 400,
    ) -> None:
        super().__init__(message)
        self.detail = ErrorDetail(message=message, type=type, param=param, code=code)
        self.status = status


def encode_error(detail: ErrorDetail) -> bytes:
    return _ENCODER.encode(ErrorEnvelope(error=detail))


def json_type(value: Any) -> str:
    """How OpenAI names a JSON value's type in its messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def invalid_type(param: str, expected: str, value: Any) -> OpenAIError:
    return OpenAIError(
        f"Invalid type for '{param}': expected {expected}, but got {json_type(value)} instead.",
        param=param,
        code="invalid_type",
    )


def missing_parameter(param: str) -> OpenAIError:
    return OpenAIError(
        f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
    )


MAX_TOOL_NAME = 64
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]+$")


def check_tool_name(name: Any, where: str) -> str:
    """A function tool's name as OpenAI checks it (Chat's ``function.name``, Responses' ``name``)."""
    if name is None:
        raise missing_parameter(where)
    if not isinstance(name, str):
        raise invalid_type(where, "a string", name)
    if len(name) > MAX_TOOL_NAME:
        raise OpenAIError(
            f"Invalid '{where}': string too long. Expected a string with maximum length {MAX_TOOL_NAME}, "
            f"but got a string with length {len(name)} instead.",
            param=where,
            code="string_above_max_length",
        )
    if not _TOOL_NAME.match(name):
        raise OpenAIError(
            f"Invalid '{where}': string does not match pattern. Expected a string that matches the pattern "
            "'^[a-zA-Z0-9_-]+$'.",
            param=where,
            code="invalid_value",
        )
    return name


def invalid_value(param: str, value: str, supported: tuple[str, ...]) -> OpenAIError:
    listed = ", ".join(f"'{entry}'" for entry in supported[:-1]) + f", and '{supported[-1]}'"
    return OpenAIError(
        f"Invalid value: '{value}'. Supported values are: {listed}.", param=param, code="invalid_value"
    )


def mask_key(key: str | None) -> str:
    """`sk-abcdefgh…wxyz` shown as OpenAI does: the start, stars, the last four characters."""
    if not key:
        return ""
    if len(key) <= 8:
        return key[:2] + "*" * (len(key) - 2)
    return key[:7] + "*" * max(len(key) - 11, 1) + key[-4:]

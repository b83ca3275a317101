"""Decoding and checking an embeddings request, and cutting its input into upstream batches.

``input`` is a string, an array of strings, an array of token ids (one input) or an array of
token-id arrays; ``encoding_format`` is ``float`` (the default) or ``base64``; ``dimensions``
a positive integer. Other fields (``user``, ...) reach the upstream untouched.
"""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.errors.client import InvalidRequest
from gateway.exchange.body import decode_json_object, missing, required_model

ENCODINGS = ("float", "base64")


class EmbeddingsRequest(msgspec.Struct):
    data: dict[str, Any]
    model: str
    inputs: list[Any]  # one entry per input: a string or a token-id list
    single: bool  # ``input`` was one input (a string or one token-id list), not an array of them
    encoding: str  # what the client gets: "float" or "base64"


def _invalid_input() -> InvalidRequest:
    return InvalidRequest(
        "'$.input' is invalid. Expected a string, an array of strings, an array of integers (tokens) or "
        "an array of arrays of integers, none of them empty.",
        param="input",
        code="invalid_value",
    )


def _tokens(value: list[Any]) -> bool:
    return all(isinstance(t, int) and not isinstance(t, bool) for t in value)


def _inputs(value: object) -> tuple[list[Any], bool]:
    if isinstance(value, str):
        if not value:
            raise _invalid_input()
        return [value], True
    if not isinstance(value, list) or not value:
        raise _invalid_input()
    if all(isinstance(item, str) and item for item in value):
        return value, False
    if _tokens(value):
        return [value], True
    if all(isinstance(item, list) and item and _tokens(item) for item in value):
        return value, False
    raise _invalid_input()


def parse_embeddings_request(body: bytes) -> EmbeddingsRequest:
    data = decode_json_object(body)
    model = required_model(data)
    if "input" not in data:
        raise missing("input")
    inputs, single = _inputs(data["input"])
    encoding = data.get("encoding_format")
    if encoding is None:
        encoding = "float"
    elif encoding not in ENCODINGS:
        raise InvalidRequest(
            f"Invalid value: '{encoding}'. Supported values are: 'float' and 'base64'.",
            param="encoding_format",
            code="invalid_value",
        )
    dimensions = data.get("dimensions")
    if dimensions is not None and (
        not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1
    ):
        raise InvalidRequest(
            f"Invalid 'dimensions': expected a positive integer, but got {dimensions!r} instead.",
            param="dimensions",
            code="invalid_value",
        )
    return EmbeddingsRequest(data=data, model=model, inputs=inputs, single=single, encoding=encoding)


def batches(request: EmbeddingsRequest, limit: int) -> list[tuple[int, Any]]:
    """``(offset, input)`` of each upstream request: the client's ``input`` as it is when it fits
    in ``limit`` inputs, else slices of ``limit`` inputs."""
    if request.single or len(request.inputs) <= limit:
        return [(0, request.data["input"])]
    inputs = request.inputs
    return [(start, inputs[start : start + limit]) for start in range(0, len(inputs), limit)]

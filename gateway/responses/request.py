"""Decoding and checking a ``POST /v1/responses`` body: only what the gateway needs.

The body is decoded once; fields the gateway does not interpret stay as they are and reach a
Responses upstream untouched.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from gateway.errors.client import InvalidRequest
from gateway.exchange.body import (
    decode_json_object,
    invalid_type,
    optional,
    optional_bool,
    optional_object,
    required_model,
)
from gateway.responses import errors
from gateway.responses.compaction import for_upstream, has_compaction
from gateway.responses.items import Item, normalize_input

_ID = re.compile(r"[A-Za-z0-9_-]+")


class ResponsesRequest(msgspec.Struct):
    data: dict[str, Any]
    model: str
    stream: bool
    store: bool
    previous_response_id: str | None
    items: list[Item]  # the turn's input, normalised (no ids added)
    background: bool = False


MAX_METADATA_PAIRS = 16
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 512


def _check_metadata(data: dict[str, Any]) -> None:
    """``metadata``: at most 16 string values under keys of at most 64 characters, values of at
    most 512 (OpenAI's limits). Checked before any upstream call: the Response object echoes it."""
    metadata = optional_object(data, "metadata")
    if metadata is None:
        return
    if len(metadata) > MAX_METADATA_PAIRS:
        raise InvalidRequest(
            f"Invalid 'metadata': too many properties. Expected an object with at most "
            f"{MAX_METADATA_PAIRS} properties, but got an object with {len(metadata)} properties instead.",
            param="metadata",
            code="object_above_max_properties",
        )
    for key, value in metadata.items():
        if len(key) > MAX_METADATA_KEY:
            raise InvalidRequest(
                f"Invalid 'metadata': key too long. Expected a key with at most {MAX_METADATA_KEY} "
                f"characters, but got a key with {len(key)} characters instead.",
                param="metadata",
                code="invalid_value",
            )
        if not isinstance(value, str):
            raise invalid_type(f"metadata.{key}", "a string", value)
        if len(value) > MAX_METADATA_VALUE:
            raise InvalidRequest(
                f"Invalid 'metadata.{key}': string too long. Expected a string with maximum length "
                f"{MAX_METADATA_VALUE}, but got a string with length {len(value)} instead.",
                param=f"metadata.{key}",
                code="string_above_max_length",
            )


def parse_responses_request(body: bytes) -> ResponsesRequest:
    data = decode_json_object(body)
    get = data.get
    model = required_model(data)
    value = get("input")
    if isinstance(value, list):
        for index, item in enumerate(value):
            if not isinstance(item, dict):
                raise invalid_type(f"input[{index}]", "an object", item)
        if has_compaction(value):
            # The gateway's own compaction items become the summary they hold, for every upstream.
            value = for_upstream(value, responses=True)
            data["input"] = value
    elif value is not None and not isinstance(value, str):
        raise invalid_type("input", "a string or an array of input items", value)
    # A setting the request leaves out (most of them, most of the time) is looked up once.
    previous = get("previous_response_id")
    if previous is not None:
        previous = optional(data, "previous_response_id", str, "a string")
    if previous is not None and not _ID.fullmatch(previous):
        raise InvalidRequest(
            f"Invalid 'previous_response_id': '{previous}'. Expected an ID that contains letters, "
            "numbers, underscores, or dashes, but this value contained additional characters.",
            param="previous_response_id",
            code="invalid_value",
        )
    if get("conversation") is not None:
        if previous is not None:
            raise errors.conversation_with_previous_response()
        raise errors.conversation_unsupported()
    background = get("background") is not None and optional_bool(data, "background", False)
    if background and not optional_bool(data, "store", True):
        raise errors.background_unstored()
    if get("metadata") is not None:
        _check_metadata(data)
    # Read by the gateway to build the Response object: of the wrong type, refused before any
    # upstream call rather than failing once the answer is in.
    if get("service_tier") is not None:
        optional(data, "service_tier", str, "a string")
    if get("instructions") is not None:
        optional(data, "instructions", str, "a string")
    stream = get("stream") is not None and optional_bool(data, "stream", False)
    store = get("store") is None or optional_bool(data, "store", True)
    return ResponsesRequest(
        data=data,
        model=model,
        stream=stream,
        store=store,
        previous_response_id=previous,
        items=normalize_input(value),
        background=background,
    )

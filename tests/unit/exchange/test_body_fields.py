"""The field readers every request parser shares: one wording for a missing field and one for a
field of the wrong type, whichever route reads it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gateway.chat_completions.request import parse_chat_request
from gateway.embeddings.request import parse_embeddings_request
from gateway.errors.client import InvalidRequest
from gateway.exchange.body import optional, required, required_model
from gateway.responses.request import parse_responses_request

PARSERS = [parse_chat_request, parse_responses_request, parse_embeddings_request]


def _refusal(call: Callable[..., object], *args: object) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        call(*args)
    return caught.value


@pytest.mark.parametrize("parse", PARSERS)
@pytest.mark.parametrize("body", [b"{}", b'{"model": null}'])
def test_every_route_names_a_missing_model_alike(parse: Callable[[bytes], object], body: bytes) -> None:
    error = _refusal(parse, body)
    assert (error.message, error.param, error.code) == (
        "Missing required parameter: 'model'.",
        "model",
        "missing_required_parameter",
    )


@pytest.mark.parametrize("parse", PARSERS)
@pytest.mark.parametrize(("body", "got"), [(b'{"model": ""}', "a string"), (b'{"model": 4}', "an integer")])
def test_every_route_refuses_a_model_that_is_no_name(
    parse: Callable[[bytes], object], body: bytes, got: str
) -> None:
    error = _refusal(parse, body)
    assert error.message == f"Invalid type for 'model': expected a string, but got {got} instead."
    assert (error.param, error.code) == ("model", "invalid_type")


def test_required_and_optional_read_a_field_of_its_kind() -> None:
    data: dict[str, object] = {"model": "m", "messages": [], "n": None}
    assert required_model(data) == "m"
    assert required(data, "messages", list, "an array") == []
    assert optional(data, "n", int, "an integer") is None
    assert optional(data, "absent", int, "an integer") is None
    error = _refusal(optional, data, "model", int, "an integer")
    assert error.message == "Invalid type for 'model': expected an integer, but got a string instead."
    assert _refusal(required, data, "n", int, "an integer").code == "missing_required_parameter"

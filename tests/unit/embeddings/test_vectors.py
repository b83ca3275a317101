"""Embedding answers converted to the client's encoding, exactly; batches joined."""

from __future__ import annotations

import struct

import msgspec
import pytest

from gateway.embeddings import vectors
from gateway.embeddings.request import batches, parse_embeddings_request
from gateway.errors.client import InvalidRequest

FLOAT32 = [struct.unpack("<f", struct.pack("<f", v))[0] for v in (0.1, -0.25, 1e-7, 3.4e38, 0.0)]


def test_conversions_are_exact_both_ways() -> None:
    encoded = vectors.to_base64(FLOAT32)
    assert vectors.to_floats(encoded) == FLOAT32
    # A float32 printed as JSON and read back is the same number.
    assert msgspec.json.decode(msgspec.json.encode(vectors.to_floats(encoded))) == FLOAT32


def test_in_encoding_looks_at_the_vectors_only() -> None:
    floats = b'{"data":[{"embedding": [0.5, 1.0]}]}'
    strings = b'{"data":[{"embedding":"AAAAPw=="}]}'
    assert vectors.in_encoding(floats, "float") and not vectors.in_encoding(floats, "base64")
    assert vectors.in_encoding(strings, "base64") and not vectors.in_encoding(strings, "float")


def test_batches_are_joined_in_order_with_usage_summed() -> None:
    first = {
        "object": "list",
        "model": "m",
        "data": [{"index": 0, "embedding": [0.5]}, {"index": 1, "embedding": [1.0]}],
        "usage": {"prompt_tokens": 2, "total_tokens": 2},
    }
    second = {
        "object": "list",
        "model": "m",
        "data": [{"index": 0, "embedding": vectors.to_base64([2.0])}],
        "usage": {"prompt_tokens": 3, "total_tokens": 3},
    }
    joined = msgspec.json.decode(vectors.joined([(0, first), (2, second)], "float"))
    assert [(d["index"], d["embedding"]) for d in joined["data"]] == [(0, [0.5]), (1, [1.0]), (2, [2.0])]
    assert joined["usage"] == {"prompt_tokens": 5, "total_tokens": 5}
    as_base64 = msgspec.json.decode(vectors.joined([(0, first), (2, second)], "base64"))
    assert [vectors.to_floats(d["embedding"]) for d in as_base64["data"]] == [[0.5], [1.0], [2.0]]


def test_an_input_is_split_only_when_it_is_larger_than_the_limit() -> None:
    request = parse_embeddings_request(b'{"model": "m", "input": ["a", "b", "c"]}')
    assert batches(request, 3) == [(0, ["a", "b", "c"])]
    assert batches(request, 2) == [(0, ["a", "b"]), (2, ["c"])]
    tokens = parse_embeddings_request(b'{"model": "m", "input": [1, 2, 3]}')
    assert batches(tokens, 1) == [(0, [1, 2, 3])]  # one input: a token list is never cut


@pytest.mark.parametrize("value", ['""', "[]", '[""]', "[[]]", '[1, "a"]', "[true]", "7", "null"])
def test_invalid_inputs(value: str) -> None:
    with pytest.raises(InvalidRequest):
        parse_embeddings_request(b'{"model": "m", "input": ' + value.encode() + b"}")

"""Embedding answers in exactly the encoding the client asked for, and batches joined into one.

OpenAI's ``base64`` encoding is the vector's little-endian float32 bytes in base64; ``float`` is
a JSON array of numbers. Upstreams that ignore ``encoding_format`` answer floats to a base64
request (the official SDKs would then decode a float list as base64 and get garbage, or a quarter
of the vector) or base64 to a float request; the answer is converted here, vector by vector,
so the client gets what it asked for whatever the upstream did. Converting is exact: a float32
value read from base64 is printed as the shortest decimal that reads back to it, and a float
list from the upstream (float32 values) packs back to the same bytes.

An answer already in the asked encoding, from one upstream request, is passed on as it is
(found with one regular-expression search, without decoding the vectors).
"""

from __future__ import annotations

import base64
import re
import struct
from collections.abc import Sequence
from typing import Any

import msgspec

from gateway.errors import AttemptFailed
from gateway.upstream.call import malformed_body

_FLOATS = re.compile(rb'"embedding"\s*:\s*\[')
_BASE64 = re.compile(rb'"embedding"\s*:\s*"')
_DECODER = msgspec.json.Decoder()
_ENCODER = msgspec.json.Encoder()


def in_encoding(body: bytes, encoding: str) -> bool:
    """Every vector of the answer is already in ``encoding``."""
    other = _BASE64 if encoding == "float" else _FLOATS
    return other.search(body) is None


def to_base64(vector: Sequence[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def to_floats(encoded: str) -> list[float]:
    raw = base64.b64decode(encoded)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw[: len(raw) - len(raw) % 4]))


def _converted(vector: object, encoding: str) -> object:
    if encoding == "base64" and isinstance(vector, list):
        return to_base64(vector)
    if encoding == "float" and isinstance(vector, str):
        return to_floats(vector)
    return vector


def decode_answer(body: bytes, provider: str) -> dict[str, Any]:
    """An upstream answer as an object with a ``data`` list (a malformed answer fails the attempt)."""
    try:
        answer = _DECODER.decode(body)
    except msgspec.DecodeError:
        raise AttemptFailed(malformed_body(provider)) from None
    if not isinstance(answer, dict) or not isinstance(answer.get("data"), list):
        raise AttemptFailed(malformed_body(provider))
    return answer


def joined(parts: Sequence[tuple[int, dict[str, Any]]], encoding: str) -> bytes:
    """The upstream answers of one request's batches (``(offset, answer)`` in order) as one
    answer: vectors in ``encoding``, indexes counted from the first input, usage summed."""
    data: list[dict[str, Any]] = []
    prompt = total = 0
    counted = False
    for offset, answer in parts:
        for item in answer["data"]:
            if not isinstance(item, dict):
                continue
            entry = dict(item)
            entry["index"] = offset + int(item.get("index") or 0)
            entry["embedding"] = _converted(item.get("embedding"), encoding)
            data.append(entry)
        usage = answer.get("usage")
        if isinstance(usage, dict):
            counted = True
            prompt += int(usage.get("prompt_tokens") or 0)
            total += int(usage.get("total_tokens") or usage.get("prompt_tokens") or 0)
    data.sort(key=lambda entry: int(entry["index"]))
    first = parts[0][1]
    out: dict[str, Any] = {"object": first.get("object", "list"), "data": data, "model": first.get("model")}
    if counted:
        out["usage"] = {"prompt_tokens": prompt, "total_tokens": total}
    return _ENCODER.encode(out)

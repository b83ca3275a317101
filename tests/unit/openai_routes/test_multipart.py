"""Multipart bodies read and rewritten in place."""

from __future__ import annotations

import httpx
import pytest

from gateway.errors.client import InvalidRequest
from gateway.openai_routes import multipart
from gateway.openai_routes.requests import parse_multipart
from gateway.upstream.http11_transport import BodyPieces


def encoded(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    request = httpx.Request("POST", "http://x", data=fields, files=files)
    return request.read(), request.headers["content-type"]


def sent(body: bytes | BodyPieces) -> bytes:
    return body if isinstance(body, bytes) else b"".join(bytes(p) for p in body.pieces)


def test_scan_finds_fields_and_files_without_reading_the_file() -> None:
    audio = b"--not-a-boundary\r\n" + bytes(range(256)) * 4
    body, content_type = encoded({"model": "whisper", "language": "en"}, {"file": ("a.wav", audio)})
    parts = multipart.scan(body, multipart.boundary_of(content_type))
    assert [(p.name, p.filename) for p in parts] == [("model", None), ("language", None), ("file", "a.wav")]
    assert multipart.field(body, parts, "model") == "whisper"
    file = multipart.find(parts, "file")
    assert file is not None and body[file.start : file.end] == audio


def test_the_model_is_swapped_in_place_and_added_when_absent() -> None:
    body, content_type = encoded({"model": "public", "prompt": "p"}, {"image": ("x.png", b"PNG")})
    request = parse_multipart(body, content_type, default_model=None, streams=False)
    assert request.model == "public"
    swapped = request.body_for("upstream-name")
    assert isinstance(swapped, BodyPieces)
    assert sent(swapped) == body.replace(b"\r\n\r\npublic\r\n", b"\r\n\r\nupstream-name\r\n")
    assert swapped.size == len(sent(swapped))
    # Around the new value, the pieces are views of the body as received (never copies).
    assert [p.obj is body for p in swapped.pieces if isinstance(p, memoryview)] == [True, True]
    assert request.body_for("public") is body  # nothing to change: the client's bytes as they are

    bare, content_type = encoded({"prompt": "p"}, {"image": ("x.png", b"PNG")})
    defaulted = parse_multipart(bare, content_type, default_model="dall-e-2", streams=False)
    added = sent(defaulted.body_for("dall-e-2"))
    parts = multipart.scan(added, multipart.boundary_of(content_type))
    assert multipart.field(added, parts, "model") == "dall-e-2"
    assert multipart.field(added, parts, "prompt") == "p"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"x", "application/json"),
        (b"x", "multipart/form-data"),
        (b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\nno end', "multipart/form-data; boundary=b"),
    ],
)
def test_bodies_that_are_not_multipart_are_400s(body: bytes, content_type: str) -> None:
    with pytest.raises(InvalidRequest):
        parse_multipart(body, content_type, default_model="m", streams=False)


def test_stream_is_read_from_a_field_and_refused_where_the_route_does_not_stream() -> None:
    body, content_type = encoded({"model": "m", "stream": "true"}, {"file": ("a.wav", b"x")})
    assert parse_multipart(body, content_type, default_model=None, streams=True).stream is True
    with pytest.raises(InvalidRequest):
        parse_multipart(body, content_type, default_model=None, streams=False)

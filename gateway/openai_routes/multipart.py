"""Reading and rewriting ``multipart/form-data`` bodies in place (uploads to images, audio and
files).

The body is held once, as received; :func:`scan` finds each part's name, file name and the span
of its value without copying anything (a file part's bytes are never looked at, only searched for
the next boundary, at C speed). :func:`replace` gives the body with one field's value changed
as a list of pieces: the untouched stretches are ``memoryview`` slices of the original.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

from gateway.errors.client import InvalidRequest

_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_NAME = re.compile(rb'[\s;]name="([^"]*)"', re.IGNORECASE)
_FILENAME = re.compile(rb'filename="([^"]*)"', re.IGNORECASE)
_TYPE = re.compile(rb"^content-type:\s*([^\r\n]+)", re.IGNORECASE | re.MULTILINE)

Piece = bytes | memoryview


class Part(NamedTuple):
    name: str
    filename: str | None
    content_type: str | None
    start: int  # of the value in the body
    end: int


def boundary_of(content_type: str | None) -> bytes:
    """The boundary of a multipart content type; a 400 for anything else."""
    if content_type is None or not content_type.lower().startswith("multipart/form-data"):
        raise InvalidRequest(
            "This route expects a multipart/form-data body (Content-Type: multipart/form-data; boundary=...).",
            code="invalid_content_type",
        )
    found = _BOUNDARY.search(content_type)
    if found is None:
        raise InvalidRequest("The multipart/form-data body has no boundary.", code="invalid_content_type")
    return found.group(1).encode("latin-1")


def _malformed() -> InvalidRequest:
    return InvalidRequest("The multipart/form-data body could not be parsed.", code="invalid_multipart")


def scan(body: bytes, boundary: bytes) -> list[Part]:
    """The parts of ``body``, in order."""
    delimiter = b"--" + boundary
    inner = b"\r\n" + delimiter
    position = body.find(delimiter)
    if position < 0:
        raise _malformed()
    parts: list[Part] = []
    position += len(delimiter)
    while True:
        if body.startswith(b"--", position):
            return parts  # the closing delimiter
        if not body.startswith(b"\r\n", position):
            raise _malformed()
        head_end = body.find(b"\r\n\r\n", position)
        if head_end < 0:
            raise _malformed()
        head = body[position + 2 : head_end]
        start = head_end + 4
        end = body.find(inner, start)
        if end < 0:
            raise _malformed()
        name = _NAME.search(b" " + head)
        if name is None:
            raise _malformed()
        filename = _FILENAME.search(head)
        kind = _TYPE.search(head)
        parts.append(
            Part(
                name=name.group(1).decode("utf-8", "replace"),
                filename=filename.group(1).decode("utf-8", "replace") if filename else None,
                content_type=kind.group(1).decode("latin-1").strip() if kind else None,
                start=start,
                end=end,
            )
        )
        position = end + len(inner)


def field(body: bytes, parts: Sequence[Part], name: str) -> str | None:
    """The text of the first field called ``name`` (not a file), or None."""
    for part in parts:
        if part.name == name and part.filename is None:
            return body[part.start : part.end].decode("utf-8", "replace")
    return None


def find(parts: Sequence[Part], name: str) -> Part | None:
    for part in parts:
        if part.name == name:
            return part
    return None


def replace(body: bytes, part: Part, value: bytes) -> list[Piece]:
    """``body`` with ``part``'s value replaced by ``value``; the rest is not copied."""
    view = memoryview(body)
    return [view[: part.start], value, view[part.end :]]


def prepend_field(body: bytes, content_type: str, name: str, value: bytes) -> list[Piece]:
    """``body`` with a text field added before its first part."""
    boundary = boundary_of(content_type)
    head = b"--" + boundary + b'\r\nContent-Disposition: form-data; name="' + name.encode() + b'"\r\n\r\n'
    return [head + value + b"\r\n", memoryview(body)[body.find(b"--" + boundary) :]]

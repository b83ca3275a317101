"""Server-sent events: an incremental decoder for upstream streams, and frame encoders.

The decoder is used before the stream is committed (to find the first meaningful event) and
wherever a translation needs events; a passthrough relay after commit moves raw bytes.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec


class SSEEvent(msgspec.Struct, frozen=True):
    event: str
    data: str


class SSEDecoder:
    """Feed bytes in any split; get whole events out. Comments (``: ping``) are dropped.

    The whole lines of a feed are decoded from UTF-8 at once (a newline byte is never part of
    a multi-byte character, so a line is never cut in the middle of one) and split as text."""

    __slots__ = ("_buf", "_data", "_event")

    def __init__(self) -> None:
        self._buf = b""
        self._event = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        buf = self._buf + chunk if self._buf else chunk
        end = buf.rfind(b"\n")
        if end < 0:
            self._buf = buf
            return []
        self._buf = buf[end + 1 :]
        return self._lines(buf[:end].decode("utf-8", "replace").split("\n"))

    def flush(self) -> list[SSEEvent]:
        """End of stream: a final event without its blank line still counts."""
        rest, self._buf = self._buf, b""
        lines = [rest.decode("utf-8", "replace")] if rest else []
        lines.append("")
        return self._lines(lines)

    def _lines(self, lines: list[str]) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        event = self._event
        data = self._data
        for line in lines:
            if line[-1:] == "\r":
                line = line[:-1]
            if not line:
                if data or event:
                    events.append(
                        SSEEvent(event or "message", data[0] if len(data) == 1 else "\n".join(data))
                    )
                    event = ""
                    data = []
                continue
            if line[:6] == "data: ":
                data.append(line[6:])
                continue
            if line[:7] == "event: ":
                event = line[7:]
                continue
            if line[0] == ":":
                continue
            name, sep, value = line.partition(":")
            if sep and value[:1] == " ":
                value = value[1:]
            if name == "data":
                data.append(value)
            elif name == "event":
                event = value
        self._event = event
        self._data = data
        return events


def data_frame(payload: bytes) -> bytes:
    return b"data: " + payload + b"\n\n"


def event_frame(event: str, payload: bytes) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + payload + b"\n\n"


DONE_FRAME = b"data: [DONE]\n\n"


def join_frames(frames: Iterable[bytes]) -> bytes:
    return b"".join(frames)

"""Responses events out of the SSE frames the relay sends: for the channels that deliver events
one by one (a WebSocket's messages, a background run's event stream) instead of as a body."""

from __future__ import annotations


class FrameSplitter:
    """SSE bytes in, each event's ``data`` out (multi-line data joined with ``\\n``; frames split
    across chunks are kept until complete)."""

    __slots__ = ("_rest",)

    def __init__(self) -> None:
        self._rest = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        buffer = self._rest + chunk if self._rest else chunk
        frames = buffer.split(b"\n\n")
        self._rest = frames.pop()
        out: list[bytes] = []
        for frame in frames:
            data = [line[5:].lstrip(b" ") for line in frame.split(b"\n") if line.startswith(b"data:")]
            if data and data != [b"[DONE]"]:
                out.append(b"\n".join(data))
        return out

"""The incremental SSE decoder: any split of the bytes gives the same events."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.upstream.sse import SSEDecoder, SSEEvent

STREAM = (
    b": keep-alive\n\n"
    b'event: response.created\ndata: {"a": 1}\n\n'
    b"data: line one\r\ndata: line two\r\n\r\n"
    b"data: [DONE]\n\n"
)
EXPECTED = [
    SSEEvent("response.created", '{"a": 1}'),
    SSEEvent("message", "line one\nline two"),
    SSEEvent("message", "[DONE]"),
]


def decode_in_pieces(data: bytes, cuts: list[int]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    start = 0
    for cut in sorted(cuts):
        events += decoder.feed(data[start:cut])
        start = cut
    events += decoder.feed(data[start:])
    return events + decoder.flush()


def test_whole_stream() -> None:
    assert decode_in_pieces(STREAM, []) == EXPECTED


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_any_split_gives_the_same_events(cuts: list[int]) -> None:
    assert decode_in_pieces(STREAM, cuts) == EXPECTED


def test_last_event_without_blank_line_is_flushed() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b'data: {"x": 1}') == []
    assert decoder.flush() == [SSEEvent("message", '{"x": 1}')]


def test_comments_alone_produce_nothing() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b": ping\n\n: ping\n\n") == []
    assert decoder.flush() == []


def reference_events(stream: bytes) -> list[SSEEvent]:
    """The SSE rules, one line at a time: what the decoder must give for a whole stream."""
    events: list[SSEEvent] = []
    event, data = "", []
    for raw in [*stream.split(b"\n"), b""]:
        line = raw.removesuffix(b"\r").decode("utf-8", "replace")
        if not line:
            if data or event:
                events.append(SSEEvent(event or "message", "\n".join(data)))
            event, data = "", []
        elif not line.startswith(":"):
            name, sep, value = line.partition(":")
            value = value.removeprefix(" ") if sep else value
            if name == "data":
                data.append(value)
            elif name == "event":
                event = value
    return events


LINES = st.sampled_from(
    [
        b"",
        b"\r",
        b'data: {"a": 1}',
        b'data:{"b":2}',
        b"data:  two spaces",
        b"data",
        b"data: ",
        b"event: response.output_text.delta",
        b"event:ping",
        b": comment",
        b":",
        b"id: 7",
        b"retry: 10",
        "data: caf\u00e9 \u2603 \U0001f600".encode(),
        b"data: \xff broken utf-8",
        b"data: x\r",
    ]
)


@given(st.lists(LINES, max_size=30), st.lists(st.integers(min_value=0, max_value=2000), max_size=8))
def test_any_stream_in_any_split_follows_the_rules(lines: list[bytes], cuts: list[int]) -> None:
    stream = b"\n".join(lines)
    assert decode_in_pieces(stream, [c for c in cuts if c <= len(stream)]) == reference_events(stream)

"""FrameSplitter: each SSE event's data out of chunks cut anywhere, the usual frames and any other
shape alike (checked against the frame-by-frame reading of the SSE rules the splitter keeps)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.responses.frames import FrameSplitter
from gateway.translate.responses_stream import encode_event


def by_the_rules(text: bytes) -> list[bytes]:
    """Each complete frame's data lines ("data:" and spaces stripped) joined by newlines;
    frames without data and ``[DONE]`` dropped."""
    frames = text.split(b"\n\n")[:-1]
    out = []
    for frame in frames:
        data = [line[5:].lstrip(b" ") for line in frame.split(b"\n") if line.startswith(b"data:")]
        if data and data != [b"[DONE]"]:
            out.append(b"\n".join(data))
    return out


def split(text: bytes, cuts: list[int]) -> list[bytes]:
    splitter = FrameSplitter()
    out: list[bytes] = []
    start = 0
    for cut in [*sorted(cuts), len(text)]:
        out += splitter.feed(text[start:cut])
        start = cut
    return out


EVENTS = [
    {"type": "response.created", "sequence_number": 0, "response": {"id": "resp_1", "output": []}},
    {"type": "response.output_text.delta", "sequence_number": 1, "delta": "data: \n\n not a frame"},
    {"type": "response.completed", "sequence_number": 2, "response": {"id": "resp_1"}},
]


def test_the_gateway_s_own_frames_in_one_chunk_or_cut_anywhere() -> None:
    text = b"".join(encode_event(event) for event in EVENTS) + b"data: [DONE]\n\n"
    expected = by_the_rules(text)
    assert len(expected) == 3 and expected[1].startswith(b'{"type":"response.output_text.delta"')
    assert split(text, []) == expected
    for cut in range(len(text)):
        assert split(text, [cut]) == expected


def test_other_shapes_frame_by_frame() -> None:
    text = (
        b": ping\n\nid: 7\nevent: x\ndata:  a\ndata: b\n\n\n\ndata: [DONE]\n\ndata:\n\nretry: 5\n\ndata: c\n"
    )
    assert split(text, []) == [b"a\nb", b""]  # the last frame is not complete
    assert split(text + b"\n", [10, 40]) == [b"a\nb", b"", b"c"]


PIECES = st.sampled_from(
    [
        b"event: ",
        b"event:x",
        b"data:",
        b"data: ",
        b"data:  ",
        b"id: 1",
        b": c",
        b"[DONE]",
        b"{}",
        b"a",
        b" ",
        b"\n",
        b"\n\n",
    ]
)


@given(st.lists(PIECES, max_size=40), st.lists(st.integers(min_value=0, max_value=400), max_size=6))
def test_any_text_cut_anywhere_gives_the_frames_data(pieces: list[bytes], cuts: list[int]) -> None:
    text = b"".join(pieces)
    assert split(text, [min(cut, len(text)) for cut in cuts]) == by_the_rules(text)

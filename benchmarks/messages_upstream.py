"""The bench upstream (:mod:`benchmarks.upstream`) with ``POST /v1/messages``: the same reply as
its Chat Completions route (8 text pieces, the same usage) as an Anthropic message, or, when the
request asks for ``"stream": true``, as Anthropic's event stream (message_start, one text block
with 8 text_delta events, message_delta, message_stop), each event its own chunk.
``python -m benchmarks.messages_upstream --port 0``."""

from __future__ import annotations

from benchmarks.upstream import (
    CONTENT_PIECES,
    USAGE,
    _chunked_stream,
    _fixed,
    _json,
    run_main,
    with_streaming_route,
)

CLAUDE_MODEL = "bench-claude"
_USAGE = {"input_tokens": USAGE["prompt_tokens"], "output_tokens": USAGE["completion_tokens"]}


def _message(content: list[object], stop_reason: str | None, output_tokens: int) -> dict[str, object]:
    return {
        "id": "msg_bench0001",
        "type": "message",
        "role": "assistant",
        "model": CLAUDE_MODEL,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {**_USAGE, "output_tokens": output_tokens},
    }


def _event(kind: str, payload: dict[str, object]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + _json({"type": kind, **payload}) + b"\n\n"


def _events() -> list[bytes]:
    events = [_event("message_start", {"message": _message([], None, 1)})]
    events.append(_event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}))
    events += [
        _event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": piece}})
        for piece in CONTENT_PIECES
    ]
    events.append(_event("content_block_stop", {"index": 0}))
    events.append(
        _event(
            "message_delta", {"delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": _USAGE}
        )
    )
    events.append(_event("message_stop", {}))
    return events


MESSAGE = _fixed(
    "200 OK",
    "application/json",
    _json(
        _message([{"type": "text", "text": "".join(CONTENT_PIECES)}], "end_turn", USAGE["completion_tokens"])
    ),
)
MESSAGE_STREAM = _chunked_stream(_events())


# The bench upstream with an Anthropic Messages route.
MessagesUpstream = with_streaming_route(b"/v1/messages", MESSAGE, MESSAGE_STREAM)


def main(argv: list[str] | None = None) -> None:
    run_main("The bench upstream with Anthropic Messages.", MessagesUpstream, 2048, argv)


if __name__ == "__main__":
    main()

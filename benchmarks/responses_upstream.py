"""The bench upstream (:mod:`benchmarks.upstream`) with ``POST /v1/responses``: the same reply as
its Chat Completions route (8 text pieces, the same usage) as an OpenAI Response object, or, when
the request asks for ``"stream": true``, as the Responses event stream (created, in_progress, the
message item and its text part added, 8 ``output_text.delta`` events, the text, part and item
done, completed), each event its own chunk. Both are encoded once, at import.
``python -m benchmarks.responses_upstream --port 0``."""

from __future__ import annotations

from typing import Any

from benchmarks import upstream

RESPONSES_MODEL = "bench-responses"  # the gateway's model whose deployment speaks Responses
RESPONSES_PATH = b"/v1/responses"
_ITEM_ID = "msg_bench0001"
_TEXT = "".join(upstream.CONTENT_PIECES)
_USAGE = {
    "input_tokens": upstream.USAGE["prompt_tokens"],
    "input_tokens_details": {"cached_tokens": 0},
    "output_tokens": upstream.USAGE["completion_tokens"],
    "output_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": upstream.USAGE["total_tokens"],
}


def _part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _item(done: bool) -> dict[str, Any]:
    return {
        "id": _ITEM_ID,
        "type": "message",
        "status": "completed" if done else "in_progress",
        "role": "assistant",
        "content": [_part(_TEXT)] if done else [],
    }


def _response(done: bool) -> dict[str, Any]:
    """The Response object as OpenAI sends it: in progress (no output yet) or completed."""
    return {
        "id": "resp_bench0001",
        "object": "response",
        "created_at": upstream.CREATED,
        "status": "completed" if done else "in_progress",
        "background": False,
        "completed_at": upstream.CREATED if done else None,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": 16,
        "max_tool_calls": None,
        "model": upstream.MODEL,
        "output": [_item(True)] if done else [],
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "prompt_cache_key": None,
        "reasoning": {"effort": None, "summary": None},
        "safety_identifier": None,
        "service_tier": "default",
        "store": False,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": [],
        "top_logprobs": 0,
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": _USAGE if done else None,
        "user": None,
        "metadata": {},
    }


def _events() -> list[bytes]:
    kinds_and_payloads: list[tuple[str, dict[str, Any]]] = [
        ("response.created", {"response": _response(False)}),
        ("response.in_progress", {"response": _response(False)}),
        ("response.output_item.added", {"output_index": 0, "item": _item(False)}),
    ]
    where = {"item_id": _ITEM_ID, "output_index": 0, "content_index": 0}
    kinds_and_payloads.append(("response.content_part.added", {**where, "part": _part("")}))
    kinds_and_payloads += [
        ("response.output_text.delta", {**where, "delta": piece, "logprobs": []})
        for piece in upstream.CONTENT_PIECES
    ]
    kinds_and_payloads += [
        ("response.output_text.done", {**where, "text": _TEXT, "logprobs": []}),
        ("response.content_part.done", {**where, "part": _part(_TEXT)}),
        ("response.output_item.done", {"output_index": 0, "item": _item(True)}),
        ("response.completed", {"response": _response(True)}),
    ]
    return [
        b"event: "
        + kind.encode()
        + b"\ndata: "
        + upstream._json({"type": kind, **payload, "sequence_number": n})
        + b"\n\n"
        for n, (kind, payload) in enumerate(kinds_and_payloads)
    ]


RESPONSE = upstream._fixed("200 OK", "application/json", upstream._json(_response(True)))
RESPONSE_STREAM = upstream._chunked_stream(_events())


# The bench upstream with an OpenAI Responses route.
ResponsesUpstream = upstream.with_streaming_route(RESPONSES_PATH, RESPONSE, RESPONSE_STREAM)


def main(argv: list[str] | None = None) -> None:
    upstream.run_main("The bench upstream with the Responses API.", ResponsesUpstream, 2048, argv)


if __name__ == "__main__":
    main()

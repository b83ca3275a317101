"""``generate: false`` (a WebSocket ``response.create``): the request's state prepared without
model output.

OpenAI's clients send it to warm a connection up (Codex does before its first turn) and chain
their next turn on the response it gives. The gateway answers it itself, on every upstream: no
upstream call, a ``completed`` Response with no output and no tokens, recorded (or kept by the
connection, for ``store: false``) like any other, so that a ``previous_response_id`` on it
replays its input.
"""

from __future__ import annotations

from typing import Any

from gateway.exchange import Exchange
from gateway.pricing import Usage
from gateway.responses.upstreams import Turn
from gateway.translate.response_object import response_skeleton
from gateway.translate.responses_stream import encode_events
from gateway.upstream import Deployment

_NO_TOKENS = {
    "input_tokens": 0,
    "input_tokens_details": {"cached_tokens": 0},
    "output_tokens": 0,
    "output_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": 0,
}


async def prepare(exchange: Exchange, turn: Turn, plan: list[Deployment]) -> None:
    """Record the prepared response and stream its ``created``, ``in_progress`` and
    ``completed`` events on the exchange's channel."""
    started = response_skeleton(
        turn.data,
        response_id=turn.response_id,
        created_at=turn.created_at,
        previous_response_id=turn.previous_response_id,
    )
    done: dict[str, Any] = {
        **started,
        "status": "completed",
        "completed_at": int(exchange.services.clock.now()),
        "usage": _NO_TOKENS,
    }
    await turn.save(plan[0], done, None)
    events = [
        {"type": "response.created", "sequence_number": 0, "response": started},
        {"type": "response.in_progress", "sequence_number": 1, "response": started},
        {"type": "response.completed", "sequence_number": 2, "response": done},
    ]
    exchange.outcome.usage = Usage()
    await exchange.channel.start_stream(exchange.headers_now())
    exchange.outcome.ok()
    await exchange.send_chunk(encode_events(events))
    await exchange.channel.end_stream()

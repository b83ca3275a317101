"""A turn's record and its own part of the chain's history: the history turn is the record's
input without the ids the gateway gave, however the client wrote its items; an unstored answer
builds neither until they are read."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis.asyncio as aioredis

from gateway.clock import ManualClock
from gateway.config import UpstreamApi
from gateway.policy.auth import Principal
from gateway.responses.items import without_minted_ids
from gateway.responses.request import parse_responses_request
from gateway.responses.store import ResponseStore
from gateway.responses.upstreams import Turn


class Deployment:
    api = UpstreamApi.CHAT
    provider = "p"
    upstream_model = "m"


ANSWER: dict[str, Any] = {
    "status": "completed",
    "output": [{"id": "msg_1", "type": "message", "role": "assistant", "content": []}],
}


def turn(body: dict[str, Any]) -> Turn:
    return Turn(
        request=parse_responses_request(json.dumps({"model": "m", **body}).encode()),
        principal=Principal("k", "kid"),
        records=ResponseStore(aioredis.Redis(), prefix="p:", ttl=100),
        clock=ManualClock(),
        parent=None,
        upstream_store=True,
        chain_touched_at=0.0,
        anthropic_max_tokens=1024,
    )


@pytest.mark.parametrize(
    "given",
    [
        "Hi",
        [{"role": "user", "content": "Hi"}],
        [
            {"id": "msg_mine", "type": "message", "role": "user", "content": "Hi"},
            {"role": "user", "content": "x"},
        ],
        [{"id": None, "type": "message", "role": "user", "content": "Hi"}],
        [
            {"id": "", "role": "user", "content": "Hi"},
            {"type": "function_call_output", "call_id": "c", "output": "1"},
        ],
    ],
)
def test_the_history_turn_is_the_record_input_without_minted_ids(given: Any) -> None:
    t = turn({"input": given})
    record = t.record(Deployment(), ANSWER, None)  # type: ignore[arg-type]
    own = t.own_turn(record)
    assert own.id == record.meta.id
    assert own.input == without_minted_ids(record.input, record.meta.minted)
    assert own.output == record.output


async def test_an_unstored_answer_builds_its_record_when_read() -> None:
    t = turn({"input": "Hi", "store": False})
    assert t.finished is None
    await t.save(Deployment(), ANSWER, None)  # type: ignore[arg-type]
    finished = t.finished
    assert finished is not None
    meta, history = finished
    assert (meta.id, meta.status, meta.parent) == (t.response_id, "completed", None)
    assert [turn.id for turn in history] == [t.response_id]
    assert history[0].input == t.request.items
    assert t.finished is not None and t.finished[0] is meta  # built once

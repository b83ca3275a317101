"""``POST /v1/responses/compact``: a conversation made short enough to continue, in OpenAI's shape
(``{"id", "object": "response.compaction", "created_at", "output", "usage"}``).

The conversation is the request's ``input``, after the chain of ``previous_response_id`` when one
is given. Per attempt, on the attempt's deployment:

* a Responses upstream compacts it itself: the request goes to its ``/responses/compact`` (the
  deployment's model; its own ``previous_response_id`` when it produced the parent, else the
  replayed history), and its answer comes back under the gateway's id;
* any other upstream is asked for a summary of the conversation (:mod:`.compaction`); the answer
  keeps the user messages and ends with the gateway's ``compaction`` item.

The result is stored (unless ``store: false``) as a new chain root: its output is the compacted
conversation, so a follow-up may pass that output back as input (OpenAI's way) or continue from
its id. Admission, limits, failover and usage are those of any Responses request.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from redis.exceptions import RedisError

from gateway.dialects import dialect_for
from gateway.errors import AttemptFailed
from gateway.exchange import ClientChannel, Exchange
from gateway.policy.auth import Principal
from gateway.policy.usage import usage_from_responses
from gateway.pricing import Usage
from gateway.responses import compaction
from gateway.responses.endpoint import Responses
from gateway.responses.items import new_item_id, normalize_input
from gateway.responses.request import ResponsesRequest, parse_responses_request
from gateway.responses.service import response_store, store_unavailable
from gateway.responses.store import HistoryTurn, NewRecord, ResponseMeta
from gateway.responses.upstreams import Turn, begin_turn
from gateway.services import Services
from gateway.translate import response_skeleton
from gateway.upstream.call import call_json
from gateway.upstream.failover import Attempt

log = logging.getLogger("gateway.responses")
ROUTE = "/v1/responses/compact"
PATH = "/responses/compact"
_ENCODER = msgspec.json.Encoder()
_OBJECT = msgspec.json.Decoder(dict[str, Any])
_NO_USAGE: dict[str, Any] = {
    "input_tokens": 0,
    "input_tokens_details": {"cached_tokens": 0},
    "output_tokens": 0,
    "output_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": 0,
}


class Compacted:
    """The compaction object as answered, and what produced it."""

    __slots__ = ("obj", "upstream_model")

    def __init__(self, obj: dict[str, Any], upstream_model: str) -> None:
        self.obj = obj
        self.upstream_model = upstream_model

    @property
    def body(self) -> bytes:
        return _ENCODER.encode(self.obj)

    def usage(self) -> Usage | None:
        return usage_from_responses(self.obj.get("usage"))

    def model(self) -> str | None:
        return self.upstream_model


def _usage(found: Any) -> dict[str, Any]:
    if not isinstance(found, dict):
        return dict(_NO_USAGE)
    usage = {**_NO_USAGE, **found}
    usage["input_tokens_details"] = {
        **_NO_USAGE["input_tokens_details"],
        **(found.get("input_tokens_details") or {}),
    }
    usage["output_tokens_details"] = {
        **_NO_USAGE["output_tokens_details"],
        **(found.get("output_tokens_details") or {}),
    }
    return usage


def _text(response: dict[str, Any]) -> str:
    parts = [
        str(part.get("text") or "")
        for item in response.get("output") or ()
        if item.get("type") == "message"
        for part in item.get("content") or ()
        if part.get("type") == "output_text"
    ]
    return "".join(parts)


def _listed(item: dict[str, Any]) -> dict[str, Any]:
    """A kept message as OpenAI lists it: with an id and a status."""
    return {
        "id": item.get("id") or new_item_id("message"),
        **item,
        "status": item.get("status") or "completed",
    }


class Compactor:
    """One compaction request's upstream calls."""

    def __init__(self, services: Services, turn: Turn) -> None:
        self.services = services
        self.turn = turn
        self.calls = Responses(services, turn)

    async def call(self, attempt: Attempt) -> Compacted:
        if dialect_for(attempt.deployment.api).stores_responses:
            return await self._forward(attempt)
        return await self._summarize(attempt)

    async def _forward(self, attempt: Attempt) -> Compacted:
        turn = self.turn
        data = {k: v for k, v in turn.data.items() if k not in ("stream", "background", "store")}
        data["model"] = attempt.deployment.upstream_model
        if turn.native(attempt.deployment) and not attempt.replay:
            data["previous_response_id"] = turn.parent_upstream_id
        else:
            data.pop("previous_response_id", None)
            data["input"] = await turn.replay_input(for_responses=True)
        request = attempt.upstream.request("POST", PATH, _ENCODER.encode(data))
        answer = _OBJECT.decode((await call_json(attempt, request, self.services.clock)).content)
        obj = {
            "id": turn.response_id,
            "object": "response.compaction",
            "created_at": turn.created_at,
            "output": list(answer.get("output") or ()),
            "usage": _usage(answer.get("usage")),
        }
        return Compacted(obj, attempt.deployment.upstream_model)

    async def _summarize(self, attempt: Attempt) -> Compacted:
        turn = self.turn
        conversation = await turn.replay_input(for_responses=False)
        asked: list[dict[str, Any]] = [
            *conversation,
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": compaction.REQUEST}],
            },
        ]
        data: dict[str, Any] = {
            "model": turn.request.model,
            "input": asked,
            "instructions": compaction.INSTRUCTIONS,
            "store": False,
        }
        for name in ("max_output_tokens", "temperature", "prompt_cache_key"):
            if name in turn.data:
                data[name] = turn.data[name]
        inner = Turn(
            request=ResponsesRequest(
                data=data,
                model=turn.request.model,
                stream=False,
                store=False,
                previous_response_id=None,
                items=normalize_input(asked),
            ),
            principal=turn.principal,
            records=turn.records,
            clock=turn.clock,
            parent=None,
            upstream_store=False,
            chain_touched_at=turn.chain_touched_at,
            anthropic_max_tokens=turn.anthropic_max_tokens,
        )
        answer = await Responses(self.services, inner).json(attempt)
        response = answer.produced.response
        obj = {
            "id": turn.response_id,
            "object": "response.compaction",
            "created_at": turn.created_at,
            "output": [
                _listed(item) if item.get("type") == "message" else item
                for item in compaction.compacted_output(conversation, _text(response))
            ],
            "usage": _usage(response.get("usage")),
        }
        return Compacted(obj, attempt.deployment.upstream_model)


def _root_record(turn: Turn, compacted: Compacted, deployment: str, api: str) -> NewRecord:
    """The compacted conversation as a new chain root (continued by its id or its output)."""
    obj = compacted.obj
    body = response_skeleton(
        turn.data, response_id=turn.response_id, created_at=turn.created_at, previous_response_id=None
    )
    body.update(status="completed", completed_at=turn.created_at, usage=obj["usage"], output=obj["output"])
    meta = ResponseMeta(
        id=turn.response_id,
        owner=turn.principal.key_id,
        model=turn.request.model,
        deployment=deployment,
        api=api,
        status="completed",
        created_at=turn.created_at,
        chain_touched_at=turn.chain_touched_at,
        context_tokens=int(obj["usage"].get("output_tokens") or 0),
        history=turn.response_id,
        history_length=1,
    )
    return NewRecord(meta=meta, input=[], output=list(obj["output"]), body=body)


async def compact(services: Services, channel: ClientChannel) -> None:
    async with Exchange(services, channel, route=ROUTE, error_api="responses") as exchange:
        caller = await exchange.authenticate()
        body = await exchange.read_body()
        request = parse_responses_request(body)
        data = {k: v for k, v in request.data.items() if k not in ("stream", "background")}
        request = msgspec.structs.replace(request, data=data, stream=False, background=False)
        store = response_store(services)
        try:
            turn = await begin_turn(services, store, caller.principal, request)
        except RedisError:
            log.exception("response store unavailable")
            raise store_unavailable() from None
        early = services.policy.may_use(caller, request.model)
        plan = exchange.plan(request.model, turn.prompt_tokens, param="input") if early else None
        await exchange.admit(caller, model=request.model, body_size=len(body), max_tokens=None, stream=False)
        if plan is None:
            plan = exchange.plan(request.model, turn.prompt_tokens, param="input")
        compactor = Compactor(services, turn)
        async with exchange.upstream():
            answer = await exchange.json(plan, compactor.call, replay=compactor.calls.replay)
        if request.store:
            last = exchange.trace.attempts[-1] if exchange.trace.attempts else None
            deployment = f"{last.provider}/{last.upstream_model}" if last else ""
            api = str(plan[0].api)
            for candidate in plan:
                if last is not None and (candidate.provider, candidate.upstream_model) == (
                    last.provider,
                    last.upstream_model,
                ):
                    api = str(candidate.api)
            record = _root_record(turn, answer, deployment, api)
            try:
                await store.save_turn(record, None, HistoryTurn(record.meta.id, [], record.output))
            except RedisError:
                log.exception("response store unavailable")
                raise store_unavailable() from None
        await exchange.send_json(answer)


__all__ = ["AttemptFailed", "Principal", "compact"]

"""One Responses request against each kind of upstream: the body to send, the answer back.

A :class:`Turn` is one client request in flight: who asks, what it continues from, the history
(read from the records only when a replay needs it). For each attempt it decides, for that
attempt's deployment, between the two ways to give the upstream the conversation:

* **native**: the upstream speaks Responses, stores what it answers, and produced the parent
  itself (same provider, same upstream model): send the upstream's own id of the parent as
  ``previous_response_id`` and only the new input;
* **replay**: anything else (a Chat or Anthropic upstream, ``store: false``, a chain that moved
  to another deployment, an upstream that forgot the parent): send the whole history, rebuilt
  from the records, and the new input. Instructions never carry over: only the request's own
  ``instructions`` are sent.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import msgspec

from gateway.clock import Clock
from gateway.config import SchemaTarget, UpstreamApi
from gateway.errors import ClassifiedError
from gateway.errors.client import InvalidRequest
from gateway.policy.auth import Principal
from gateway.responses import errors
from gateway.responses.items import (
    Item,
    for_responses_upstream,
    function_call_ids,
    index_by_id,
    resolve_references,
    with_ids,
    without_minted_ids,
)
from gateway.responses.request import ResponsesRequest
from gateway.responses.store import Ancestor, ChainBroken, NewRecord, ResponseMeta, ResponseStore
from gateway.schema_fix import Target, repair_schema
from gateway.token_estimate import estimate_responses_tokens, text_tokens
from gateway.translate import (
    AnthropicContext,
    RandomIds,
    TranslationError,
    anthropic_request_from_responses,
    chat_request_from_responses,
    response_from_anthropic_message,
    response_from_chat_completion,
)
from gateway.upstream import Deployment
from gateway.upstream.tool_schemas import repair_chat_tools, repair_responses_tools

_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(dict[str, Any])
IDS = RandomIds()


def deployment_key(deployment: Deployment) -> str:
    return f"{deployment.provider}/{deployment.upstream_model}"


def is_stale_chain(error: ClassifiedError) -> bool:
    """The upstream does not know the parent we chained to (expired, other account...)."""
    return error.code == "previous_response_not_found" or error.param == "previous_response_id"


def repair_for_anthropic(schema: object) -> object:
    return repair_schema(schema, Target.ANTHROPIC).schema


def translated(error: TranslationError) -> InvalidRequest:
    return InvalidRequest(error.message, param=error.param, code=error.code)


class Produced(NamedTuple):
    """A finished answer: the client's Response object and the upstream's own id, if stored."""

    response: dict[str, Any]
    upstream_id: str | None


class Turn:
    """One ``POST /v1/responses`` in flight."""

    def __init__(
        self,
        *,
        request: ResponsesRequest,
        principal: Principal,
        store: ResponseStore,
        clock: Clock,
        parent: ResponseMeta | None,
        upstream_store: bool,
        chain_touched_at: float,
        anthropic_max_tokens: int,
    ) -> None:
        self.request = request
        self.principal = principal
        self.store = store
        self.clock = clock
        self.parent = parent
        self.response_id = IDS.response()
        self.created_at = int(clock.now())
        # What the upstream is told about storing: never more than the client allowed.
        self.upstream_store = request.store and upstream_store
        self.chain_touched_at = chain_touched_at
        self.anthropic_max_tokens = anthropic_max_tokens
        self._history: list[Ancestor] | None = None

    @property
    def previous_response_id(self) -> str | None:
        return self.request.previous_response_id

    # -- the decision -------------------------------------------------------------------------

    def native(self, deployment: Deployment) -> bool:
        parent = self.parent
        return (
            deployment.api is UpstreamApi.RESPONSES
            and self.upstream_store
            and parent is not None
            and parent.upstream_id is not None
            and parent.deployment == deployment_key(deployment)
        )

    async def history(self) -> list[Ancestor]:
        if self._history is None:
            if self.parent is None:
                self._history = []
            else:
                try:
                    self._history = await self.store.read_chain(self.parent)
                except ChainBroken as broken:
                    raise errors.previous_response_not_found(broken.missing) from None
        return self._history

    async def replay_input(self, api: UpstreamApi) -> list[Item]:
        """The whole conversation for an upstream that holds none of it."""
        turns = await self.history()
        known = index_by_id(group for turn in turns for group in (turn.input, turn.output))
        items: list[Item] = []
        for turn in turns:
            items.extend(resolve_references(without_minted_ids(turn.input, turn.meta.minted), known))
            items.extend(turn.output)
        if api is UpstreamApi.RESPONSES:
            history = [shaped for item in items if (shaped := for_responses_upstream(item)) is not None]
            # The new input as the client wrote it (a string becomes its one message).
            given = self.request.data.get("input")
            new = given if isinstance(given, list) else self.request.items
            return history + resolve_references(new, known)
        return items + resolve_references(self.request.items, known)

    # -- bodies -------------------------------------------------------------------------------

    async def responses_body(self, deployment: Deployment, target: SchemaTarget, *, native: bool) -> bytes:
        data = dict(self.request.data)
        data["model"] = deployment.upstream_model
        data["store"] = self.upstream_store
        tools = data.get("tools")
        if isinstance(tools, list) and tools:
            data["tools"] = repair_responses_tools(tools, target)
        if native:
            assert self.parent is not None
            data["previous_response_id"] = self.parent.upstream_id
        elif self.parent is not None:
            data.pop("previous_response_id", None)
            data["input"] = await self.replay_input(UpstreamApi.RESPONSES)
        return _ENCODER.encode(data)

    async def chat_body(self, deployment: Deployment, target: SchemaTarget) -> bytes:
        items = await self.replay_input(UpstreamApi.CHAT)
        try:
            body = chat_request_from_responses(self.request.data, items)
        except TranslationError as exc:
            raise translated(exc) from None
        body["model"] = deployment.upstream_model
        if body.get("tools"):
            body["tools"] = repair_chat_tools(body["tools"], target)
        return _ENCODER.encode(body)

    async def anthropic_body(self, deployment: Deployment, context: AnthropicContext) -> bytes:
        items = await self.replay_input(UpstreamApi.ANTHROPIC)
        try:
            body = anthropic_request_from_responses(
                self.request.data,
                items,
                upstream_model=deployment.upstream_model,
                default_max_tokens=self.anthropic_max_tokens,
                schema_repair=repair_for_anthropic,
                context=context,
            )
        except TranslationError as exc:
            raise translated(exc) from None
        return _ENCODER.encode(body)

    # -- answers ------------------------------------------------------------------------------

    def own(self, response: dict[str, Any]) -> dict[str, Any]:
        """A Responses upstream's object, made the gateway's: our id, the client's parent id."""
        response["id"] = self.response_id
        response["previous_response_id"] = self.previous_response_id
        response["store"] = self.request.store
        return response

    def from_responses(self, content: bytes) -> Produced:
        response = _DECODER.decode(content)
        upstream_id = response.get("id")
        return Produced(self.own(response), upstream_id if isinstance(upstream_id, str) else None)

    def from_chat(self, content: bytes) -> Produced:
        completion = _DECODER.decode(content)
        response = response_from_chat_completion(
            completion,
            request=self.request.data,
            response_id=self.response_id,
            created_at=self.created_at,
            ids=IDS,
            previous_response_id=self.previous_response_id,
            completed_at=int(self.clock.now()),
        )
        return Produced(response, None)

    def from_anthropic(self, content: bytes, context: AnthropicContext) -> Produced:
        message = _DECODER.decode(content)
        response = response_from_anthropic_message(
            message,
            request=self.request.data,
            response_id=self.response_id,
            created_at=self.created_at,
            ids=IDS,
            previous_response_id=self.previous_response_id,
            context=context,
            completed_at=int(self.clock.now()),
        )
        return Produced(response, None)

    # -- the record ---------------------------------------------------------------------------

    def record(self, deployment: Deployment, response: dict[str, Any], upstream_id: str | None) -> NewRecord:
        parent = self.parent
        if parent is None:
            block: tuple[str, ...] = ()
            tails: tuple[str, ...] = ()
            depth = 0
        else:
            block, tails = parent.child_links()
            depth = parent.depth + 1
        status = str(response.get("status") or "completed")
        output = list(response.get("output") or ())
        items, minted = with_ids(self.request.items)
        stored_upstream = (
            upstream_id
            if deployment.api is UpstreamApi.RESPONSES and self.upstream_store and status != "failed"
            else None
        )
        meta = ResponseMeta(
            id=self.response_id,
            owner=self.principal.key_id,
            model=self.request.model,
            deployment=deployment_key(deployment),
            api=str(deployment.api),
            status=status,
            created_at=self.created_at,
            upstream_id=stored_upstream,
            parent=parent.id if parent is not None else None,
            depth=depth,
            block=block,
            tails=tails,
            chain_touched_at=self.chain_touched_at,
            minted=minted,
            calls=function_call_ids(output),
            context_tokens=self._context_tokens(response, output),
        )
        return NewRecord(meta=meta, input=items, output=output, body=response)

    def _context_tokens(self, response: dict[str, Any], output: list[Item]) -> int:
        """What the chain will weigh in a follow-up: this turn's whole prompt and answer as the
        upstream counted them, less its instructions (they do not carry over); an estimate when
        the upstream reported no usage."""
        usage = response.get("usage")
        if isinstance(usage, dict):
            used = usage.get("input_tokens"), usage.get("output_tokens")
            if isinstance(used[0], int) and isinstance(used[1], int):
                instructions = self.request.data.get("instructions")
                own = text_tokens(instructions) if isinstance(instructions, str) else 0
                return max(0, used[0] + used[1] - own)
        carried = self.parent.context_tokens if self.parent is not None else 0
        return carried + estimate_responses_tokens([*self.request.items, *output], None, None)

    def prompt_tokens(self) -> int:
        """About how many tokens the upstream will read for this request, history included."""
        data = self.request.data
        instructions = data.get("instructions")
        tools = data.get("tools")
        estimate = estimate_responses_tokens(
            self.request.items,
            instructions if isinstance(instructions, str) else None,
            tools if isinstance(tools, list) else None,
        )
        return estimate + (self.parent.context_tokens if self.parent is not None else 0)

    async def save(self, deployment: Deployment, response: dict[str, Any], upstream_id: str | None) -> None:
        if self.request.store:
            await self.store.save(self.record(deployment, response, upstream_id))

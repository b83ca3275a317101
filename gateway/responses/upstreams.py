"""One Responses request in flight: what it continues from, and how each attempt gives the
upstream the conversation.

A :class:`Turn` is one client request in flight: who asks, what it continues from, the history
(read from the records only when a replay needs it). For each attempt it decides, for that
attempt's deployment, between the two ways to give the upstream the conversation:

* **native**: the upstream's dialect stores answers, the client allowed storing, and the
  deployment produced the parent itself (same provider, same upstream model): send the
  upstream's own id of the parent as ``previous_response_id`` and only the new input;
* **replay**: anything else (a Chat or Anthropic upstream, ``store: false``, a chain that moved
  to another deployment, an upstream that forgot the parent): send the whole history, rebuilt
  from the records, and the new input. Instructions never carry over: only the request's own
  ``instructions`` are sent.

The bodies and answers of each upstream API are its dialect's (:mod:`gateway.dialects`); the
turn is what the dialects read (:class:`gateway.dialects.ResponsesTurn`).
"""

from __future__ import annotations

import contextlib
from typing import Any

from gateway.clock import Clock
from gateway.dialects import dialect_for
from gateway.dialects.responses import deployment_key
from gateway.policy.auth import Principal
from gateway.responses import compaction, errors
from gateway.responses.items import (
    Item,
    check_outputs_answer_calls,
    check_tool_outputs,
    for_responses_upstream,
    function_call_ids,
    index_by_id,
    resolve_references,
    with_ids,
    without_minted_ids,
)
from gateway.responses.request import ResponsesRequest
from gateway.responses.session import LastResponse
from gateway.responses.store import ChainBroken, HistoryTurn, NewRecord, ResponseMeta, ResponseStore
from gateway.services import Services
from gateway.token_estimate import estimate_responses_tokens, text_tokens
from gateway.translate import Ids, RandomIds
from gateway.upstream import Deployment

IDS = RandomIds()


class Turn:
    """One ``POST /v1/responses`` in flight."""

    __slots__ = (
        "_answered",
        "_history",
        "anthropic_max_tokens",
        "chain_touched_at",
        "clock",
        "created_at",
        "parent",
        "principal",
        "records",
        "request",
        "response_id",
        "touch_due",
        "upstream_store",
    )

    def __init__(
        self,
        *,
        request: ResponsesRequest,
        principal: Principal,
        records: ResponseStore,
        clock: Clock,
        parent: ResponseMeta | None,
        upstream_store: bool,
        chain_touched_at: float,
        anthropic_max_tokens: int,
        touch_due: bool = False,
        history: list[HistoryTurn] | None = None,
        response_id: str | None = None,
        created_at: int | None = None,
    ) -> None:
        self.request = request
        self.principal = principal
        self.records = records
        self.clock = clock
        self.parent = parent
        self.response_id = response_id or IDS.response()
        self.created_at = int(clock.now()) if created_at is None else created_at
        # What the upstream is told about storing: never more than the client allowed.
        self.upstream_store = request.store and upstream_store
        self.chain_touched_at = chain_touched_at
        self.touch_due = touch_due  # the chain's life is extended once the request is admitted
        self.anthropic_max_tokens = anthropic_max_tokens
        # The chain's turns when already known (a WebSocket's last response); else read once.
        self._history = history
        # Once answered: its record and turn (built when first needed: an unstored answer
        # over HTTP never needs them), and whether the chain's history it ends is known.
        self._answered: Answered | None = None

    @property
    def finished(self) -> tuple[ResponseMeta, list[HistoryTurn]] | None:
        """Once answered, when the chain's history is known (no parent, or its history read):
        the record's meta and the history this response ends (stored or not)."""
        answered = self._answered
        if answered is None or answered.history is None:
            return None
        record, own = self._built(answered)
        return record.meta, [*answered.history, own]

    @property
    def data(self) -> dict[str, Any]:
        return self.request.data

    @property
    def previous_response_id(self) -> str | None:
        return self.request.previous_response_id

    @property
    def parent_upstream_id(self) -> str | None:
        return self.parent.upstream_id if self.parent is not None else None

    @property
    def store(self) -> bool:
        return self.request.store

    @property
    def ids(self) -> Ids:
        return IDS

    # -- the decision -------------------------------------------------------------------------

    def native(self, deployment: Deployment) -> bool:
        parent = self.parent
        return (
            parent is not None
            and parent.upstream_id is not None
            and self.upstream_store
            and dialect_for(deployment.api).stores_responses
            and parent.deployment == deployment_key(deployment)
        )

    async def history(self) -> list[HistoryTurn]:
        """Every turn of the chain up to the parent, oldest first: from the parent's materialized
        history (a bounded number of reads whatever the depth), else record by record."""
        if self._history is None:
            parent = self.parent
            if parent is None:
                self._history = []
            else:
                try:
                    found = await self.records.read_history(parent)
                    if found is None:
                        chain = await self.records.read_chain(parent)
                        found = [HistoryTurn(t.meta.id, t.input, t.output, t.meta.minted) for t in chain]
                except ChainBroken as broken:
                    raise errors.previous_response_not_found(broken.missing) from None
                self._history = found
        return self._history

    async def replay_input(self, *, for_responses: bool) -> list[Item]:
        """The whole conversation for an upstream that holds none of it."""
        turns = self._history if self._history is not None else await self.history()
        items: list[Item] = []
        for turn in turns:
            items.extend(without_minted_ids(turn.input, turn.minted) if turn.minted else turn.input)
            items.extend(turn.output)
        given = self.request.data.get("input")
        # The new input as the client wrote it (a string becomes its one message).
        new = given if for_responses and isinstance(given, list) else self.request.items
        if _references(items) or _references(new):
            known = await self._known(turns)
            items = resolve_references(items, known)
            new = resolve_references(new, known)
        if for_responses:
            history = [shaped for item in items if (shaped := for_responses_upstream(item)) is not None]
            return compaction.for_upstream(history + new, responses=True)
        return compaction.for_upstream(items + new, responses=False)

    async def _known(self, turns: list[HistoryTurn]) -> dict[str, Item]:
        """Every item of the chain by id, the ids the gateway gave included (what references
        name): materialized histories keep inputs without those, so the records are read."""
        if self.parent is not None and not any(turn.minted for turn in turns):
            # An unstored chain (a WebSocket's) has no records: its items are all there is.
            with contextlib.suppress(ChainBroken):
                chain = await self.records.read_chain(self.parent)
                turns = [HistoryTurn(t.meta.id, t.input, t.output, t.meta.minted) for t in chain]
        return index_by_id(group for turn in turns for group in (turn.input, turn.output))

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
            if dialect_for(deployment.api).stores_responses and self.upstream_store and status != "failed"
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

    async def touch(self) -> None:
        """Extend the life of the chain this turn continues, when it is due."""
        parent = self.parent
        if parent is not None and self.touch_due:
            await self.records.touch_chain(parent)

    def own_turn(self, record: NewRecord) -> HistoryTurn:
        """This response's part of its chain's history, as a replay sends it: its input without
        the ids the gateway gave (the upstream never saw them), its output."""
        minted = record.meta.minted
        items = self.request.items
        if all("id" not in items[index] for index in minted):
            # The record's input is the request's with ids added in front: without them, the
            # request's own items.
            return HistoryTurn(record.meta.id, list(items), record.output)
        return HistoryTurn(record.meta.id, without_minted_ids(record.input, minted), record.output)

    async def save(self, deployment: Deployment, response: dict[str, Any], upstream_id: str | None) -> None:
        history = self._history if self._history is not None or self.parent is not None else []
        answered = self._answered = Answered(deployment, response, upstream_id, history)
        if self.request.store:
            record, own = self._built(answered)
            saved = await self.records.save_turn(record, self.parent, own, self._history)
            answered.response_json = saved.response_json

    def _built(self, answered: Answered) -> tuple[NewRecord, HistoryTurn]:
        """The answer's record and own history turn, built the first time they are needed."""
        if answered.record is None or answered.own is None:
            answered.record = self.record(answered.deployment, answered.response, answered.upstream_id)
            answered.own = self.own_turn(answered.record)
        return answered.record, answered.own

    @property
    def response_json(self) -> bytes | None:
        """The answer's Response object as JSON, when saving it already made it."""
        return self._answered.response_json if self._answered is not None else None


class Answered:
    """A turn's answer; its record and own history turn once the turn built them (when first needed).
    It holds nothing of the turn: no reference cycle keeps either alive after the request."""

    __slots__ = ("deployment", "history", "own", "record", "response", "response_json", "upstream_id")

    def __init__(
        self,
        deployment: Deployment,
        response: dict[str, Any],
        upstream_id: str | None,
        history: list[HistoryTurn] | None,
    ) -> None:
        self.deployment = deployment
        self.response = response
        self.upstream_id = upstream_id
        self.history = history  # the chain's turns before this one (None: not read)
        self.record: NewRecord | None = None
        self.own: HistoryTurn | None = None
        self.response_json: bytes | None = None  # the response as the client gets it, once stored


def _references(items: list[Item]) -> bool:
    """Whether ``items`` hold an ``item_reference``."""
    return any(item.get("type") == "item_reference" for item in items) if items else False


async def begin_turn(
    services: Services,
    store: ResponseStore,
    principal: Principal,
    request: ResponsesRequest,
    *,
    last: LastResponse | None = None,
    response_id: str | None = None,
    created_at: int | None = None,
) -> Turn:
    """Read what the request continues from (for this key only) and check it may continue.
    Writes nothing: a refusal here or at admission leaves Redis as it was (:meth:`Turn.touch`
    extends the chain's life once the request is admitted). ``last``: a WebSocket connection's
    last response, which an unstored chain continues from without the store."""
    settings = services.settings.responses
    now = services.clock.now()
    parent = None
    history = None
    touched_at = now
    due = False
    previous = request.previous_response_id
    if previous is not None:
        cached = last.lookup(previous, principal.key_id) if last is not None else None
        if cached is not None:
            parent, history = cached
        else:
            parent = await store.read_parent(previous, principal.key_id)
        if parent is None:
            raise errors.previous_response_not_found(previous)
        if parent.depth + 2 > settings.max_chain_length:
            raise errors.chain_too_long(settings.max_chain_length)
        check_tool_outputs(parent.calls, request.items)
        if cached is None:
            due = store.touch_due(parent, now)
        if not due:
            touched_at = parent.chain_touched_at
    check_outputs_answer_calls(parent.calls if parent is not None else (), request.items)
    return Turn(
        request=request,
        principal=principal,
        records=store,
        clock=services.clock,
        parent=parent,
        upstream_store=settings.upstream_store,
        chain_touched_at=touched_at,
        anthropic_max_tokens=settings.anthropic_max_tokens,
        touch_due=due,
        history=history,
        response_id=response_id,
        created_at=int(now) if created_at is None else created_at,
    )

"""Answering the Responses API: create (JSON or stream), retrieve, delete, list input items.

Create reads the request, rebuilds the context from the stored chain (`previous_response_id`),
checks function-call pairing over the rebuilt items, composes the deterministic answer on the
rebuilt conversation (usage counts the whole history again, as OpenAI bills it), and stores the
result when `store` is not false and no fault spoiled the answer.
"""

from __future__ import annotations

import base64
from typing import Any

import msgspec
from litestar import Request

from fake_providers.behaviour import Behaviour, resolve_behaviour
from fake_providers.catalogue import find_model
from fake_providers.composer import compose, formatted_reply, input_tokens
from fake_providers.conversation import Conversation
from fake_providers.exchange import Exchange
from fake_providers.fault_plans import error_plan, plan_answer
from fake_providers.faults import ErrorKind, Fault, FaultKind, UnknownFault
from fake_providers.ids import HEX
from fake_providers.openai.chat_request import unparseable_body
from fake_providers.openai.errors import OpenAIError, invalid_value
from fake_providers.openai.responses_dialect import ResponsesDialect
from fake_providers.openai.responses_render import (
    ResponseIdentity,
    final_response,
    reasons,
    response_frames,
    skeleton,
)
from fake_providers.openai.responses_request import (
    ResponsesRequest,
    check_tool_outputs,
    conversation_of,
    parse_responses_request,
)
from fake_providers.openai.responses_store import StoredResponse
from fake_providers.openai.responses_wire import Deleted, ItemList
from fake_providers.openai.service import OpenAIService
from fake_providers.reply import PlannedReply, ReplyPlan
from fake_providers.state import FakeState

_DECODER = msgspec.json.Decoder()
_ENCODER = msgspec.json.Encoder()
ID_LENGTH = 48
# Ids given to input items that arrive without one (function_call_output's prefix is our choice).
_ITEM_PREFIXES = {
    "message": "msg_",
    "function_call": "fc_",
    "function_call_output": "fco_",
    "reasoning": "rs_",
}
_STORED_FAULTS = (None, FaultKind.SLOW)  # answers that arrive whole are stored
MAX_ITEMS_LIMIT = 100
DEFAULT_ITEMS_LIMIT = 20


def previous_not_found(response_id: str) -> OpenAIError:
    return OpenAIError(
        f"Previous response with id '{response_id}' not found.",
        param="previous_response_id",
        code="previous_response_not_found",
    )


def response_not_found(response_id: str) -> OpenAIError:
    return OpenAIError(
        f"No response found with id '{response_id}'.",
        param="response_id",
        code="response_not_found",
        status=404,
    )


def _truncated(items: list[Any], request: ResponsesRequest, window: int) -> Conversation:
    """`truncation: "auto"`: the oldest items are dropped until the input fits (the newest item is
    always kept; when even it does not fit, the request still overflows). The outputs of a dropped
    function call go with it, so no output is left without its call."""
    kept = items
    conversation = conversation_of(kept, request.instructions, request)
    while input_tokens(conversation) > window and len(kept) > 1:
        dropped, kept = kept[0], kept[1:]
        if dropped.get("type") == "function_call":
            call_id = dropped.get("call_id")
            kept = [
                item
                for item in kept
                if item.get("type") != "function_call_output" or item.get("call_id") != call_id
            ] or kept[-1:]
        conversation = conversation_of(kept, request.instructions, request)
    return conversation


class ResponsesService:
    """Serves `/openai/v1/responses…`; errors and headers are OpenAI's (shared with Chat)."""

    def __init__(self, state: FakeState, openai: OpenAIService) -> None:
        self._state = state
        self._openai = openai

    def _hex_id(self, prefix: str) -> str:
        return self._state.ids.prefixed(prefix, ID_LENGTH, HEX)

    def _with_ids(self, items: list[Any]) -> list[Any]:
        given = []
        for item in items:
            if "id" not in item:
                item = {"id": self._hex_id(_ITEM_PREFIXES.get(item.get("type"), "item_")), **item}
            given.append(item)
        return given

    async def create(self, request: Request[Any, Any, Any]) -> PlannedReply:
        exchange, refused = self._openai.start(request)
        if refused is not None:
            return refused
        try:
            body = _DECODER.decode(await request.body())
        except msgspec.DecodeError:
            return self._openai.refuse(unparseable_body(), exchange)
        try:
            parsed = parse_responses_request(body)
            exchange.model = parsed.model
            history: list[Any] = []
            if parsed.previous_response_id is not None:
                stored = self._state.responses.get(parsed.previous_response_id)
                if stored is None:
                    raise previous_not_found(parsed.previous_response_id)
                history = [*stored.context, *stored.output_items]
            own = self._with_ids(parsed.input)
            items = [*history, *own]
            check_tool_outputs(items)
        except OpenAIError as error:
            return self._openai.refuse(error, exchange)
        conversation = conversation_of(items, parsed.instructions, parsed)
        exchange.input_tokens = input_tokens(conversation)
        known = find_model(parsed.model)
        over_window = False
        if known is not None:
            exchange.context_window = known.context_window
            if exchange.input_tokens > known.context_window and parsed.truncation == "auto":
                conversation = _truncated(items, parsed, known.context_window)
                exchange.input_tokens = input_tokens(conversation)
            over_window = exchange.input_tokens > known.context_window
        if over_window:
            # Over the window: a 400, or in a stream the in-band error after the head.
            behaviour = Behaviour(fault=Fault(kind=FaultKind.INBAND, error=ErrorKind.CONTEXT_LENGTH))
        else:
            try:
                behaviour = resolve_behaviour(self._state.scripts, parsed.model)
            except UnknownFault as unknown:
                return self._openai.refuse(OpenAIError(f"fake_providers: {unknown}", param="model"), exchange)
        scripted = formatted_reply(parsed.text_format, conversation, behaviour.reply)
        completion = compose(conversation, scripted, self._state.ids)
        identity = ResponseIdentity(
            id=self._hex_id("resp_"),
            created_at=self._state.ids.created(),
            message_id=self._hex_id("msg_"),
            call_item_ids=tuple(self._hex_id("fc_") for _ in completion.tool_calls),
            reasoning_id=self._hex_id("rs_") if reasons(parsed) else None,
        )
        dialect = ResponsesDialect(self._openai.dialect, skeleton(parsed, identity))
        if over_window and not parsed.stream:
            return self._openai.reply(error_plan(dialect, exchange, ErrorKind.CONTEXT_LENGTH, behaviour))
        final = final_response(parsed, identity, completion)
        plan = plan_answer(
            dialect,
            exchange,
            behaviour,
            stream=parsed.stream,
            render_json=lambda: _ENCODER.encode(final),
            render_stream=lambda: response_frames(
                parsed, identity, completion, done_marker=self._state.options.responses_done_marker
            ),
        )
        fault_kind = behaviour.fault.kind if behaviour.fault is not None else None
        if parsed.store and fault_kind in _STORED_FAULTS:
            self._store(final, items, own)
        return self._openai.reply(plan)

    async def _conversation(
        self, request: Request[Any, Any, Any]
    ) -> tuple[Exchange, ResponsesRequest | None, list[Any], PlannedReply | None]:
        """A compact or count request read like a create (its chain rebuilt, pairing checked)."""
        exchange, refused = self._openai.start(request)
        if refused is not None:
            return exchange, None, [], refused
        try:
            body = _DECODER.decode(await request.body())
        except msgspec.DecodeError:
            return exchange, None, [], self._openai.refuse(unparseable_body(), exchange)
        try:
            if not isinstance(body, dict) or not body.get("model"):
                raise OpenAIError(
                    "Missing required parameter: 'model'.", param="model", code="missing_required_parameter"
                )
            parsed = parse_responses_request({**body, "stream": False})
            exchange.model = parsed.model
            history: list[Any] = []
            if parsed.previous_response_id is not None:
                stored = self._state.responses.get(parsed.previous_response_id)
                if stored is None:
                    raise previous_not_found(parsed.previous_response_id)
                history = [*stored.context, *stored.output_items]
            items = [*history, *self._with_ids(parsed.input)]
            check_tool_outputs(items)
        except OpenAIError as error:
            return exchange, None, [], self._openai.refuse(error, exchange)
        return exchange, parsed, items, None

    async def compact(self, request: Request[Any, Any, Any]) -> PlannedReply:
        """`POST /responses/compact`: the user messages kept, then one opaque compaction item
        (deterministic: the conversation's text, base64-encoded, behind `fake-compaction.`)."""
        exchange, parsed, items, refused = await self._conversation(request)
        if refused is not None or parsed is None:
            return refused  # type: ignore[return-value]
        conversation = conversation_of(items, parsed.instructions, parsed)
        text = " | ".join(turn.text for turn in conversation.turns if turn.text)
        kept = [
            {**item, "status": "completed"}
            for item in items
            if item.get("type") == "message" and item.get("role") == "user"
        ]
        sealed = "fake-compaction." + base64.b64encode(text.encode()).decode()
        used = input_tokens(conversation)
        answer = {
            "id": self._hex_id("resp_"),
            "object": "response.compaction",
            "created_at": self._state.ids.created(),
            "output": [
                *kept,
                {"id": self._hex_id("cmp_"), "type": "compaction", "encrypted_content": sealed},
            ],
            "usage": {
                "input_tokens": used,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": 1,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": used + 1,
            },
        }
        return self._ok(exchange, _ENCODER.encode(answer))

    async def count_input_tokens(self, request: Request[Any, Any, Any]) -> PlannedReply:
        """`POST /responses/input_tokens`: the input tokens the create request would bill."""
        exchange, parsed, items, refused = await self._conversation(request)
        if refused is not None or parsed is None:
            return refused  # type: ignore[return-value]
        tokens = input_tokens(conversation_of(items, parsed.instructions, parsed))
        return self._ok(
            exchange, _ENCODER.encode({"object": "response.input_tokens", "input_tokens": tokens})
        )

    def _store(self, final: Any, items: list[Any], own: list[Any]) -> None:
        self._state.responses.put(
            StoredResponse(
                response=final,
                context=items,
                input_items=own,
                output_items=msgspec.to_builtins(final.output),
            )
        )

    def _ok(self, exchange: Exchange, body: bytes) -> PlannedReply:
        headers = tuple(self._openai.dialect.success_headers(exchange, stream=False))
        return self._openai.reply(ReplyPlan(status=200, headers=headers, parts=(body,)))

    def retrieve(self, request: Request[Any, Any, Any], response_id: str) -> PlannedReply:
        exchange, refused = self._openai.start(request)
        if refused is not None:
            return refused
        stored = self._state.responses.get(response_id)
        if stored is None:
            return self._openai.refuse(response_not_found(response_id), exchange)
        return self._ok(exchange, _ENCODER.encode(stored.response))

    def delete(self, request: Request[Any, Any, Any], response_id: str) -> PlannedReply:
        exchange, refused = self._openai.start(request)
        if refused is not None:
            return refused
        if not self._state.responses.delete(response_id):
            return self._openai.refuse(response_not_found(response_id), exchange)
        return self._ok(exchange, _ENCODER.encode(Deleted(id=response_id, object="response", deleted=True)))

    def input_items(self, request: Request[Any, Any, Any], response_id: str) -> PlannedReply:
        exchange, refused = self._openai.start(request)
        if refused is not None:
            return refused
        query = request.query_params
        try:
            limit = _limit(query.get("limit"))
            order = query.get("order") or "desc"
            if order not in ("asc", "desc"):
                raise invalid_value("order", order, ("asc", "desc"))
        except OpenAIError as error:
            return self._openai.refuse(error, exchange)
        stored = self._state.responses.get(response_id)
        if stored is None:
            return self._openai.refuse(response_not_found(response_id), exchange)
        items = list(stored.input_items if order == "asc" else reversed(stored.input_items))
        after = query.get("after")
        if after is not None:
            position = next((index for index, item in enumerate(items) if item.get("id") == after), None)
            items = [] if position is None else items[position + 1 :]
        page = items[:limit]
        listing = ItemList(
            object="list",
            data=page,
            first_id=page[0]["id"] if page else None,
            last_id=page[-1]["id"] if page else None,
            has_more=len(items) > limit,
        )
        return self._ok(exchange, _ENCODER.encode(listing))


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_ITEMS_LIMIT
    try:
        value = int(raw)
    except ValueError:
        raise OpenAIError(
            "Invalid type for 'limit': expected an integer, but got a string instead.",
            param="limit",
            code="invalid_type",
        ) from None
    if value < 1:
        raise OpenAIError(
            f"Invalid 'limit': integer below minimum value. Expected a value >= 1, but got {value} instead.",
            param="limit",
            code="integer_below_min_value",
        )
    if value > MAX_ITEMS_LIMIT:
        raise OpenAIError(
            f"Invalid 'limit': integer above maximum value. Expected a value <= {MAX_ITEMS_LIMIT}, but got "
            f"{value} instead.",
            param="limit",
            code="integer_above_max_value",
        )
    return value

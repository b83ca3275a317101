"""Answering Anthropic requests: headers first (`x-api-key`, `anthropic-version`), then messages,
token counts and model listings, every error in Anthropic's envelope with a `request-id`."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request

from fake_providers.anthropic import models
from fake_providers.anthropic.dialect import AnthropicDialect
from fake_providers.anthropic.render import message_body, message_frames
from fake_providers.anthropic.request import (
    AnthropicError,
    MessagesRequest,
    parse_count_request,
    parse_messages_request,
)
from fake_providers.anthropic.thinking import Extras
from fake_providers.anthropic.wire import ErrorDetail, TokenCount
from fake_providers.behaviour import Behaviour, resolve_behaviour
from fake_providers.catalogue import find_model
from fake_providers.composer import Completion, compose, input_tokens
from fake_providers.exchange import Exchange
from fake_providers.fault_plans import error_plan, plan_answer
from fake_providers.faults import ErrorKind, UnknownFault
from fake_providers.openai.service import bearer_key
from fake_providers.reply import PlannedReply, ReplyPlan
from fake_providers.state import FakeState

_DECODER = msgspec.json.Decoder()
MISSING_KEY = "x-api-key header is required"
MISSING_VERSION = "anthropic-version: header is required"
ID_LENGTH = 22


class AnthropicService:
    """One per app; serves `/anthropic/v1`."""

    def __init__(self, state: FakeState) -> None:
        self._state = state
        self.dialect = AnthropicDialect(state.ids.now)

    def _reply(self, plan: ReplyPlan) -> PlannedReply:
        return PlannedReply(plan, self._state.replies)

    def refuse(self, error: AnthropicError, exchange: Exchange) -> PlannedReply:
        answer = self.dialect.error_with(
            error.status, ErrorDetail(type=error.type, message=error.message), exchange
        )
        return self._reply(
            ReplyPlan(status=answer.status, headers=tuple(answer.headers), parts=(answer.body,))
        )

    def _start(self, request: Request[Any, Any, Any]) -> tuple[Exchange, PlannedReply | None]:
        # `x-api-key`, or `Authorization: Bearer` (what anthropic SDK 2.x sends for `api_key`).
        key = request.headers.get("x-api-key", "").strip() or (bearer_key(request) or "")
        exchange = Exchange(
            request_id=self._state.ids.prefixed("req_011C", ID_LENGTH), model="", api_key=key or None
        )
        if not key:
            return exchange, self.refuse(
                AnthropicError(MISSING_KEY, type="authentication_error", status=401), exchange
            )
        if not request.headers.get("anthropic-version", "").strip():
            return exchange, self.refuse(AnthropicError(MISSING_VERSION), exchange)
        return exchange, None

    async def count_tokens(self, request: Request[Any, Any, Any]) -> PlannedReply:
        """`{"input_tokens": N}`: the same count a message's usage reports for that prompt.
        Checked like a message (without `max_tokens`); takes no script step."""
        exchange, refused = self._start(request)
        if refused is not None:
            return refused
        try:
            body = _DECODER.decode(await request.body())
        except msgspec.DecodeError:
            return self.refuse(
                AnthropicError("There was an error parsing the body of your request as JSON."), exchange
            )
        try:
            parsed = parse_count_request(body)
        except AnthropicError as error:
            return self.refuse(error, exchange)
        exchange.model = parsed.model
        answer = msgspec.json.encode(TokenCount(input_tokens=input_tokens(parsed.conversation)))
        headers = tuple(self.dialect.success_headers(exchange, stream=False))
        return self._reply(ReplyPlan(status=200, headers=headers, parts=(answer,)))

    async def messages(self, request: Request[Any, Any, Any]) -> PlannedReply:
        exchange, refused = self._start(request)
        if refused is not None:
            return refused
        try:
            body = _DECODER.decode(await request.body())
        except msgspec.DecodeError:
            return self.refuse(
                AnthropicError("There was an error parsing the body of your request as JSON."), exchange
            )
        try:
            parsed = parse_messages_request(body)
        except AnthropicError as error:
            return self.refuse(error, exchange)
        exchange.model = parsed.model
        exchange.input_tokens = input_tokens(parsed.conversation)
        known = find_model(parsed.model)
        if known is not None:
            exchange.context_window = known.context_window
            if parsed.max_tokens > known.max_output_tokens:
                message = (
                    f"max_tokens: {parsed.max_tokens} > {known.max_output_tokens}, which is the maximum allowed "
                    f"number of output tokens for {parsed.model}"
                )
                return self.refuse(AnthropicError(message), exchange)
            if exchange.input_tokens > known.context_window:
                return self._reply(error_plan(self.dialect, exchange, ErrorKind.CONTEXT_LENGTH, Behaviour()))
        try:
            behaviour = resolve_behaviour(self._state.scripts, parsed.model)
        except UnknownFault as unknown:
            return self.refuse(AnthropicError(f"fake_providers: {unknown}"), exchange)
        return self._reply(self._answer(parsed, exchange, behaviour))

    def _answer(self, parsed: MessagesRequest, exchange: Exchange, behaviour: Behaviour) -> ReplyPlan:
        ids = self._state.ids
        made: list[tuple[Completion, str]] = []
        extras = _extras(behaviour)

        def completion() -> tuple[Completion, str]:
            if not made:
                composed = compose(
                    parsed.conversation,
                    behaviour.reply,
                    ids,
                    new_call_id=lambda: ids.prefixed("toolu_01", ID_LENGTH),
                )
                made.append((composed, ids.prefixed("msg_01", ID_LENGTH)))
            return made[0]

        return plan_answer(
            self.dialect,
            exchange,
            behaviour,
            stream=parsed.stream,
            render_json=lambda: message_body(*completion(), parsed.model, extras),
            render_stream=lambda: message_frames(*completion(), parsed.model, extras),
        )

    def list_models(self, request: Request[Any, Any, Any]) -> PlannedReply:
        exchange, refused = self._start(request)
        if refused is not None:
            return refused
        query = request.query_params
        try:
            limit = int(query.get("limit") or models.DEFAULT_LIMIT)
        except ValueError:
            return self.refuse(AnthropicError("limit: Input should be a valid integer"), exchange)
        if not 1 <= limit <= models.MAX_LIMIT:
            return self.refuse(
                AnthropicError(f"limit: Input should be between 1 and {models.MAX_LIMIT}"), exchange
            )
        body = models.render_page(limit, query.get("after_id"), query.get("before_id"))
        headers = tuple(self.dialect.success_headers(exchange, stream=False))
        return self._reply(ReplyPlan(status=200, headers=headers, parts=(body,)))

    def get_model(self, request: Request[Any, Any, Any], model_id: str) -> PlannedReply:
        exchange, refused = self._start(request)
        if refused is not None:
            return refused
        body = models.render_one(model_id)
        if body is None:
            exchange.model = model_id
            return self._reply(error_plan(self.dialect, exchange, ErrorKind.MODEL_NOT_FOUND, Behaviour()))
        headers = tuple(self.dialect.success_headers(exchange, stream=False))
        return self._reply(ReplyPlan(status=200, headers=headers, parts=(body,)))


def _extras(behaviour: Behaviour) -> Extras:
    reply = behaviour.reply
    if reply is None:
        return Extras()
    usage = reply.usage
    return Extras(
        thinking=reply.thinking,
        cache_creation_input_tokens=(usage.cache_creation_input_tokens or 0) if usage else 0,
        cache_read_input_tokens=(usage.cache_read_input_tokens or 0) if usage else 0,
    )

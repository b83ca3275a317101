"""Answering OpenAI-style requests: authentication, chat completions, model listings."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request

from fake_providers.behaviour import Behaviour, resolve_behaviour
from fake_providers.catalogue import find_model
from fake_providers.composer import Completion, compose, formatted_reply, input_tokens
from fake_providers.dialect import ErrorAnswer
from fake_providers.exchange import Exchange
from fake_providers.fault_plans import error_plan, plan_answer
from fake_providers.faults import ErrorKind, UnknownFault
from fake_providers.openai import models
from fake_providers.openai.chat_render import ChatIdentity, completion_body, completion_frames
from fake_providers.openai.chat_request import ChatRequest, parse_chat_request, unparseable_body
from fake_providers.openai.dialect import OpenAIDialect
from fake_providers.openai.errors import MISSING_KEY_MESSAGE, ErrorDetail, OpenAIError
from fake_providers.reply import PlannedReply, ReplyPlan
from fake_providers.state import FakeState

_DECODER = msgspec.json.Decoder()


def bearer_key(request: Request[Any, Any, Any]) -> str | None:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    key = key.strip()
    return key if scheme.lower() == "bearer" and key else None


def _plan(answer: ErrorAnswer) -> ReplyPlan:
    return ReplyPlan(status=answer.status, headers=tuple(answer.headers), parts=(answer.body,))


class OpenAIService:
    """One per app; serves `/openai/v1` and every OpenAI-compatible prefix."""

    def __init__(self, state: FakeState) -> None:
        self._state = state
        self.dialect = OpenAIDialect()

    def reply(self, plan: ReplyPlan) -> PlannedReply:
        return PlannedReply(plan, self._state.replies)

    def refuse(self, error: OpenAIError, exchange: Exchange) -> PlannedReply:
        return self.reply(_plan(self.dialect.error_with(error.status, error.detail, exchange)))

    def start(self, request: Request[Any, Any, Any]) -> tuple[Exchange, PlannedReply | None]:
        exchange = Exchange(request_id=self._state.ids.request_id(), model="", api_key=bearer_key(request))
        if self._state.options.require_auth and exchange.api_key is None:
            detail = ErrorDetail(
                message=MISSING_KEY_MESSAGE, type="invalid_request_error", param=None, code=None
            )
            return exchange, self.reply(_plan(self.dialect.error_with(401, detail, exchange)))
        return exchange, None

    async def chat_completions(
        self, request: Request[Any, Any, Any], *, strict_template: bool = False, openai: bool = False
    ) -> PlannedReply:
        """``strict_template``: read the request like a server with a string-only chat template
        (:func:`fake_providers.openai.chat_request.check_strict_template`); ``openai``: like
        OpenAI's own endpoint, which refuses arguments it does not take."""
        exchange, refused = self.start(request)
        if refused is not None:
            return refused
        try:
            body = _DECODER.decode(await request.body())
        except msgspec.DecodeError:
            return self.refuse(unparseable_body(), exchange)
        try:
            chat = parse_chat_request(body, strict_template=strict_template, known_arguments_only=openai)
        except OpenAIError as error:
            return self.refuse(error, exchange)
        exchange.model = chat.model
        exchange.input_tokens = input_tokens(chat.conversation)
        known = find_model(chat.model)
        if known is not None:
            exchange.context_window = known.context_window
            if exchange.input_tokens > known.context_window:
                return self.reply(error_plan(self.dialect, exchange, ErrorKind.CONTEXT_LENGTH, Behaviour()))
        try:
            behaviour = resolve_behaviour(self._state.scripts, chat.model)
        except UnknownFault as unknown:
            return self.refuse(OpenAIError(f"fake_providers: {unknown}", param="model"), exchange)
        return self.reply(self._answer(chat, exchange, behaviour))

    def _answer(self, chat: ChatRequest, exchange: Exchange, behaviour: Behaviour) -> ReplyPlan:
        made: list[tuple[Completion, ChatIdentity]] = []

        def completion() -> tuple[Completion, ChatIdentity]:
            if not made:
                ids = self._state.ids
                identity = ChatIdentity(id=ids.chat_completion_id(), created=ids.created(), model=chat.model)
                scripted = formatted_reply(chat.response_format, chat.conversation, behaviour.reply)
                made.append((compose(chat.conversation, scripted, ids), identity))
            return made[0]

        return plan_answer(
            self.dialect,
            exchange,
            behaviour,
            stream=chat.stream,
            render_json=lambda: completion_body(*completion(), chat.top_logprobs),
            render_stream=lambda: completion_frames(
                *completion(), include_usage=chat.include_usage, top_logprobs=chat.top_logprobs
            ),
        )

    def list_models(self, request: Request[Any, Any, Any]) -> PlannedReply:
        exchange, refused = self.start(request)
        if refused is not None:
            return refused
        headers = tuple(self.dialect.success_headers(exchange, stream=False))
        return self.reply(ReplyPlan(status=200, headers=headers, parts=(models.render_list(),)))

    def get_model(self, request: Request[Any, Any, Any], model_id: str) -> PlannedReply:
        exchange, refused = self.start(request)
        if refused is not None:
            return refused
        body = models.render_one(model_id)
        if body is None:
            exchange.model = model_id
            return self.reply(error_plan(self.dialect, exchange, ErrorKind.MODEL_NOT_FOUND, Behaviour()))
        headers = tuple(self.dialect.success_headers(exchange, stream=False))
        return self.reply(ReplyPlan(status=200, headers=headers, parts=(body,)))

    def invalid_url(self, method: str, path: str) -> ReplyPlan:
        exchange = Exchange(request_id=self._state.ids.request_id(), model="")
        detail = ErrorDetail(
            message=f"Invalid URL ({method} {path})", type="invalid_request_error", param=None, code=None
        )
        return _plan(self.dialect.error_with(404, detail, exchange))

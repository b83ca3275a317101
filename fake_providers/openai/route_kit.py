"""What the fake's other OpenAI routes share (embeddings, completions, moderations, images,
audio, files, batches): the key check, JSON and multipart bodies, and answers planned with the
fault catalogue (a ``fault-...`` model, or a scripted step, applies to every route)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import msgspec
from litestar import Request
from litestar.datastructures import UploadFile

from fake_providers.behaviour import Behaviour, resolve_behaviour
from fake_providers.exchange import Exchange
from fake_providers.fault_plans import plan_answer
from fake_providers.faults import FaultKind, UnknownFault
from fake_providers.openai.chat_request import unparseable_body
from fake_providers.openai.errors import OpenAIError, invalid_type, missing_parameter
from fake_providers.openai.service import OpenAIService
from fake_providers.reply import PlannedReply
from fake_providers.state import FakeState

_DECODER = msgspec.json.Decoder()

ERROR_FAULTS = (FaultKind.HTTP_ERROR, FaultKind.ERROR_200, FaultKind.INBAND)


class Refused(Exception):
    """A request answered with an error before any answer is planned."""

    def __init__(self, reply: PlannedReply) -> None:
        super().__init__("refused")
        self.reply = reply


class Form:
    """A multipart body: text fields and uploaded files."""

    def __init__(self, fields: dict[str, list[str]], files: dict[str, list[tuple[str, str, bytes]]]) -> None:
        self.fields = fields
        self.files = files  # name -> (filename, content type, bytes)

    def text(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[0] if values else None

    def file(self, name: str) -> tuple[str, str, bytes] | None:
        values = self.files.get(name)
        return values[0] if values else None


class RouteKit:
    """One per app, over the OpenAI service (its dialect, ids, scripts and reply tracker)."""

    def __init__(self, service: OpenAIService, state: FakeState) -> None:
        self.service = service
        self.state = state
        self.scripts = state.scripts
        self.ids = state.ids

    def start(self, request: Request[Any, Any, Any]) -> Exchange:
        exchange, refused = self.service.start(request)
        if refused is not None:
            raise Refused(refused)
        return exchange

    def refuse(self, error: OpenAIError, exchange: Exchange) -> Refused:
        return Refused(self.service.refuse(error, exchange))

    async def json(self, request: Request[Any, Any, Any], exchange: Exchange) -> dict[str, Any]:
        try:
            body = _DECODER.decode(await request.body())
        except msgspec.DecodeError:
            raise self.refuse(unparseable_body(), exchange) from None
        if not isinstance(body, dict):
            raise self.refuse(unparseable_body(), exchange)
        return body

    async def form(self, request: Request[Any, Any, Any], exchange: Exchange) -> Form:
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise self.refuse(
                OpenAIError("Expected a multipart/form-data body.", code="invalid_content_type"), exchange
            )
        fields: dict[str, list[str]] = {}
        files: dict[str, list[tuple[str, str, bytes]]] = {}
        form = await request.form()
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                content = await value.read()
                files.setdefault(name, []).append(
                    (value.filename or "", value.content_type or "application/octet-stream", content)
                )
            else:
                fields.setdefault(name, []).append(str(value))
        return Form(fields, files)

    def model(self, value: object, exchange: Exchange, *, required: bool = True) -> str:
        if value is None and not required:
            return ""
        if value is None:
            raise self.refuse(missing_parameter("model"), exchange)
        if not isinstance(value, str):
            raise self.refuse(invalid_type("model", "a string", value), exchange)
        exchange.model = value
        return value

    def behaviour(self, model: str, exchange: Exchange) -> Behaviour:
        try:
            return resolve_behaviour(self.scripts, model)
        except UnknownFault as unknown:
            raise self.refuse(OpenAIError(f"fake_providers: {unknown}", param="model"), exchange) from None

    def answer(
        self,
        exchange: Exchange,
        behaviour: Behaviour,
        *,
        render: Callable[[], bytes],
        content_type: str | None = None,
        stream: Callable[[], Sequence[bytes]] | None = None,
    ) -> PlannedReply:
        """The answer, a fault planned into it; ``content_type`` replaces JSON's on a success."""
        plan = plan_answer(
            self.service.dialect,
            exchange,
            behaviour,
            stream=stream is not None,
            render_json=render,
            render_stream=stream or (lambda: [render()]),
        )
        fault = behaviour.fault
        if (
            content_type is not None
            and plan.status == 200
            and (fault is None or fault.kind not in ERROR_FAULTS)
        ):
            plan = plan.with_headers({"content-type": content_type})
        return self.service.reply(plan)

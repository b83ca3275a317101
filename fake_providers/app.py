"""`create_app`: one fake-provider server, every dialect under its own prefix, all state inside."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Litestar, Request, Response
from litestar.datastructures import State
from litestar.exceptions import HTTPException, MethodNotAllowedException, NotFoundException

from fake_providers.anthropic.request import AnthropicError
from fake_providers.anthropic.service import ID_LENGTH as ANTHROPIC_ID_LENGTH
from fake_providers.anthropic.service import AnthropicService
from fake_providers.clock import Clock
from fake_providers.control import control_handlers
from fake_providers.exchange import Exchange
from fake_providers.openai.service import OpenAIService
from fake_providers.options import FakeOptions
from fake_providers.routes import OPENAI_COMPATIBLE_PREFIXES, dialect_handlers
from fake_providers.state import FakeState

STATE_KEY = "fake_providers"
_ENCODER = msgspec.json.Encoder()


def create_app(options: FakeOptions | None = None, *, clock: Clock | None = None) -> Litestar:
    """A Litestar app serving the fakes. Its `FakeState` is at `app.state["fake_providers"]`.

    `clock` is what the answers' pauses wait on (default: the real clock); see `fake_providers.clock`.
    """
    state = FakeState(options or FakeOptions(), clock)
    openai = OpenAIService(state)
    anthropic = AnthropicService(state)

    def unknown_route(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
        path = request.url.path
        if path.startswith("/anthropic/"):
            refused = anthropic.refuse(
                AnthropicError("Not Found", type="not_found_error", status=404),
                Exchange(request_id=state.ids.prefixed("req_011C", ANTHROPIC_ID_LENGTH), model=""),
            )
            return Response(
                refused.plan.parts[0],
                status_code=404,
                headers=dict(refused.plan.headers[1:]),
                media_type="application/json",
            )
        if not path.startswith(OPENAI_COMPATIBLE_PREFIXES):
            body = {"status_code": exc.status_code, "detail": exc.detail}
            return Response(_ENCODER.encode(body), status_code=exc.status_code, media_type="application/json")
        plan = openai.invalid_url(request.method, "/" + path.lstrip("/").partition("/")[2])
        return Response(
            plan.parts[0],
            status_code=plan.status,
            headers=dict(plan.headers[1:]),
            media_type="application/json",
        )

    return Litestar(
        route_handlers=[*dialect_handlers(state, openai, anthropic), *control_handlers(state)],
        exception_handlers={NotFoundException: unknown_route, MethodNotAllowedException: unknown_route},
        state=State({STATE_KEY: state}),
        openapi_config=None,
        logging_config=None,
    )

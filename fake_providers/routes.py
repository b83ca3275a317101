"""The dialect routes: one prefix per provider, each journaled, each OpenAI-compatible one with chat."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from litestar import Request, Response, delete, get, post
from litestar.handlers import HTTPRouteHandler
from litestar.middleware import DefineMiddleware
from litestar.types import ASGIApp, Middleware

from fake_providers.anthropic.service import AnthropicService
from fake_providers.listings import gemini, groq, llamacpp, lmstudio, mistral, openrouter, vllm
from fake_providers.openai.responses_service import ResponsesService
from fake_providers.openai.service import OpenAIService
from fake_providers.openai.surface import batch_control, surface_handlers
from fake_providers.recording import RecordingMiddleware
from fake_providers.state import FakeState

JSON = "application/json"
_ENCODER = msgspec.json.Encoder()

# Prefixes whose routes speak OpenAI's wire format (errors included), for the unknown-URL answer.
OPENAI_COMPATIBLE_PREFIXES = (
    "/openai/",
    "/openrouter/",
    "/vllm/",
    "/groq/",
    "/mistral/",
    "/lmstudio/",
    "/gemini/",
    "/llamacpp/",
)


def _chat(
    service: OpenAIService,
    prefix: str,
    middleware: list[Middleware],
    *,
    strict_template: bool = False,
    openai: bool = False,
) -> HTTPRouteHandler:
    @post(prefix + "/chat/completions", status_code=200, middleware=middleware)
    async def chat_completions(request: Request[Any, Any, Any]) -> ASGIApp:
        return await service.chat_completions(request, strict_template=strict_template, openai=openai)

    return chat_completions


def _responses(
    service: ResponsesService, prefix: str, middleware: list[Middleware]
) -> list[HTTPRouteHandler]:
    @post(prefix + "/responses", status_code=200, middleware=middleware)
    async def create_response(request: Request[Any, Any, Any]) -> ASGIApp:
        return await service.create(request)

    @post(prefix + "/responses/compact", status_code=200, middleware=middleware)
    async def compact_response(request: Request[Any, Any, Any]) -> ASGIApp:
        return await service.compact(request)

    @post(prefix + "/responses/input_tokens", status_code=200, middleware=middleware)
    async def count_input_tokens(request: Request[Any, Any, Any]) -> ASGIApp:
        return await service.count_input_tokens(request)

    @get(prefix + "/responses/{response_id:str}", sync_to_thread=False, middleware=middleware)
    def retrieve_response(request: Request[Any, Any, Any]) -> ASGIApp:
        return service.retrieve(request, request.path_params["response_id"])

    @delete(
        prefix + "/responses/{response_id:str}", status_code=200, sync_to_thread=False, middleware=middleware
    )
    def delete_response(request: Request[Any, Any, Any]) -> ASGIApp:
        return service.delete(request, request.path_params["response_id"])

    @get(prefix + "/responses/{response_id:str}/input_items", sync_to_thread=False, middleware=middleware)
    def list_input_items(request: Request[Any, Any, Any]) -> ASGIApp:
        return service.input_items(request, request.path_params["response_id"])

    return [
        create_response,
        compact_response,
        count_input_tokens,
        retrieve_response,
        delete_response,
        list_input_items,
    ]


def _anthropic(
    service: AnthropicService, prefix: str, middleware: list[Middleware]
) -> list[HTTPRouteHandler]:
    @post(prefix + "/messages", status_code=200, middleware=middleware)
    async def messages(request: Request[Any, Any, Any]) -> ASGIApp:
        return await service.messages(request)

    @post(prefix + "/messages/count_tokens", status_code=200, middleware=middleware)
    async def count_tokens(request: Request[Any, Any, Any]) -> ASGIApp:
        return await service.count_tokens(request)

    @get(prefix + "/models", sync_to_thread=False, middleware=middleware)
    def list_models(request: Request[Any, Any, Any]) -> ASGIApp:
        return service.list_models(request)

    @get(prefix + "/models/{model_id:str}", sync_to_thread=False, middleware=middleware)
    def get_model(request: Request[Any, Any, Any]) -> ASGIApp:
        return service.get_model(request, request.path_params["model_id"])

    return [messages, count_tokens, list_models, get_model]


def _listing(path: str, render: Callable[[], bytes], middleware: list[Middleware]) -> HTTPRouteHandler:
    body = render()

    @get(path, sync_to_thread=False, middleware=middleware)
    def listing() -> Response[bytes]:
        return Response(body, media_type=JSON)

    return listing


def _single(
    path: str,
    render: Callable[[str], bytes | None],
    missing: Callable[[str], bytes],
    middleware: list[Middleware],
) -> HTTPRouteHandler:
    @get(path, sync_to_thread=False, middleware=middleware)
    def single(request: Request[Any, Any, Any]) -> Response[bytes]:
        model_id: str = request.path_params["model_id"]
        body = render(model_id)
        if body is None:
            return Response(missing(model_id), status_code=404, media_type=JSON)
        return Response(body, media_type=JSON)

    return single


def _gemini_listing(middleware: list[Middleware]) -> HTTPRouteHandler:
    @get("/gemini/v1beta/models", sync_to_thread=False, middleware=middleware)
    def listing(request: Request[Any, Any, Any]) -> Response[bytes]:
        query = request.query_params
        try:
            body = gemini.render_list(query.get("pageSize"), query.get("pageToken"))
        except gemini.BadPage as bad:
            return Response(gemini.bad_page(str(bad)), status_code=400, media_type=JSON)
        return Response(body, media_type=JSON)

    return listing


def _openai_models(
    service: OpenAIService, prefix: str, middleware: list[Middleware]
) -> list[HTTPRouteHandler]:
    @get(prefix + "/models", sync_to_thread=False, middleware=middleware)
    def list_models(request: Request[Any, Any, Any]) -> ASGIApp:
        return service.list_models(request)

    @get(prefix + "/models/{model_id:str}", sync_to_thread=False, middleware=middleware)
    def get_model(request: Request[Any, Any, Any]) -> ASGIApp:
        return service.get_model(request, request.path_params["model_id"])

    return [list_models, get_model]


def _gemini_missing(name: str) -> bytes:
    model = name.removeprefix("models/")
    message = (
        f"models/{model} is not found for API version v1beta, or is not supported for generateContent. "
        "Call ListModels to see the list of available models and their supported methods."
    )
    return _ENCODER.encode({"error": {"code": 404, "message": message, "status": "NOT_FOUND"}})


def _lmstudio_missing(model_id: str) -> bytes:
    return _ENCODER.encode({"error": f"Model '{model_id}' not found"})


def dialect_handlers(
    state: FakeState, service: OpenAIService, anthropic: AnthropicService
) -> list[HTTPRouteHandler]:
    """Every dialect route, journaled. (Plain handlers with full paths: Litestar deep-copies Routers
    when registering them, which would copy the journal the middleware writes to.)"""
    journaled: list[Middleware] = [DefineMiddleware(RecordingMiddleware, journal=state.journal)]
    return [
        _chat(service, "/openai/v1", journaled, openai=True),
        *_responses(ResponsesService(state, service), "/openai/v1", journaled),
        *_anthropic(anthropic, "/anthropic/v1", journaled),
        *_openai_models(service, "/openai/v1", journaled),
        *surface_handlers(state, service, "/openai/v1", journaled),
        batch_control(state.files, state),
        _chat(service, "/openrouter/api/v1", journaled),
        _listing("/openrouter/api/v1/models", openrouter.render_list, journaled),
        _chat(service, "/vllm/v1", journaled),
        *surface_handlers(state, service, "/vllm/v1", journaled),
        _listing("/vllm/v1/models", vllm.render_list, journaled),
        _chat(service, "/groq/openai/v1", journaled),
        _listing("/groq/openai/v1/models", groq.render_list, journaled),
        _chat(service, "/mistral/v1", journaled),
        _listing("/mistral/v1/models", mistral.render_list, journaled),
        _chat(service, "/lmstudio/api/v0", journaled),
        _listing("/lmstudio/api/v0/models", lmstudio.render_list, journaled),
        _single("/lmstudio/api/v0/models/{model_id:str}", lmstudio.render_one, _lmstudio_missing, journaled),
        _chat(service, "/gemini/v1beta/openai", journaled),
        _chat(service, "/llamacpp/v1", journaled, strict_template=True),
        _listing("/llamacpp/v1/models", llamacpp.render_list, journaled),
        _gemini_listing(journaled),
        _single("/gemini/v1beta/models/{model_id:str}", gemini.render_one, _gemini_missing, journaled),
    ]

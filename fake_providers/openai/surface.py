"""The routes of the rest of the OpenAI surface, for a prefix: embeddings, completions,
moderations, images, audio, files and batches; and the control route that advances a batch."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, post
from litestar.handlers import HTTPRouteHandler
from litestar.params import PathParameter
from litestar.types import ASGIApp, Middleware

from fake_providers.openai.embeddings import EmbeddingsService
from fake_providers.openai.files import FilesService
from fake_providers.openai.files_store import FileStore
from fake_providers.openai.legacy import LegacyService
from fake_providers.openai.media import MediaService
from fake_providers.openai.route_kit import RouteKit
from fake_providers.openai.service import OpenAIService
from fake_providers.state import FakeState

_ENCODER = msgspec.json.Encoder()


def surface_handlers(
    state: FakeState, service: OpenAIService, prefix: str, middleware: list[Middleware]
) -> list[HTTPRouteHandler]:
    """Every route of the surface under ``prefix`` (``/openai/v1``, ``/vllm/v1``, ...)."""
    kit = RouteKit(service, state)
    embeddings = EmbeddingsService(kit)
    legacy = LegacyService(kit)
    media = MediaService(kit)
    files = FilesService(kit, state.files)

    def route(method: Literal["GET", "POST", "DELETE"], path: str, call: Any) -> HTTPRouteHandler:
        @HTTPRouteHandler(prefix + path, http_method=method, status_code=200, middleware=middleware)
        async def handler(request: Request[Any, Any, Any]) -> ASGIApp:
            result = call(request, **request.path_params)
            return await result if hasattr(result, "__await__") else result  # type: ignore[no-any-return]

        return handler

    return [
        route("POST", "/embeddings", embeddings.create),
        route("POST", "/completions", legacy.completions),
        route("POST", "/moderations", legacy.moderations),
        route("POST", "/images/generations", media.generations),
        route("POST", "/images/edits", media.edits),
        route("POST", "/images/variations", media.variations),
        route("POST", "/audio/transcriptions", media.transcriptions),
        route("POST", "/audio/translations", media.translations),
        route("POST", "/audio/speech", media.speech),
        route("POST", "/files", files.upload),
        route("GET", "/files", files.list_files),
        route("GET", "/files/{file_id:str}", lambda request, file_id: files.retrieve(request, file_id)),
        route("DELETE", "/files/{file_id:str}", lambda request, file_id: files.delete(request, file_id)),
        route(
            "GET", "/files/{file_id:str}/content", lambda request, file_id: files.content(request, file_id)
        ),
        route("POST", "/batches", files.create_batch),
        route("GET", "/batches", files.list_batches),
        route(
            "GET",
            "/batches/{batch_id:str}",
            lambda request, batch_id: files.retrieve_batch(request, batch_id),
        ),
        route(
            "POST",
            "/batches/{batch_id:str}/cancel",
            lambda request, batch_id: files.cancel_batch(request, batch_id),
        ),
    ]


def batch_control(store: FileStore, state: FakeState) -> HTTPRouteHandler:
    """``POST /_fake/batches/{id}/advance``: the batch one step further (404 when unknown)."""

    @post("/_fake/batches/{batch_id:str}/advance", status_code=200, sync_to_thread=False)
    def advance(batch_id: Annotated[str, PathParameter()]) -> Response[bytes]:
        batch = store.advance(batch_id, state.ids)
        if batch is None:
            return Response(_ENCODER.encode({"error": {"message": f"no batch {batch_id}"}}), status_code=404)
        return Response(_ENCODER.encode(batch), media_type="application/json")

    return advance

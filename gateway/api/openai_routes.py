"""The rest of the OpenAI surface: embeddings, completions, moderations, images, audio, files
and batches.

Every ``POST`` is a hot route (raw ASGI, served before Litestar, like chat); the reads and
deletes of files and batches are Litestar routes over the same request cycle. Other methods on
these paths answer 405 in OpenAI's shape.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Annotated, Any

from litestar import Request, delete, get, post
from litestar.handlers import ASGIRouteHandler
from litestar.handlers import asgi as asgi_route
from litestar.params import PathParameter
from litestar.types import ASGIApp, Receive, Scope, Send

from gateway.api import asgi
from gateway.api.hot_routes import Handler, guarded
from gateway.api.openai import services_of
from gateway.embeddings import endpoint as embeddings
from gateway.errors.client import MethodNotAllowed
from gateway.exchange import ClientChannel
from gateway.openai_routes import batches, files, table
from gateway.services import Services

HOT_ROUTES: dict[str, Handler] = {
    embeddings.ROUTE: embeddings.handle,
    **table.handlers(),
    files.ROUTE: files.upload,
    batches.ROUTE: batches.create,
}

Run = Callable[[Services, ClientChannel], Awaitable[None]]
FileId = Annotated[str, PathParameter()]
BatchId = Annotated[str, PathParameter()]


def _method_not_allowed(scope: Scope) -> MethodNotAllowed:
    return MethodNotAllowed(f"Invalid URL ({scope.get('method')} {scope['path']})", code="method_not_allowed")


async def _serve(scope: Scope, receive: Receive, send: Send, run: Run | None) -> None:
    if run is None:
        await asgi.send_error(send, _method_not_allowed(scope))
        return
    await guarded(run, services_of(scope), scope, receive, send)


def _post_only(path: str) -> ASGIRouteHandler:
    handler = HOT_ROUTES[path]

    @asgi_route(path, copy_scope=False)
    async def route(scope: Scope, receive: Receive, send: Send) -> None:
        run = handler if scope.get("method") == "POST" else None
        await _serve(scope, receive, send, run)

    return route


def _app(run: Run) -> ASGIApp:
    """The ASGI app a Litestar handler answers with: ``run`` on the shared request cycle."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await guarded(run, services_of(scope), scope, receive, send)

    return app


@get(files.ROUTE)
async def list_files(request: Request[Any, Any, Any]) -> ASGIApp:
    return _app(partial(files.list_files, query=dict(request.query_params)))


@get("/v1/files/{file_id:str}")
async def retrieve_file(file_id: FileId) -> ASGIApp:
    return _app(partial(files.retrieve, file_id=file_id))


@delete("/v1/files/{file_id:str}", status_code=200)
async def delete_file(file_id: FileId) -> ASGIApp:
    return _app(partial(files.delete, file_id=file_id))


@get("/v1/files/{file_id:str}/content")
async def file_content(file_id: FileId) -> ASGIApp:
    return _app(partial(files.content, file_id=file_id))


@get(batches.ROUTE)
async def list_batches(request: Request[Any, Any, Any]) -> ASGIApp:
    return _app(partial(batches.list_batches, query=dict(request.query_params)))


@get("/v1/batches/{batch_id:str}")
async def retrieve_batch(batch_id: BatchId) -> ASGIApp:
    return _app(partial(batches.retrieve, batch_id=batch_id))


@post("/v1/batches/{batch_id:str}/cancel", status_code=200)
async def cancel_batch(batch_id: BatchId) -> ASGIApp:
    return _app(partial(batches.cancel, batch_id=batch_id))


ROUTES = [
    # ``/v1/files`` and ``/v1/batches`` have their GET below (a POST never reaches Litestar).
    *(_post_only(path) for path in HOT_ROUTES if path not in (files.ROUTE, batches.ROUTE)),
    list_files,
    retrieve_file,
    delete_file,
    file_content,
    list_batches,
    retrieve_batch,
    cancel_batch,
]

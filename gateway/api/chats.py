"""``/api/v1/chats``: stateful chats, scoped to the caller's gateway key (see gateway/chats)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, delete, get, post
from litestar.params import PathParameter
from litestar.response import Stream
from redis.exceptions import RedisError

from gateway.api import asgi
from gateway.api.openai import services_of
from gateway.chats import stream
from gateway.chats.engine import ChatEngine
from gateway.chats.errors import ChatApiError, not_found
from gateway.chats.requests import BODY_LIMIT
from gateway.chats.service import Admit, ChatService
from gateway.errors.client import GatewayError
from gateway.exchange.body import parse_count
from gateway.policy.engine import Caller
from gateway.services import Services

ChatId = Annotated[str, PathParameter()]

_ENC = msgspec.json.Encoder()
BASE = "/api/v1/chats"
AnyRequest = Request[Any, Any, Any]
UNAVAILABLE = b'{"message":"Chat storage is unavailable."}'
# A Redis failure is passing: the client may ask again shortly.
UNAVAILABLE_HEADERS = {"retry-after": "1", "x-should-retry": "true"}


ENDPOINT = "/v1/chats"


def _error(status: int, body: bytes, headers: dict[str, str] | None = None) -> Response[bytes]:
    return Response(body, status_code=status, media_type="application/json", headers=headers)


async def _caller(services: Services, request: AnyRequest) -> Caller:
    """The caller, authenticated by the policy (config and admin-created keys; a config key has
    the same ``key_id`` as in the config key ring, so its chats stay visible)."""
    try:
        return await services.policy.authenticate(asgi.presented_key_from_scope(request.scope))
    except GatewayError as exc:
        raise ChatApiError(exc.status_code, str(exc), headers=exc.headers) from None


async def _owner(services: Services, request: AnyRequest) -> str:
    return (await _caller(services, request)).principal.key_id


class Call:
    """One chat request's caller, and the admission of the model work it starts."""

    def __init__(self, services: Services, caller: Caller) -> None:
        self.services = services
        self.caller = caller
        self.owner = caller.principal.key_id
        self.headers: dict[str, str] = {}

    def admission(self, body: bytes) -> Admit:
        """Admits the turn a request queues (model access, limits) and settles at once: the turn
        runs later, maybe on another replica, whose worker charges each step's usage."""

        async def admit(model: str, request_id: str) -> None:
            try:
                ticket = await self.services.policy.admit(
                    self.caller,
                    model=model,
                    body_size=len(body),
                    max_tokens=None,
                    request_id=request_id,
                    endpoint=ENDPOINT,
                )
            except GatewayError as exc:
                raise ChatApiError(exc.status_code, exc.message, exc.code, headers=exc.headers) from None
            self.headers.update(ticket.headers)
            ticket.settle(status=200)

        return admit


def engine_of(scope: Any) -> ChatEngine:
    """The running gateway's chat engine (set by the lifespan beside the services)."""
    engine: ChatEngine = scope["litestar_app"].state.chats
    return engine


def _too_large() -> ChatApiError:
    return ChatApiError(413, "Request body too large.", f"The limit is {BODY_LIMIT} bytes.")


async def _body(request: AnyRequest) -> bytes:
    """The request body, read no further than the limit (a declared length over it is refused
    before anything is read)."""
    declared = request.headers.get("content-length")
    size = parse_count(declared) if declared is not None else None
    if size is not None and size > BODY_LIMIT:
        raise _too_large()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > BODY_LIMIT:
            raise _too_large()
        chunks.append(chunk)
    return b"".join(chunks)


async def _answer_with_body(
    request: AnyRequest, status: int, act: Callable[[ChatService, Call, bytes], Awaitable[object]]
) -> Response[bytes]:
    try:
        body = await _body(request)
    except ChatApiError as exc:
        return _error(exc.status, _ENC.encode(exc.body), exc.headers or None)
    return await _answer(request, status, lambda s, call: act(s, call, body))


async def _answer(
    request: AnyRequest, status: int, act: Callable[[ChatService, Call], Awaitable[object]]
) -> Response[bytes]:
    services = services_of(request.scope)
    try:
        call = Call(services, await _caller(services, request))
        value = await act(engine_of(request.scope).service, call)
    except ChatApiError as exc:
        return _error(exc.status, _ENC.encode(exc.body), exc.headers or None)
    except RedisError:
        return _error(503, UNAVAILABLE, UNAVAILABLE_HEADERS)
    if value is None:
        return Response(b"", status_code=204)
    return Response(
        _ENC.encode(value), status_code=status, media_type="application/json", headers=call.headers or None
    )


@post(BASE, status_code=201)
async def create_chat(request: AnyRequest) -> Response[bytes]:
    return await _answer_with_body(
        request, 201, lambda s, call, body: s.create(call.owner, body, call.admission(body))
    )


@get(BASE)
async def list_chats(request: AnyRequest) -> Response[bytes]:
    async def act(s: ChatService, call: Call) -> object:
        return {"chats": await s.list(call.owner)}

    return await _answer(request, 200, act)


@get(BASE + "/{chat_id:str}")
async def get_chat(request: AnyRequest, chat_id: ChatId) -> Response[bytes]:
    return await _answer(request, 200, lambda s, call: s.get(chat_id, call.owner))


@delete(BASE + "/{chat_id:str}", status_code=200)
async def delete_chat(request: AnyRequest, chat_id: ChatId) -> Response[bytes]:
    return await _answer(request, 204, lambda s, call: s.delete(chat_id, call.owner))


@get(BASE + "/{chat_id:str}/messages")
async def list_messages(request: AnyRequest, chat_id: ChatId) -> Response[bytes]:
    query = {k: v for k, v in request.query_params.items()}
    return await _answer(request, 200, lambda s, call: s.messages(chat_id, call.owner, query))


@post(BASE + "/{chat_id:str}/messages", status_code=200)
async def send_message(request: AnyRequest, chat_id: ChatId) -> Response[bytes]:
    return await _answer_with_body(
        request, 200, lambda s, call, body: s.send(chat_id, call.owner, body, call.admission(body))
    )


@post(BASE + "/{chat_id:str}/interrupt", status_code=200)
async def interrupt_chat(request: AnyRequest, chat_id: ChatId) -> Response[bytes]:
    return await _answer(request, 200, lambda s, call: s.interrupt(chat_id, call.owner))


@post(BASE + "/{chat_id:str}/tool-results", status_code=200)
async def submit_tool_results(request: AnyRequest, chat_id: ChatId) -> Response[bytes]:
    return await _answer_with_body(
        request, 204, lambda s, call, body: s.tool_results(chat_id, call.owner, body)
    )


@get(BASE + "/{chat_id:str}/stream")
async def stream_chat(request: AnyRequest, chat_id: ChatId) -> Response[bytes] | Stream:
    """The chat's events. Refusals (auth, not found, Redis unavailable) come as JSON before the
    stream starts: the snapshot is read before the 200 is sent."""
    services = services_of(request.scope)
    try:
        owner = await _owner(services, request)
        await engine_of(request.scope).service.get(chat_id, owner)
        engine = engine_of(request.scope)
        chunks = stream.events(engine.store, engine.events, chat_id, request.headers.get("last-event-id"))
        try:
            first = await anext(chunks)
        except StopAsyncIteration:  # deleted since
            raise not_found() from None
    except ChatApiError as exc:
        return _error(exc.status, _ENC.encode(exc.body), exc.headers or None)
    except RedisError:
        return _error(503, UNAVAILABLE, UNAVAILABLE_HEADERS)

    async def body() -> AsyncIterator[bytes]:
        yield first
        async for chunk in chunks:
            yield chunk

    return Stream(
        body(),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )


ROUTES = [
    create_chat,
    list_chats,
    get_chat,
    delete_chat,
    list_messages,
    send_message,
    interrupt_chat,
    submit_tool_results,
    stream_chat,
]

"""ASGI middleware that journals each request to a dialect route before the route sees it."""

from __future__ import annotations

from urllib.parse import parse_qsl

from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPRequestEvent, Receive, ReceiveMessage, Scope, Send

from fake_providers.journal import Journal


class RecordingMiddleware:
    def __init__(self, app: ASGIApp, journal: Journal) -> None:
        self._app = app
        self._journal = journal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self._app(scope, receive, send)
            return
        http_scope = scope
        chunks: list[bytes] = []
        pending: list[ReceiveMessage] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                pending.append(message)
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        raw = b"".join(chunks)
        headers: dict[str, str] = {}
        for name, value in http_scope["headers"]:
            key = name.decode("latin-1").lower()
            text = value.decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        query = dict(parse_qsl(http_scope["query_string"].decode("latin-1"), keep_blank_values=True))
        self._journal.record(
            method=http_scope["method"],
            path=http_scope["path"],
            query=query,
            headers=headers,
            raw_body=raw,
        )
        replayed = False

        async def replay() -> ReceiveMessage:
            nonlocal replayed
            if not replayed:
                replayed = True
                body_event: HTTPRequestEvent = {"type": "http.request", "body": raw, "more_body": False}
                return body_event
            if pending:
                return pending.pop(0)
            return await receive()

        await self._app(scope, replay, send)

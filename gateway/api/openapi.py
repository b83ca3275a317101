"""``GET /openapi.json``: the OpenAPI 3.1 document of every route the gateway serves.

The document is written operation by operation (``gateway.api.openapi_ops``) and encoded once
when the app is built; the route serves those bytes. Litestar's own generator is not used: the
proxy routes run on raw ASGI in front of Litestar and the other handlers answer pre-encoded
bytes, so it would describe neither their bodies nor their answers. Where the gateway has a msgspec Struct for a body or an
answer (chats, admin, the model list), its JSON Schema comes from that Struct, so the document
cannot drift from the wire; the proxy bodies are described by what the gateway itself checks
(required fields and their types) and stay open to every other field, which reaches the upstream
untouched. A test holds the document to the routes the app serves.

Errors are described per family: OpenAI's ``{"error": {message, type, param, code}}`` on
``/v1`` and ``/admin/v1``, Anthropic's ``{"type": "error", "error": {...}}`` on
``/v1/messages``, the chat API's ``{"message", "detail"?}`` on ``/api/v1/chats``.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Response, get

from gateway.api.openapi_ops import ERRORS, JSON, PATH, REF, STRUCTS, Op, Schema, operations
from gateway.config import Settings


def _parameters(op: Op) -> list[Schema]:
    params: list[Schema] = [
        {"name": name[1:-1], "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
        for name in op.path.split("/")
        if name.startswith("{")
    ]
    params += [{"name": name, "in": "query", "required": False, "schema": s} for name, s in op.query.items()]
    params += [
        {"name": name, "in": "header", "required": False, "schema": s} for name, s in op.headers.items()
    ]
    return params


def _operation(op: Op) -> Schema:
    responses: Schema = {
        str(status): {
            "description": "OK",
            **({"content": {t: {"schema": s} for t, s in media.items()}} if media else {}),
        }
        for status, media in op.ok.items()
    }
    if op.family != "plain" or op.auth != "none":
        responses["default"] = {
            "description": "An error, in the route's own shape",
            "content": {JSON: {"schema": ERRORS[op.family]}},
        }
    out: Schema = {"summary": op.summary, "operationId": f"{op.method}_{op.path}", "responses": responses}
    if op.auth != "none":
        out["security"] = [{"admin_key" if op.auth == "admin" else "gateway_key": []}]
    if params := _parameters(op):
        out["parameters"] = params
    if op.body is not None:
        out["requestBody"] = {"required": True, "content": {op.body_type: {"schema": op.body}}}
    return out


def document(settings: Settings) -> Schema:
    """The whole document for the gateway built from ``settings``."""
    example = settings.models[0].name if settings.models else "gpt-4o-mini"
    _, components = msgspec.json.schema_components(STRUCTS, ref_template=REF)
    paths: Schema = {}
    for op in operations(example):
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    bearer = {"type": "http", "scheme": "bearer"}
    return {
        "openapi": "3.1.0",
        "info": {"title": "LLM gateway", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "gateway_key": {**bearer, "description": "A gateway key (also as api-key or x-api-key)"},
                "admin_key": {**bearer, "description": "An admin key of the config"},
            },
        },
    }


def route(settings: Settings) -> Any:
    """The ``GET /openapi.json`` handler, serving the document encoded once."""
    body = msgspec.json.encode(document(settings))

    @get(PATH, sync_to_thread=False, include_in_schema=False)
    def openapi_json() -> Response[bytes]:
        return Response(body, media_type=JSON)

    return openapi_json

"""The operations of the OpenAPI document (``gateway.api.openapi``): every route the gateway
serves, its body, its successful answers, its error family and the key it takes.

Where the gateway has a msgspec Struct for a body or an answer (chats, admin, the model list),
the schema is that Struct's; the proxy bodies are described by what the gateway itself checks
(required fields and their types) and stay open to every other field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

from gateway.api.openai import ModelCard, ModelList
from gateway.chats.model import Chat
from gateway.chats.requests import CreateChatRequest, SendMessageRequest, ToolResultsRequest
from gateway.policy.admin import (
    AuditEntry,
    Deleted,
    KeyCreate,
    KeyView,
    Listing,
    Page,
    ResetSpend,
    Rotate,
    SelfView,
    TeamCreate,
    TeamView,
    UsageReport,
)
from gateway.policy.records import KeyRecord, TeamRecord

Schema = dict[str, Any]
Family = Literal["openai", "anthropic", "chats", "plain"]
Auth = Literal["key", "admin", "none"]
PATH = "/openapi.json"
REF = "#/components/schemas/{name}"
OBJECT: Schema = {"type": "object"}
JSON = "application/json"
SSE = "text/event-stream"
MULTIPART = "multipart/form-data"
STRUCTS: list[Any] = [
    ModelCard,
    ModelList,
    Chat,
    CreateChatRequest,
    SendMessageRequest,
    ToolResultsRequest,
    KeyCreate,
    KeyView,
    Page[KeyRecord],
    TeamCreate,
    TeamRecord,
    TeamView,
    Page[TeamRecord],
    Rotate,
    ResetSpend,
    Deleted,
    UsageReport,
    Listing[AuditEntry],
    SelfView,
]


def _ref(struct: Any) -> Schema:
    return {"$ref": REF.format(name=_name(struct))}


def _name(struct: Any) -> str:
    """msgspec's component name of a (possibly generic) Struct."""
    (schema,), _ = msgspec.json.schema_components([struct], ref_template="{name}")
    return str(schema["$ref"])


def _string(**extra: Any) -> Schema:
    return {"type": "string", **extra}


def _nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


ERRORS: dict[Family, Schema] = {
    "openai": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["message", "type", "param", "code"],
                "properties": {
                    "message": _string(),
                    "type": _string(),
                    "param": _nullable(_string()),
                    "code": _nullable(_string()),
                },
            }
        },
    },
    "anthropic": {
        "type": "object",
        "required": ["type", "error"],
        "properties": {
            "type": {"const": "error"},
            "error": {
                "type": "object",
                "required": ["type", "message"],
                "properties": {"type": _string(), "message": _string()},
            },
        },
    },
    "chats": {
        "type": "object",
        "required": ["message"],
        "properties": {"message": _string(), "detail": _string(), "validations": {"type": "array"}},
    },
    "plain": {"type": "string"},
}

# -- request bodies ---------------------------------------------------------------------------
MESSAGE: Schema = {"type": "object", "required": ["role"], "properties": {"role": _string()}}
STREAM: Schema = {"type": "boolean"}


def _body(required: list[str], properties: Schema) -> Schema:
    """An open object: what the gateway checks, every other field passed on."""
    return {"type": "object", "required": required, "properties": properties}


def _model(example: str) -> Schema:
    return _string(minLength=1, examples=[example])


def _multipart(required: list[str], **fields: Schema) -> Schema:
    return _body(required, {name: schema for name, schema in fields.items()})


BINARY = _string(contentMediaType="application/octet-stream")


@dataclass
class Op:
    """One operation: its body, its successful answers, its error family and who may call it."""

    method: str
    path: str
    summary: str
    family: Family = "openai"
    auth: Auth = "key"
    body: Schema | None = None
    body_type: str = JSON
    ok: dict[int, dict[str, Schema]] = field(default_factory=lambda: {200: {JSON: OBJECT}})
    query: dict[str, Schema] = field(default_factory=dict)
    headers: dict[str, Schema] = field(default_factory=dict)


def operations(model: str) -> list[Op]:
    """Every operation the gateway serves (``model``: the example of a model name)."""
    m = _model(model)
    json_or_sse = {200: {JSON: OBJECT, SSE: _string()}}
    page = {"limit": {"type": "integer", "minimum": 1}, "after": _string()}
    listing = {**page, "order": {"enum": ["asc", "desc"]}}
    ops = [
        Op(
            "post",
            "/v1/chat/completions",
            "Create a chat completion",
            body=_body(
                ["model", "messages"],
                {
                    "model": m,
                    "messages": {"type": "array", "minItems": 1, "items": MESSAGE},
                    "stream": STREAM,
                    "stream_options": {"type": "object"},
                },
            ),
            ok=json_or_sse,
        ),
        Op(
            "post",
            "/v1/responses",
            "Create a response",
            body=_body(
                ["model"],
                {
                    "model": m,
                    "input": {"anyOf": [_string(), {"type": "array", "items": OBJECT}]},
                    "instructions": _string(),
                    "previous_response_id": _string(pattern="^[A-Za-z0-9_-]+$"),
                    "stream": STREAM,
                    "store": {"type": "boolean"},
                    "background": {"type": "boolean"},
                    "metadata": {"type": "object", "maxProperties": 16, "additionalProperties": _string()},
                    "service_tier": _string(),
                },
            ),
            ok=json_or_sse,
        ),
        Op(
            "post",
            "/v1/responses/compact",
            "Compact a conversation into a new chain root",
            body=_body(["model"], {"model": m, "previous_response_id": _string()}),
        ),
        Op(
            "post",
            "/v1/responses/input_tokens",
            "Count a Responses request's input tokens",
            body=_body(["model"], {"model": m}),
        ),
        Op(
            "get",
            "/v1/responses/{response_id}",
            "Retrieve a response",
            query={"stream": _string(), "starting_after": {"type": "integer", "minimum": 0}},
            ok=json_or_sse,
        ),
        Op("delete", "/v1/responses/{response_id}", "Delete a response"),
        Op("get", "/v1/responses/{response_id}/input_items", "List a response's input items", query=listing),
        Op("post", "/v1/responses/{response_id}/cancel", "Cancel a background response"),
        Op("get", "/v1/models", "List the models this key may use", ok={200: {JSON: _ref(ModelList)}}),
        Op("get", "/v1/models/{model_id}", "Retrieve a model", ok={200: {JSON: _ref(ModelCard)}}),
        Op("post", "/v1/embeddings", "Create embeddings", body=_body(["model", "input"], {"model": m})),
        Op(
            "post",
            "/v1/completions",
            "Create a completion",
            body=_body(["model"], {"model": m}),
            ok=json_or_sse,
        ),
        Op("post", "/v1/moderations", "Classify text", body=_body(["input"], {"model": m})),
        Op(
            "post", "/v1/images/generations", "Create an image", body=_body(["prompt"], {"prompt": _string()})
        ),
        Op(
            "post",
            "/v1/images/edits",
            "Edit an image",
            body=_multipart(["image", "prompt"], image=BINARY, prompt=_string(), model=_string()),
            body_type=MULTIPART,
        ),
        Op(
            "post",
            "/v1/images/variations",
            "Vary an image",
            body=_multipart(["image"], image=BINARY, model=_string()),
            body_type=MULTIPART,
        ),
        Op(
            "post",
            "/v1/audio/transcriptions",
            "Transcribe audio",
            body=_multipart(["file", "model"], file=BINARY, model=_string()),
            body_type=MULTIPART,
        ),
        Op(
            "post",
            "/v1/audio/translations",
            "Translate audio to English",
            body=_multipart(["file", "model"], file=BINARY, model=_string()),
            body_type=MULTIPART,
        ),
        Op(
            "post",
            "/v1/audio/speech",
            "Create speech",
            body=_body(["model", "input", "voice"], {"model": m, "input": _string(), "voice": _string()}),
            ok={200: {"application/octet-stream": BINARY, "audio/*": BINARY}},
        ),
        Op(
            "post",
            "/v1/files",
            "Upload a file",
            body=_multipart(["file", "purpose"], file=BINARY, purpose=_string()),
            body_type=MULTIPART,
        ),
        Op("get", "/v1/files", "List files", query={**listing, "purpose": _string()}),
        Op("get", "/v1/files/{file_id}", "Retrieve a file"),
        Op("delete", "/v1/files/{file_id}", "Delete a file"),
        Op(
            "get",
            "/v1/files/{file_id}/content",
            "Retrieve a file's content",
            ok={200: {"application/octet-stream": BINARY, JSON: OBJECT}},
        ),
        Op(
            "post",
            "/v1/batches",
            "Create a batch",
            body=_body(
                ["input_file_id", "endpoint", "completion_window"],
                {"input_file_id": _string(), "endpoint": _string(), "completion_window": _string()},
            ),
        ),
        Op("get", "/v1/batches", "List batches", query=page),
        Op("get", "/v1/batches/{batch_id}", "Retrieve a batch"),
        Op("post", "/v1/batches/{batch_id}/cancel", "Cancel a batch"),
        Op(
            "post",
            "/v1/messages",
            "Create a message (Anthropic's Messages API)",
            family="anthropic",
            body=_body(
                ["model", "max_tokens", "messages"],
                {
                    "model": m,
                    "max_tokens": {"type": "integer", "minimum": 1},
                    "messages": {"type": "array", "items": MESSAGE},
                    "stream": STREAM,
                },
            ),
            ok=json_or_sse,
        ),
        Op(
            "post",
            "/v1/messages/count_tokens",
            "Count a message's tokens",
            family="anthropic",
            body=_body(["model", "messages"], {"model": m, "messages": {"type": "array", "items": MESSAGE}}),
        ),
    ]
    ops += _chats() + _admin() + _operations()
    return ops


def _chats() -> list[Op]:
    base = "/api/v1/chats"
    chat = {200: {JSON: _ref(Chat)}}
    return [
        Op(
            "post", base, "Create a chat", "chats", body=_ref(CreateChatRequest), ok={201: {JSON: _ref(Chat)}}
        ),
        Op(
            "get",
            base,
            "List chats",
            "chats",
            ok={200: {JSON: _body(["chats"], {"chats": {"type": "array", "items": _ref(Chat)}})}},
        ),
        Op("get", base + "/{chat_id}", "Retrieve a chat", "chats", ok=chat),
        Op("delete", base + "/{chat_id}", "Delete a chat", "chats", ok={204: {}}),
        Op(
            "get",
            base + "/{chat_id}/messages",
            "List a chat's messages",
            "chats",
            query={
                "limit": {"type": "integer", "minimum": 1, "maximum": 1000},
                "after_id": {"type": "integer", "minimum": 0},
                "before_id": {"type": "integer", "minimum": 0},
            },
        ),
        Op("post", base + "/{chat_id}/messages", "Send a message", "chats", body=_ref(SendMessageRequest)),
        Op("post", base + "/{chat_id}/interrupt", "Interrupt a chat's turn", "chats", ok=chat),
        Op(
            "post",
            base + "/{chat_id}/tool-results",
            "Submit tool results",
            "chats",
            body=_ref(ToolResultsRequest),
            ok={204: {}},
        ),
        Op(
            "get",
            base + "/{chat_id}/stream",
            "Follow a chat's events",
            "chats",
            headers={"last-event-id": _string(pattern="^[0-9]{1,20}-[0-9]{1,20}$")},
            ok={200: {SSE: _string()}},
        ),
    ]


def _admin() -> list[Op]:
    keys, teams = "/admin/v1/keys", "/admin/v1/teams"
    key = {200: {JSON: _ref(KeyView)}}
    usage = {200: {JSON: _ref(UsageReport)}}
    days = {"from": _string(pattern="^[0-9]{8}$"), "to": _string(pattern="^[0-9]{8}$")}
    paging = {"limit": {"type": "integer", "minimum": 1, "maximum": 1000}, "cursor": _string()}

    def admin(method: str, path: str, summary: str, **kwargs: Any) -> Op:
        return Op(method, path, summary, auth="admin", **kwargs)

    return [
        admin("post", keys, "Create a key", body=_ref(KeyCreate), ok={201: {JSON: _ref(KeyView)}}),
        admin(
            "get",
            keys,
            "List keys",
            query={**paging, "team_id": _string(), "status": _string(), "alias": _string()},
            ok={200: {JSON: _ref(Page[KeyRecord])}},
        ),
        admin("get", keys + "/{kid}", "Retrieve a key", ok=key),
        admin("patch", keys + "/{kid}", "Change a key (JSON merge patch)", body=OBJECT, ok=key),
        admin("delete", keys + "/{kid}", "Delete a key", ok={200: {JSON: _ref(Deleted)}}),
        admin("post", keys + "/{kid}/rotate", "Rotate a key's secret", body=_ref(Rotate), ok=key),
        admin("post", keys + "/{kid}/block", "Block a key", ok=key),
        admin("post", keys + "/{kid}/unblock", "Unblock a key", ok=key),
        admin("post", keys + "/{kid}/reset-spend", "Reset a key's spend", body=_ref(ResetSpend), ok=key),
        admin("get", keys + "/{kid}/usage", "A key's usage", query=days, ok=usage),
        admin("post", teams, "Create a team", body=_ref(TeamCreate), ok={201: {JSON: _ref(TeamRecord)}}),
        admin("get", teams, "List teams", query=paging, ok={200: {JSON: _ref(Page[TeamRecord])}}),
        admin("get", teams + "/{tid}", "Retrieve a team", ok={200: {JSON: _ref(TeamView)}}),
        admin("patch", teams + "/{tid}", "Change a team", body=OBJECT, ok={200: {JSON: _ref(TeamRecord)}}),
        admin("delete", teams + "/{tid}", "Delete a team", ok={200: {JSON: _ref(Deleted)}}),
        admin("get", teams + "/{tid}/usage", "A team's usage", query=days, ok=usage),
        admin("get", "/admin/v1/usage", "Usage of the whole gateway", query={**days, "group_by": _string()}),
        admin(
            "get",
            "/admin/v1/audit",
            "The audit trail",
            query={"limit": paging["limit"]},
            ok={200: {JSON: _ref(Listing[AuditEntry])}},
        ),
        Op(
            "get",
            "/admin/v1/self",
            "The calling key's own limits and spend",
            ok={200: {JSON: _ref(SelfView)}},
        ),
    ]


def _operations() -> list[Op]:
    text = {200: {"text/plain": _string()}}
    return [
        Op("get", "/healthz", "The process lives", "plain", auth="none"),
        Op(
            "get",
            "/readyz",
            "Redis and the config are ready",
            "plain",
            auth="none",
            ok={200: {JSON: OBJECT}, 503: {JSON: OBJECT}},
        ),
        Op(
            "get",
            "/metrics",
            "Prometheus metrics",
            "plain",
            auth="none",
            ok={**text, 404: {"text/plain": _string()}},
        ),
        Op("get", PATH, "This document", "plain", auth="none"),
    ]

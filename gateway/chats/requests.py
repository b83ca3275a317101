"""Request bodies of the chat API, decoded and checked field by field, in a fixed order (the
first failing check is the one reported)."""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec

from gateway.chats.errors import ChatApiError, bad_request
from gateway.chats.model import DynamicTool

MAX_DYNAMIC_TOOLS = 250
MAX_SYSTEM_PROMPT = 10_000
MAX_QUEUE = 20
BODY_LIMIT = 256 * 1024
# What every provider accepts as a function name (OpenAI and Anthropic: ^[a-zA-Z0-9_-]{1,64}$).
TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
T = TypeVar("T")


class CreateChatRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    model: str
    message: str
    system_prompt: str | None = None
    title: str | None = None
    dynamic_tools: list[DynamicTool] = []
    mcp_servers: list[str] = []


class SendMessageRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    message: str
    busy_behavior: str = "queue"


class ToolResult(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    tool_call_id: str
    output: Any = msgspec.UNSET
    is_error: bool = False


class ToolResultsRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    results: list[ToolResult] = []


def decode(body: bytes, kind: type[T]) -> T:
    if len(body) > BODY_LIMIT:
        raise ChatApiError(413, "Request body too large.", f"The limit is {BODY_LIMIT} bytes.")
    try:
        return msgspec.json.decode(body, type=kind)
    except RecursionError:
        raise bad_request("Invalid request body.", "JSON is nested too deeply.") from None
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise bad_request("Invalid request body.", str(exc)) from None


def check_create(request: CreateChatRequest, *, known_model: bool, mcp_servers: set[str]) -> None:
    if not request.model:
        raise bad_request("Model is required.")
    if not known_model:
        raise bad_request("Unknown model.", f"Model {request.model!r} is not configured.")
    if not request.message.strip():
        raise bad_request("Message must not be empty.")
    if request.system_prompt is not None and len(request.system_prompt) > MAX_SYSTEM_PROMPT:
        raise bad_request("System prompt exceeds maximum length.")
    for name in request.mcp_servers:
        if name not in mcp_servers:
            raise bad_request("Unknown MCP server.", f"MCP server {name!r} is not configured.")
    if len(request.dynamic_tools) > MAX_DYNAMIC_TOOLS:
        raise bad_request(
            "Too many dynamic tools.", f"At most {MAX_DYNAMIC_TOOLS} dynamic tools are allowed."
        )
    seen: set[str] = set()
    for tool in request.dynamic_tools:
        if not tool.name:
            raise bad_request("Dynamic tool name must not be empty.")
        if tool.name in seen:
            raise bad_request(
                "Duplicate dynamic tool name.", f"Dynamic tool {tool.name!r} is declared twice."
            )
        seen.add(tool.name)
        # Refused here rather than by the provider on every turn.
        if not TOOL_NAME.fullmatch(tool.name):
            raise bad_request(
                "Invalid dynamic tool name.",
                f"Dynamic tool name {tool.name!r} must be 1 to 64 letters, digits, underscores or dashes.",
            )
        if tool.input_schema is not None and not isinstance(tool.input_schema, dict):
            raise bad_request(
                "Invalid dynamic tool input schema.",
                f"The input_schema of dynamic tool {tool.name!r} must be a JSON Schema object.",
            )


def check_send(request: SendMessageRequest) -> None:
    if request.busy_behavior not in ("queue", "interrupt"):
        raise bad_request(
            "Invalid busy_behavior.",
            f'busy_behavior must be "queue" or "interrupt", not {request.busy_behavior!r}.',
        )
    if not request.message.strip():
        raise bad_request("Message must not be empty.")

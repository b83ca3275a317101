"""The stateful chat API's records: chats, messages and their parts, as msgspec Structs.

Field names are the wire names: what the API answers and what Redis holds are the
same encoding, so a stored message is sent to clients without a second conversion.
"""

from __future__ import annotations

import enum
from typing import Any

import msgspec


class ChatStatus(enum.StrEnum):
    WAITING = "waiting"
    PENDING = "pending"
    RUNNING = "running"
    REQUIRES_ACTION = "requires_action"
    ERROR = "error"


class DynamicTool(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A client-executed tool declared at chat creation."""

    name: str
    description: str = ""
    input_schema: Any = None


class Usage(msgspec.Struct, frozen=True, omit_defaults=True):
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    reasoning_tokens: int = 0
    cache_read_tokens: int = 0
    context_limit: int | None = None


class Part(msgspec.Struct, frozen=True, omit_defaults=True):
    """One piece of a message: ``text``, ``reasoning``, ``tool-call`` or ``tool-result``.

    ``args`` and ``result`` are JSON **text** (raw JSON, kept as it came).
    ``created_at`` (RFC 3339) is set on tool calls when the complete call arrived and on
    tool results when execution finished.
    """

    type: str
    text: str | None = None
    tool_call_id: str | None = None
    tool_name: str | None = None
    mcp_server: str | None = None
    args: str | None = None
    args_delta: str | None = None
    result: str | None = None
    is_error: bool = False
    created_at: str | None = None


class Message(msgspec.Struct, frozen=True, omit_defaults=True):
    id: int
    chat_id: str
    role: str  # system | user | assistant | tool
    content: list[Part]
    created_at: str
    model: str | None = None
    usage: Usage | None = None
    # Responses upstreams that store answers: the upstream's response id and the deployment
    # (``provider/upstream model``) that produced it, so a follow-up can chain onto it.
    provider_response_id: str | None = None
    deployment: str | None = None


class QueuedMessage(msgspec.Struct, frozen=True):
    id: str
    content: list[Part]
    created_at: str


class PendingCall(msgspec.Struct, frozen=True):
    """A dynamic tool call waiting for the client's result (``args`` is a JSON string)."""

    tool_call_id: str
    tool_name: str
    args: str


class Chat(msgspec.Struct, frozen=True):
    id: str
    model: str
    status: ChatStatus
    created_at: str
    updated_at: str
    title: str
    system_prompt: str | None
    dynamic_tools: list[DynamicTool]
    mcp_servers: list[str]
    last_error: str | None


def text_part(text: str) -> Part:
    return Part(type="text", text=text)


def message_text(message: Message) -> str:
    return " ".join(p.text for p in message.content if p.type == "text" and p.text)

"""A dialect-neutral view of a generation request: what the fake model reads.

Each dialect parses its own wire format into a `Conversation`; the deterministic composer and the
token estimate work on this view only.
"""

from __future__ import annotations

import enum
from typing import Any

import msgspec


class Role(enum.Enum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


class ToolCallRecord(msgspec.Struct, frozen=True):
    id: str
    name: str
    arguments: str


class Turn(msgspec.Struct, frozen=True, kw_only=True):
    role: Role
    text: str = ""
    tool_calls: tuple[ToolCallRecord, ...] = ()
    tool_call_id: str | None = None  # for TOOL turns: the call this result answers


class ToolSpec(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    description: str = ""
    parameters: Any = None  # a JSON schema, or None when the tool takes no parameters


class ChoiceMode(enum.Enum):
    AUTO = "auto"
    NONE = "none"
    REQUIRED = "required"  # some tool must be called: the fake calls the first one
    FUNCTION = "function"  # this named tool must be called


class ToolChoice(msgspec.Struct, frozen=True):
    mode: ChoiceMode = ChoiceMode.AUTO
    name: str | None = None


class Conversation(msgspec.Struct, frozen=True, kw_only=True):
    turns: tuple[Turn, ...]
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: ToolChoice = ToolChoice()
    max_output_tokens: int | None = None

    def tool(self, name: str) -> ToolSpec | None:
        return next((tool for tool in self.tools if tool.name == name), None)

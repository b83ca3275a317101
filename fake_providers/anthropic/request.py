"""Reading a `POST /v1/messages` body the way Anthropic does: what it refuses, and in which words.

Unknown fields are accepted and ignored. Checks, in order: required fields (`model`, `max_tokens`,
`messages`), the messages (roles, alternation, block shapes, `tool_use.input`, thinking
signatures; a `system` message after the first turn is an instruction, outside alternation), the tools
(`name`, `input_schema`), `tool_choice`, and last the pairing of `tool_use` with `tool_result`.
Messages name their location the way Anthropic's validator does (`messages.1.content.0...`).
The texts for pairing, `tool_use.input` and `input_schema` are captured from real answers; the
field-shape texts follow Anthropic's validator style and are not captured verbatim.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from fake_providers.anthropic.thinking import valid_signature
from fake_providers.conversation import (
    ChoiceMode,
    Conversation,
    Role,
    ToolCallRecord,
    ToolChoice,
    ToolSpec,
    Turn,
)
from fake_providers.validation.anthropic_schema import anthropic_input_schema_error

_ENCODER = msgspec.json.Encoder()
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
ROLES = ("user", "assistant")


class AnthropicError(Exception):
    """A request Anthropic would refuse: `invalid_request_error` and 400 unless told otherwise."""

    def __init__(self, message: str, *, type: str = "invalid_request_error", status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.type = type
        self.status = status


class MessagesRequest(msgspec.Struct, frozen=True, kw_only=True):
    model: str
    max_tokens: int
    conversation: Conversation
    stream: bool


def _required(body: dict[str, Any], key: str) -> Any:
    if key not in body or body[key] is None:
        raise AnthropicError(f"{key}: Field required")
    return body[key]


def _blocks(where: str, content: Any) -> list[Any]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise AnthropicError(f"{where}: Input should be a valid list")
    for index, block in enumerate(content):
        if not isinstance(block, dict):
            raise AnthropicError(f"{where}.{index}: Input should be a valid dictionary")
        if "type" not in block:
            raise AnthropicError(f"{where}.{index}.type: Field required")
    return content


def _result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [
            block.get("text") for block in content if isinstance(block, dict) and block.get("type") == "text"
        ]
        return " ".join(text for text in texts if isinstance(text, str))
    return ""


class _Message(msgspec.Struct, frozen=True):
    role: str
    blocks: list[Any]


def _messages(raw: Any) -> list[_Message]:
    if not isinstance(raw, list):
        raise AnthropicError("messages: Input should be a valid list")
    if not raw:
        raise AnthropicError("messages: at least one message is required")
    parsed: list[_Message] = []
    for index, message in enumerate(raw):
        where = f"messages.{index}"
        if not isinstance(message, dict):
            raise AnthropicError(f"{where}: Input should be a valid dictionary")
        role = message.get("role")
        if role is None:
            raise AnthropicError(f"{where}.role: Field required")
        if role not in ROLES and not (role == "system" and parsed):
            raise AnthropicError(f"{where}.role: Input should be 'user' or 'assistant'")
        if "content" not in message:
            raise AnthropicError(f"{where}.content: Field required")
        if role == "system" and parsed:
            # An instruction between turns (Claude Code 2.1 sends them): text, outside alternation.
            parsed.append(_Message(role=role, blocks=_blocks(f"{where}.content", message["content"])))
            continue
        blocks = _blocks(f"{where}.content", message["content"])
        for position, block in enumerate(blocks):
            if block.get("type") == "thinking" and (role != "assistant" or not valid_signature(block)):
                raise AnthropicError(f"{where}.content.{position}: Invalid `signature` in `thinking` block")
            if block.get("type") == "tool_use":
                if role != "assistant":
                    raise AnthropicError(
                        f"{where}.content.{position}: `tool_use` blocks can only be in assistant messages"
                    )
                for key in ("id", "name"):
                    if not isinstance(block.get(key), str):
                        raise AnthropicError(f"{where}.content.{position}.tool_use.{key}: Field required")
                if not isinstance(block.get("input"), dict):
                    raise AnthropicError(
                        f"{where}.content.{position}.tool_use.input: Input should be a valid dictionary"
                    )
            if block.get("type") == "tool_result":
                if role != "user":
                    raise AnthropicError(
                        f"{where}.content.{position}: `tool_result` blocks can only be in user messages"
                    )
                if not isinstance(block.get("tool_use_id"), str):
                    raise AnthropicError(
                        f"{where}.content.{position}.tool_result.tool_use_id: Field required"
                    )
        turns = [m for m in parsed if m.role != "system"]
        if turns and turns[-1].role == role:
            raise AnthropicError(
                f'messages: roles must alternate between "user" and "assistant", but found multiple "{role}" '
                "roles in a row"
            )
        parsed.append(_Message(role=role, blocks=blocks))
    if parsed[0].role != "user":
        raise AnthropicError('messages: first message must use the "user" role')
    return parsed


def _ids_of(message: _Message, kind: str, key: str) -> list[str]:
    return [block[key] for block in message.blocks if block.get("type") == kind]


def check_pairing(messages: list[_Message]) -> None:
    """Each `tool_use` is answered in the next message; each `tool_result` answers the previous one."""
    for index, message in enumerate(messages):
        if message.role == "user":
            previous = _ids_of(messages[index - 1], "tool_use", "id") if index > 0 else []
            for position, block in enumerate(message.blocks):
                if block.get("type") == "tool_result" and block["tool_use_id"] not in previous:
                    raise AnthropicError(
                        f"messages.{index}.content.{position}: unexpected `tool_use_id` found in `tool_result` "
                        f"blocks: {block['tool_use_id']}. Each `tool_result` block must have a corresponding "
                        "`tool_use` block in the previous message."
                    )
            continue
        calls = _ids_of(message, "tool_use", "id")
        if not calls:
            continue
        following = messages[index + 1] if index + 1 < len(messages) else None
        answered = set(_ids_of(following, "tool_result", "tool_use_id")) if following is not None else set()
        missing = [call for call in calls if call not in answered]
        if missing:
            raise AnthropicError(
                f"messages.{index}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                f"{', '.join(missing)}. Each `tool_use` block must have a corresponding `tool_result` block in "
                "the next message."
            )


def _tools(raw: Any) -> tuple[ToolSpec, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise AnthropicError("tools: Input should be a valid list")
    specs: list[ToolSpec] = []
    for index, tool in enumerate(raw):
        if not isinstance(tool, dict):
            raise AnthropicError(f"tools.{index}: Input should be a valid dictionary")
        if tool.get("type", "custom") != "custom":
            continue  # server tools (web search, ...): accepted, never called by the fake
        where = f"tools.{index}.custom"
        name = tool.get("name")
        if name is None:
            raise AnthropicError(f"{where}.name: Field required")
        if not isinstance(name, str) or not _TOOL_NAME.match(name):
            raise AnthropicError(f"{where}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'")
        if "input_schema" not in tool:
            raise AnthropicError(f"{where}.input_schema: Field required")
        problem = anthropic_input_schema_error(tool["input_schema"])
        if problem is not None:
            raise AnthropicError(f"{where}.{problem}")
        description = tool.get("description")
        specs.append(
            ToolSpec(
                name=name,
                description=description if isinstance(description, str) else "",
                parameters=tool["input_schema"],
            )
        )
    return tuple(specs)


def _tool_choice(raw: Any, tools: tuple[ToolSpec, ...]) -> ToolChoice:
    if raw is None:
        return ToolChoice(ChoiceMode.AUTO if tools else ChoiceMode.NONE)
    if not isinstance(raw, dict):
        raise AnthropicError("tool_choice: Input should be a valid dictionary")
    kind = raw.get("type")
    if kind == "auto":
        return ToolChoice(ChoiceMode.AUTO)
    if kind == "none":
        return ToolChoice(ChoiceMode.NONE)
    if kind == "any":
        return ToolChoice(ChoiceMode.REQUIRED)
    if kind == "tool":
        name = raw.get("name")
        if not isinstance(name, str):
            raise AnthropicError("tool_choice.tool.name: Field required")
        if all(tool.name != name for tool in tools):
            # Our wording: Anthropic's text for an unknown forced tool is not captured.
            raise AnthropicError(f"tool_choice.tool.name: tool '{name}' is not among the provided tools")
        return ToolChoice(ChoiceMode.FUNCTION, name)
    raise AnthropicError(
        "tool_choice: Input tag '"
        + str(kind)
        + "' found using 'type' does not match any of the expected tags: 'auto', 'any', 'tool', 'none'"
    )


def _system(raw: Any) -> str:
    if raw is None:
        return ""
    if isinstance(raw, str):
        return raw
    if isinstance(raw, list):
        return _result_text(raw)
    raise AnthropicError("system: Input should be a valid string")


def _turns(system: str, messages: list[_Message]) -> list[Turn]:
    turns: list[Turn] = [Turn(role=Role.SYSTEM, text=system)] if system else []
    for message in messages:
        texts = [block.get("text") for block in message.blocks if block.get("type") == "text"]
        text = " ".join(entry for entry in texts if isinstance(entry, str))
        if message.role == "system":
            turns.append(Turn(role=Role.SYSTEM, text=text))
            continue
        if message.role == "assistant":
            calls = tuple(
                ToolCallRecord(
                    id=block["id"], name=block["name"], arguments=_ENCODER.encode(block["input"]).decode()
                )
                for block in message.blocks
                if block.get("type") == "tool_use"
            )
            turns.append(Turn(role=Role.ASSISTANT, text=text, tool_calls=calls))
            continue
        for block in message.blocks:
            if block.get("type") == "tool_result":
                turns.append(
                    Turn(
                        role=Role.TOOL,
                        text=_result_text(block.get("content")),
                        tool_call_id=block["tool_use_id"],
                    )
                )
        if text or not any(block.get("type") == "tool_result" for block in message.blocks):
            turns.append(Turn(role=Role.USER, text=text))
    return turns


def parse_count_request(body: Any) -> MessagesRequest:
    """A ``count_tokens`` body: a Messages request without ``max_tokens`` (or ``stream``)."""
    if not isinstance(body, dict):
        raise AnthropicError("Input should be a valid dictionary")
    return parse_messages_request({**body, "max_tokens": 1, "stream": False})


def parse_messages_request(body: Any) -> MessagesRequest:
    """Raises AnthropicError with Anthropic's 400 for anything Anthropic would refuse."""
    if not isinstance(body, dict):
        raise AnthropicError("Input should be a valid dictionary")
    model = _required(body, "model")
    if not isinstance(model, str):
        raise AnthropicError("model: Input should be a valid string")
    max_tokens = _required(body, "max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        raise AnthropicError("max_tokens: Input should be a valid integer")
    if max_tokens < 1:
        raise AnthropicError("max_tokens: Input should be greater than or equal to 1")
    messages = _messages(_required(body, "messages"))
    system = _system(body.get("system"))
    tools = _tools(body.get("tools"))
    tool_choice = _tool_choice(body.get("tool_choice"), tools)
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise AnthropicError("stream: Input should be a valid boolean")
    check_pairing(messages)
    return MessagesRequest(
        model=model,
        max_tokens=max_tokens,
        conversation=Conversation(
            turns=tuple(_turns(system, messages)),
            tools=tools,
            tool_choice=tool_choice,
            max_output_tokens=max_tokens,
        ),
        stream=stream is True,
    )

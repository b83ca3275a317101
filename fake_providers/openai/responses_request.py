"""Reading a `POST /v1/responses` body the way OpenAI does: what it refuses, and in which words.

Unknown fields are accepted and ignored. The request keeps its input as normalized items (plain
JSON values: a string input becomes one user `message` with an `input_text` part), because the store
keeps and replays items, not turns. `conversation_of` turns a list of items into the neutral
`Conversation` the composer reads; `check_tool_outputs` enforces the function-call pairing.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from fake_providers.conversation import (
    ChoiceMode,
    Conversation,
    Role,
    ToolCallRecord,
    ToolChoice,
    ToolSpec,
    Turn,
)
from fake_providers.openai.errors import (
    OpenAIError,
    check_tool_name,
    invalid_type,
    invalid_value,
    missing_parameter,
)
from fake_providers.openai.responses_wire import FunctionToolEcho, Reasoning
from fake_providers.validation.openai_schema import openai_tool_schema_error

MESSAGE_ROLES = ("user", "assistant", "system", "developer")
_ROLE_MAP = {"user": Role.USER, "assistant": Role.ASSISTANT, "system": Role.SYSTEM, "developer": Role.SYSTEM}
_ID = re.compile(r"^[a-zA-Z0-9_-]+$")
MIN_OUTPUT_TOKENS = 16
SERVICE_TIERS = ("auto", "default", "flex", "scale", "priority")
VERBOSITIES = ("low", "medium", "high")
TEXT_PART_TYPES = ("input_text", "output_text", "text")


class ResponsesRequest(msgspec.Struct, frozen=True, kw_only=True):
    model: str
    input: list[Any]  # normalized input items of this request
    instructions: str | None
    tools: tuple[ToolSpec, ...]
    tools_echo: list[Any]
    tool_choice: ToolChoice
    tool_choice_echo: Any
    text_format: dict[str, Any]
    store: bool
    stream: bool
    previous_response_id: str | None
    max_output_tokens: int | None
    temperature: float
    top_p: float
    parallel_tool_calls: bool
    truncation: str
    metadata: dict[str, str]
    user: str | None
    reasoning: Reasoning
    include: tuple[str, ...] = ()
    text_verbosity: str = "medium"
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    top_logprobs: int = 0
    max_tool_calls: int | None = None
    service_tier: str = "default"
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None


def _message(index: int, item: dict[str, Any]) -> dict[str, Any]:
    role = item.get("role")
    if role is None:
        raise missing_parameter(f"input[{index}].role")
    if role not in MESSAGE_ROLES:
        raise invalid_value(f"input[{index}].role", str(role), MESSAGE_ROLES)
    content = item.get("content")
    if content is None:
        raise missing_parameter(f"input[{index}].content")
    if isinstance(content, str):
        part_type = "output_text" if role == "assistant" else "input_text"
        content = [{"type": part_type, "text": content}]
    elif not isinstance(content, list):
        raise invalid_type(f"input[{index}].content", "one of a string or array of objects", content)
    normalized = {key: value for key, value in item.items() if key not in ("type", "role", "content")}
    return {"type": "message", "role": role, "content": content, **normalized}


def _required_string(index: int, item: dict[str, Any], key: str) -> None:
    value = item.get(key)
    if value is None:
        raise missing_parameter(f"input[{index}].{key}")
    if not isinstance(value, str):
        raise invalid_type(f"input[{index}].{key}", "a string", value)


def _item(index: int, item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise invalid_type(f"input[{index}]", "an object", item)
    kind = item.get("type")
    if kind is None or kind == "message":
        return _message(index, item)
    if kind == "function_call":
        for key in ("call_id", "name", "arguments"):
            _required_string(index, item, key)
    elif kind == "function_call_output":
        _required_string(index, item, "call_id")
        output = item.get("output")
        if output is None:
            raise missing_parameter(f"input[{index}].output")
        if not isinstance(output, str | list):
            raise invalid_type(f"input[{index}].output", "one of a string or array of objects", output)
    return dict(item)


def _input(raw: Any) -> list[Any]:
    if raw is None:
        return []
    if isinstance(raw, str):
        return [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": raw}]}]
    if not isinstance(raw, list):
        raise invalid_type("input", "one of a string or array of objects", raw)
    return [_item(index, item) for index, item in enumerate(raw)]


def _tool(index: int, tool: Any) -> tuple[ToolSpec | None, Any]:
    if not isinstance(tool, dict):
        raise invalid_type(f"tools[{index}]", "an object", tool)
    kind = tool.get("type")
    if kind is None:
        raise missing_parameter(f"tools[{index}].type")
    if kind != "function":
        return None, tool  # hosted and custom tools: accepted and echoed, never called by the fake
    name = tool.get("name")
    where = f"tools[{index}].name"
    name = check_tool_name(name, where)
    parameters = tool.get("parameters")
    strict = tool.get("strict")
    # Omitted `strict` means "normalize into strict mode where possible" (OpenAI's documented
    # default for Responses function tools): only an explicit
    # `strict: true` gets the strict checks; the echo says true unless false was sent.
    problem = openai_tool_schema_error(parameters, strict=strict is True)
    if problem is not None:
        raise OpenAIError(
            f"Invalid schema for function '{name}': {problem}",
            param=f"tools[{index}].parameters",
            code="invalid_function_parameters",
        )
    description = tool.get("description")
    description = description if isinstance(description, str) else None
    spec = ToolSpec(name=name, description=description or "", parameters=parameters)
    echo = FunctionToolEcho(
        type="function", name=name, description=description, parameters=parameters, strict=strict is not False
    )
    return spec, echo


def _tools(raw: Any) -> tuple[tuple[ToolSpec, ...], list[Any]]:
    if raw is None:
        return (), []
    if not isinstance(raw, list):
        raise invalid_type("tools", "an array", raw)
    parsed = [_tool(index, tool) for index, tool in enumerate(raw)]
    return tuple(spec for spec, _ in parsed if spec is not None), [echo for _, echo in parsed]


def _tool_choice(raw: Any, tools: tuple[ToolSpec, ...]) -> ToolChoice:
    if raw is None:
        return ToolChoice(ChoiceMode.AUTO if tools else ChoiceMode.NONE)
    if isinstance(raw, str):
        if raw not in ("none", "auto", "required"):
            raise invalid_value("tool_choice", raw, ("none", "auto", "required"))
        return ToolChoice(ChoiceMode(raw))
    if not isinstance(raw, dict):
        raise invalid_type("tool_choice", "one of a string or object", raw)
    kind = raw.get("type")
    if kind == "allowed_tools":
        names = [entry.get("name") for entry in raw.get("tools") or [] if isinstance(entry, dict)]
        if raw.get("mode") == "required" and names and isinstance(names[0], str):
            return ToolChoice(ChoiceMode.FUNCTION, names[0])
        return ToolChoice(ChoiceMode.AUTO)
    if kind != "function":
        return ToolChoice(ChoiceMode.AUTO)  # hosted-tool choices: the fake never calls those
    name = raw.get("name")
    if not isinstance(name, str):
        raise missing_parameter("tool_choice.name")
    if all(tool.name != name for tool in tools):
        # Our wording: the exact OpenAI text for an unknown forced function is not known.
        raise OpenAIError(
            f"Invalid value for 'tool_choice': function '{name}' is not among the provided tools.",
            param="tool_choice",
        )
    return ToolChoice(ChoiceMode.FUNCTION, name)


def _text_format(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {"type": "text"}
    if not isinstance(raw, dict):
        raise invalid_type("text", "an object", raw)
    fmt = raw.get("format")
    if fmt is None:
        return {"type": "text"}
    if not isinstance(fmt, dict):
        raise invalid_type("text.format", "an object", fmt)
    kind = fmt.get("type")
    if kind not in ("text", "json_object", "json_schema"):
        raise invalid_value("text.format.type", str(kind), ("text", "json_object", "json_schema"))
    if kind == "json_schema":
        name = fmt.get("name")
        if name is None:
            raise missing_parameter("text.format.name")
        if "schema" not in fmt:
            raise missing_parameter("text.format.schema")
        problem = openai_tool_schema_error(fmt.get("schema"), strict=fmt.get("strict") is True)
        if problem is not None:
            raise OpenAIError(
                f"Invalid schema for response_format '{name}': {problem}",
                param="text.format.schema",
                code="invalid_json_schema",
            )
        return {
            "type": "json_schema",
            "description": fmt.get("description"),
            "name": name,
            "schema": fmt.get("schema"),
            "strict": fmt.get("strict") is True,
        }
    return dict(fmt)


def _verbosity(raw: Any) -> str:
    verbosity = raw.get("verbosity") if isinstance(raw, dict) else None
    if verbosity is None:
        return "medium"
    if verbosity not in VERBOSITIES:
        raise invalid_value("text.verbosity", str(verbosity), VERBOSITIES)
    return str(verbosity)


def _optional_int(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_type(key, "an integer", value)
    return value


def _optional_string(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid_type(key, "a string", value)
    return value


def _service_tier(raw: Any) -> str:
    """The tier the answer reports: the one asked for, "default" for "auto" or nothing."""
    if raw is None:
        return "default"
    if raw not in SERVICE_TIERS:
        raise invalid_value("service_tier", str(raw), SERVICE_TIERS)
    return "default" if raw == "auto" else str(raw)


def _number(body: dict[str, Any], key: str, default: float) -> float:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid_type(key, "a number", value)
    return float(value)


def _max_output_tokens(raw: Any) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise invalid_type("max_output_tokens", "an integer", raw)
    if raw < MIN_OUTPUT_TOKENS:
        raise OpenAIError(
            "Invalid 'max_output_tokens': integer below minimum value. Expected a value >= "
            f"{MIN_OUTPUT_TOKENS}, but got {raw} instead.",
            param="max_output_tokens",
            code="integer_below_min_value",
        )
    return raw


def _previous_id(body: dict[str, Any]) -> str | None:
    previous = body.get("previous_response_id")
    if previous is None:
        return None
    if not isinstance(previous, str):
        raise invalid_type("previous_response_id", "a string", previous)
    if body.get("conversation") is not None:
        # The combination is invalid (documented); this wording is ours, not captured from OpenAI.
        raise OpenAIError(
            "Mutually exclusive parameters: Ensure you are only providing one of: 'previous_response_id' "
            "or 'conversation'.",
            param=None,
            code="mutually_exclusive_parameters",
        )
    if not _ID.match(previous):
        raise OpenAIError(
            f"Invalid 'previous_response_id': '{previous}'. Expected an ID that contains letters, numbers, "
            "underscores, or dashes, but this value contained additional characters.",
            param="previous_response_id",
            code="invalid_value",
        )
    return previous


# Every argument of OpenAI's ``POST /responses``: the official SDK's create parameters
# (tests/fake_providers/test_responses.py holds the two lists together), the two penalties,
# which the Response object echoes though this SDK does not offer them, and the
# ``client_metadata`` the Codex CLI sends with every request.
RESPONSES_ARGUMENTS = frozenset(
    {
        "frequency_penalty", "presence_penalty", "client_metadata",
        "access_programs", "background", "background_options", "context_management", "conversation",
        "image", "include", "input", "instructions", "max_output_tokens", "max_tool_calls", "metadata",
        "model", "moderation", "parallel_tool_calls", "previous_response_id", "prompt",
        "prompt_cache_key", "prompt_cache_options", "prompt_cache_retention", "reasoning",
        "safety_identifier", "service_tier", "store", "stream", "stream_options", "temperature", "text",
        "tool_choice", "tools", "top_logprobs", "top_p", "truncation", "user",
    }
)  # fmt: skip


def parse_responses_request(body: Any) -> ResponsesRequest:
    """Raises OpenAIError with OpenAI's 400 for anything OpenAI would refuse up front."""
    if not isinstance(body, dict):
        raise invalid_type("body", "an object", body)
    if "response_format" in body:
        raise OpenAIError(
            "Unsupported parameter: 'response_format'. In the Responses API, this parameter has moved to "
            "'text.format'. Try again with the new parameter.",
            param="response_format",
            code="unsupported_parameter",
        )
    for name in body:
        if name not in RESPONSES_ARGUMENTS:
            raise OpenAIError(f"Unknown parameter: '{name}'.", param=name, code="unknown_parameter")
    model = body.get("model")
    if model is None or model == "":
        raise missing_parameter("model")
    if not isinstance(model, str):
        raise invalid_type("model", "a string", model)
    previous = _previous_id(body)
    items = _input(body.get("input"))
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise invalid_type("instructions", "a string", instructions)
    tools, tools_echo = _tools(body.get("tools"))
    tool_choice = _tool_choice(body.get("tool_choice"), tools)
    raw_text = body.get("text")
    text_format = _text_format(raw_text)
    for key in ("stream", "store", "parallel_tool_calls"):
        value = body.get(key)
        if value is not None and not isinstance(value, bool):
            raise invalid_type(key, "a boolean", value)
    truncation = body.get("truncation") or "disabled"
    if truncation not in ("auto", "disabled"):
        raise invalid_value("truncation", str(truncation), ("auto", "disabled"))
    metadata = body.get("metadata")
    reasoning = body.get("reasoning")
    user = body.get("user")
    include = body.get("include")
    if include is not None and not isinstance(include, list):
        raise invalid_type("include", "an array of strings", include)
    return ResponsesRequest(
        model=model,
        input=items,
        instructions=instructions,
        tools=tools,
        tools_echo=tools_echo,
        tool_choice=tool_choice,
        tool_choice_echo=body.get("tool_choice") or "auto",
        text_format=text_format,
        store=body.get("store") is not False,
        stream=body.get("stream") is True,
        previous_response_id=previous,
        max_output_tokens=_max_output_tokens(body.get("max_output_tokens")),
        temperature=_number(body, "temperature", 1.0),
        top_p=_number(body, "top_p", 1.0),
        parallel_tool_calls=body.get("parallel_tool_calls") is not False,
        truncation=str(truncation),
        metadata={str(key): str(value) for key, value in metadata.items()}
        if isinstance(metadata, dict)
        else {},
        user=user if isinstance(user, str) else None,
        reasoning=Reasoning(
            effort=reasoning.get("effort") if isinstance(reasoning, dict) else None,
            summary=reasoning.get("summary") if isinstance(reasoning, dict) else None,
        ),
        include=tuple(str(entry) for entry in include) if isinstance(include, list) else (),
        text_verbosity=_verbosity(raw_text),
        frequency_penalty=_number(body, "frequency_penalty", 0.0),
        presence_penalty=_number(body, "presence_penalty", 0.0),
        top_logprobs=_optional_int(body, "top_logprobs") or 0,
        max_tool_calls=_optional_int(body, "max_tool_calls"),
        service_tier=_service_tier(body.get("service_tier")),
        safety_identifier=_optional_string(body, "safety_identifier"),
        prompt_cache_key=_optional_string(body, "prompt_cache_key"),
        prompt_cache_retention=_optional_string(body, "prompt_cache_retention"),
    )


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [
            part.get("text")
            for part in content
            if isinstance(part, dict) and part.get("type", "input_text") in TEXT_PART_TYPES
        ]
        return " ".join(text for text in texts if isinstance(text, str))
    return ""


def check_tool_outputs(items: list[Any]) -> None:
    """Every function call of the (rebuilt) input has an output after it, and every output a call."""
    open_calls: list[str] = []
    for item in items:
        kind = item.get("type")
        if kind == "function_call":
            open_calls.append(item["call_id"])
        elif kind == "function_call_output":
            call_id = item["call_id"]
            if call_id not in open_calls:
                # Wording as reported for the live API; not captured by us.
                raise OpenAIError(
                    f"No tool call found for function call output with call_id {call_id}.", param="input"
                )
            open_calls.remove(call_id)
    if open_calls:
        raise OpenAIError(f"No tool output found for function call {open_calls[0]}.", param="input")


def conversation_of(items: list[Any], instructions: str | None, request: ResponsesRequest) -> Conversation:
    """The neutral view of `instructions` (this request's only) followed by the rebuilt items."""
    turns: list[Turn] = []
    if instructions:
        turns.append(Turn(role=Role.SYSTEM, text=instructions))
    for item in items:
        kind = item.get("type")
        if kind == "message":
            turns.append(Turn(role=_ROLE_MAP[item["role"]], text=_text_of(item.get("content"))))
        elif kind == "function_call":
            call = ToolCallRecord(id=item["call_id"], name=item["name"], arguments=item["arguments"])
            turns.append(Turn(role=Role.ASSISTANT, tool_calls=(call,)))
        elif kind == "function_call_output":
            turns.append(
                Turn(role=Role.TOOL, text=_text_of(item.get("output")), tool_call_id=item["call_id"])
            )
    return Conversation(
        turns=tuple(turns),
        tools=request.tools,
        tool_choice=request.tool_choice,
        max_output_tokens=request.max_output_tokens,
    )

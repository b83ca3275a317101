"""Reading a Chat Completions request the way OpenAI does: the same checks, the same 400 bodies.

Arguments OpenAI does not take are refused on OpenAI's own endpoint and ignored by the compatible
servers (:func:`check_arguments`). Checks, in order: the body is a JSON object; its arguments; `model`;
`messages` (shape, roles, contents, tool calls); `tools` (names and parameter schemas, strict mode
when `strict: true`); `tool_choice`; `max_completion_tokens`/`max_tokens`; `stream_options`; and
last the pairing of tool calls with tool messages.

With `strict_template` the request is read like a small OpenAI-compatible server whose chat
template takes only strings (llama.cpp's server, several vLLM templates): every message `content`
must be a string or absent (a list of parts, or `content: null` beside `tool_calls`, is a 400), the
`developer` role is a 400, and the output cap is `max_tokens` alone (`max_completion_tokens` is
ignored, as such servers do).
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
from fake_providers.logprobs import MAX_TOP_LOGPROBS
from fake_providers.openai.errors import (
    UNPARSEABLE_BODY_MESSAGE,
    OpenAIError,
    check_tool_name,
    invalid_type,
    invalid_value,
    missing_parameter,
)
from fake_providers.validation.openai_schema import openai_tool_schema_error

ROLES = ("system", "assistant", "user", "function", "tool", "developer")
_ROLE_MAP = {
    "system": Role.SYSTEM,
    "developer": Role.SYSTEM,
    "user": Role.USER,
    "assistant": Role.ASSISTANT,
    "tool": Role.TOOL,
    "function": Role.TOOL,
}


# Every argument OpenAI's Chat Completions endpoint takes (the official SDK's create parameters;
# tests/fake_providers/test_chat_validation.py holds the two lists together).
CHAT_ARGUMENTS = frozenset(
    {
        "audio", "frequency_penalty", "function_call", "functions", "logit_bias", "logprobs",
        "max_completion_tokens", "max_tokens", "messages", "metadata", "modalities", "model",
        "moderation", "n", "parallel_tool_calls", "prediction", "presence_penalty", "prompt_cache_key",
        "prompt_cache_options", "prompt_cache_retention", "reasoning_effort", "response_format",
        "safety_identifier", "seed", "service_tier", "stop", "store", "stream", "stream_options",
        "temperature", "tool_choice", "tools", "top_logprobs", "top_p", "user", "verbosity",
        "web_search_options",
    }
)  # fmt: skip


# OpenAI's reasoning models, which take neither ``max_tokens`` nor a sampling temperature.
REASONING_MODEL = re.compile(r"o\d|gpt-5")


class ChatRequest(msgspec.Struct, frozen=True, kw_only=True):
    model: str
    conversation: Conversation
    stream: bool
    include_usage: bool
    # ``logprobs: true``: how many alternatives each token carries (``top_logprobs``); else None.
    top_logprobs: int | None = None
    # ``response_format`` in the Responses ``text.format`` shape (``{"type", "schema"}``); None: text.
    response_format: dict[str, Any] | None = None


def unparseable_body() -> OpenAIError:
    return OpenAIError(UNPARSEABLE_BODY_MESSAGE)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [part.get("text") for part in content if isinstance(part, dict)]
        return " ".join(part for part in parts if isinstance(part, str))
    return ""


def _tool_calls(index: int, raw: Any) -> tuple[ToolCallRecord, ...]:
    if raw is None:
        return ()
    param = f"messages[{index}].tool_calls"
    if not isinstance(raw, list):
        raise invalid_type(param, "an array", raw)
    calls = []
    for position, call in enumerate(raw):
        where = f"{param}[{position}]"
        if not isinstance(call, dict):
            raise invalid_type(where, "an object", call)
        call_id = call.get("id")
        if call_id is None:
            raise missing_parameter(f"{where}.id")
        if not isinstance(call_id, str):
            raise invalid_type(f"{where}.id", "a string", call_id)
        function = call.get("function")
        if not isinstance(function, dict):
            raise missing_parameter(f"{where}.function")
        name = function.get("name")
        if not isinstance(name, str):
            raise missing_parameter(f"{where}.function.name")
        arguments = function.get("arguments")
        if not isinstance(arguments, str):
            raise missing_parameter(f"{where}.function.arguments")
        calls.append(ToolCallRecord(id=call_id, name=name, arguments=arguments))
    return tuple(calls)


def _turn(index: int, message: Any) -> tuple[Turn, str]:
    if not isinstance(message, dict):
        raise invalid_type(f"messages[{index}]", "an object", message)
    role = message.get("role")
    if role is None:
        raise missing_parameter(f"messages[{index}].role")
    if role not in ROLES:
        raise invalid_value(f"messages[{index}].role", str(role), ROLES)
    content = message.get("content")
    if role != "assistant":
        if "content" not in message:
            raise missing_parameter(f"messages[{index}].content")
        if content is None:
            raise OpenAIError(
                "Invalid value for 'content': expected a string, got null.",
                param=f"messages.[{index}].content",
            )
    if content is not None and not isinstance(content, str | list):
        raise invalid_type(f"messages[{index}].content", "one of a string or array of objects", content)
    tool_call_id = None
    if role == "tool":
        tool_call_id = message.get("tool_call_id")
        if tool_call_id is None:
            raise missing_parameter(f"messages[{index}].tool_call_id")
        if not isinstance(tool_call_id, str):
            raise invalid_type(f"messages[{index}].tool_call_id", "a string", tool_call_id)
    if role == "function":  # the legacy form of a tool result, answering a call by name
        name = message.get("name")
        tool_call_id = name if isinstance(name, str) else None
    calls = _tool_calls(index, message.get("tool_calls")) if role == "assistant" else ()
    turn = Turn(role=_ROLE_MAP[role], text=_text(content), tool_calls=calls, tool_call_id=tool_call_id)
    return turn, role


def _tool(index: int, tool: Any) -> ToolSpec | None:
    if not isinstance(tool, dict):
        raise invalid_type(f"tools[{index}]", "an object", tool)
    if tool.get("type", "function") != "function":
        return None  # custom tools and others: accepted, never called by the fake
    function = tool.get("function")
    if function is None:
        raise missing_parameter(f"tools[{index}].function")
    if not isinstance(function, dict):
        raise invalid_type(f"tools[{index}].function", "an object", function)
    name = function.get("name")
    where = f"tools[{index}].function.name"
    name = check_tool_name(name, where)
    parameters = function.get("parameters")
    if "parameters" in function:
        problem = openai_tool_schema_error(parameters, strict=function.get("strict") is True)
        if problem is not None:
            raise OpenAIError(
                f"Invalid schema for function '{name}': {problem}",
                param=f"tools[{index}].function.parameters",
                code="invalid_function_parameters",
            )
    description = function.get("description")
    return ToolSpec(
        name=name, description=description if isinstance(description, str) else "", parameters=parameters
    )


def _tools(raw: Any) -> tuple[ToolSpec, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise invalid_type("tools", "an array", raw)
    return tuple(spec for index, tool in enumerate(raw) if (spec := _tool(index, tool)) is not None)


def _named(raw: dict[str, Any]) -> str | None:
    function = raw.get("function")
    name = function.get("name") if isinstance(function, dict) else None
    return name if isinstance(name, str) else None


def _tool_choice(raw: Any, tools: tuple[ToolSpec, ...], declared_tools: bool) -> ToolChoice:
    if raw is None:
        return ToolChoice(ChoiceMode.AUTO if tools else ChoiceMode.NONE)
    if not declared_tools:
        raise OpenAIError(
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
            param="tool_choice",
        )
    if isinstance(raw, str):
        if raw not in ("none", "auto", "required"):
            raise invalid_value("tool_choice", raw, ("none", "auto", "required"))
        return ToolChoice(ChoiceMode(raw))
    if not isinstance(raw, dict):
        raise invalid_type("tool_choice", "one of a string or object", raw)
    if raw.get("type") == "allowed_tools":
        allowed = raw.get("allowed_tools")
        if not isinstance(allowed, dict):
            allowed = {}
        names = [_named(entry) for entry in allowed.get("tools") or [] if isinstance(entry, dict)]
        if allowed.get("mode") == "required" and names and names[0] is not None:
            return ToolChoice(ChoiceMode.FUNCTION, names[0])
        return ToolChoice(ChoiceMode.AUTO)
    name = _named(raw)
    if name is None:
        raise missing_parameter("tool_choice.function.name")
    if all(tool.name != name for tool in tools):
        # Our wording: the exact OpenAI text for an unknown forced function is not known.
        raise OpenAIError(
            f"Invalid value for 'tool_choice': function '{name}' is not among the provided tools.",
            param="tool_choice",
        )
    return ToolChoice(ChoiceMode.FUNCTION, name)


STRICT_TEMPLATE_LIMITS = ("max_tokens",)
LIMITS = ("max_completion_tokens", "max_tokens")


def check_strict_template(messages: list[Any]) -> None:
    """What a string-only chat template cannot render, as a 400 naming the message."""
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            continue
        if message.get("role") == "developer":
            raise OpenAIError(
                "This model's chat template has no 'developer' role; send it as 'system'.",
                param=f"messages[{index}].role",
            )
        if "content" not in message:
            continue
        content = message["content"]
        if content is None:
            raise OpenAIError(
                "This model's chat template cannot render 'content': null; leave 'content' out.",
                param=f"messages[{index}].content",
            )
        if not isinstance(content, str):
            raise OpenAIError(
                "This model's chat template takes only a string as 'content'.",
                param=f"messages[{index}].content",
            )


def _max_tokens(body: dict[str, Any], keys: tuple[str, ...] = LIMITS) -> int | None:
    for key in keys:
        value = body.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid_type(key, "an integer", value)
        if value < 1:
            raise OpenAIError(
                f"Invalid '{key}': integer below minimum value. Expected a value >= 1, but got {value} instead.",
                param=key,
                code="integer_below_min_value",
            )
        return value
    return None


def _top_logprobs(body: dict[str, Any]) -> int | None:
    """``top_logprobs`` when ``logprobs`` is true (0 when it is not given); None otherwise."""
    wanted = body.get("logprobs")
    if wanted is not None and not isinstance(wanted, bool):
        raise invalid_type("logprobs", "a boolean", wanted)
    top = body.get("top_logprobs")
    if top is not None:
        if isinstance(top, bool) or not isinstance(top, int):
            raise invalid_type("top_logprobs", "an integer", top)
        if top < 0:
            raise OpenAIError(
                f"Invalid 'top_logprobs': integer below minimum value. Expected a value >= 0, but got {top} "
                "instead.",
                param="top_logprobs",
                code="integer_below_min_value",
            )
        if top > MAX_TOP_LOGPROBS:
            raise OpenAIError(
                "Invalid 'top_logprobs': integer above maximum value. Expected a value <= "
                f"{MAX_TOP_LOGPROBS}, but got {top} instead.",
                param="top_logprobs",
                code="integer_above_max_value",
            )
    return (top or 0) if wanted is True else None


def _response_format(body: dict[str, Any]) -> dict[str, Any] | None:
    """``response_format`` as the composer reads it: ``json_schema`` with its ``schema``, or
    ``json_object``; None for text or none."""
    given = body.get("response_format")
    if not isinstance(given, dict):
        return None
    kind = given.get("type")
    if kind == "json_schema":
        spec = given.get("json_schema")
        return {"type": kind, "schema": spec.get("schema") if isinstance(spec, dict) else None}
    return {"type": kind} if kind == "json_object" else None


def check_tool_pairing(turns: list[Turn], roles: list[str]) -> None:
    """Every tool message answers a call of the assistant message before it; every call is answered."""
    open_index: int | None = None
    unanswered: list[str] = []

    def unanswered_error() -> OpenAIError:
        return OpenAIError(
            "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
            "'tool_call_id'. The following tool_call_ids did not have response messages: "
            + ", ".join(unanswered),
            param=f"messages.[{open_index}].role",
        )

    calls_of_open: set[str] = set()
    for index, (turn, role) in enumerate(zip(turns, roles, strict=True)):
        if role == "tool":
            if open_index is None:
                raise OpenAIError(
                    "Invalid parameter: messages with role 'tool' must be a response to a preceeding message "
                    "with 'tool_calls'.",
                    param=f"messages.[{index}].role",
                )
            if turn.tool_call_id not in calls_of_open:
                raise OpenAIError(
                    f"Invalid parameter: 'tool_call_id' of '{turn.tool_call_id}' not found in 'tool_calls' of "
                    "previous message.",
                    param=f"messages.[{index}].tool_call_id",
                )
            if turn.tool_call_id in unanswered:
                unanswered.remove(turn.tool_call_id)
            continue
        if unanswered:
            raise unanswered_error()
        open_index = None
        if role == "assistant" and turn.tool_calls:
            open_index = index
            calls_of_open = {call.id for call in turn.tool_calls}
            unanswered = [call.id for call in turn.tool_calls]
    if unanswered:
        raise unanswered_error()


def check_arguments(body: dict[str, Any]) -> None:
    """OpenAI's 400 for arguments its Chat Completions endpoint does not take, and for those its
    reasoning models (``o1``, ``o3``, ``o4-mini``, ``gpt-5``...) refuse: ``max_tokens`` and a
    ``temperature`` other than 1."""
    unknown = [name for name in body if name not in CHAT_ARGUMENTS]
    if len(unknown) == 1:
        raise OpenAIError(f"Unrecognized request argument supplied: {unknown[0]}")
    if unknown:
        raise OpenAIError(f"Unrecognized request arguments supplied: {', '.join(unknown)}")
    model = body.get("model")
    if not (isinstance(model, str) and REASONING_MODEL.match(model)):
        return
    if body.get("max_tokens") is not None:
        raise OpenAIError(
            "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
            "'max_completion_tokens' instead.",
            param="max_tokens",
            code="unsupported_parameter",
        )
    temperature = body.get("temperature")
    if temperature is not None and temperature != 1:
        raise OpenAIError(
            f"Unsupported value: 'temperature' does not support {temperature} with this model. Only the "
            "default (1) value is supported.",
            param="temperature",
            code="unsupported_value",
        )


def parse_chat_request(
    body: Any, *, strict_template: bool = False, known_arguments_only: bool = False
) -> ChatRequest:
    """Raises OpenAIError with OpenAI's 400 for anything OpenAI would refuse (and, with
    ``strict_template``, for what a string-only chat template cannot render). Arguments OpenAI
    does not take are refused with ``known_arguments_only`` (OpenAI's own endpoint), ignored
    otherwise (the compatible servers read what they know)."""
    if not isinstance(body, dict):
        raise unparseable_body()
    if known_arguments_only:
        check_arguments(body)
    model = body.get("model")
    if model is None or model == "":
        raise OpenAIError("you must provide a model parameter")
    if not isinstance(model, str):
        raise invalid_type("model", "a string", model)
    messages = body.get("messages")
    if messages is None:
        raise missing_parameter("messages")
    if not isinstance(messages, list):
        raise invalid_type("messages", "an array", messages)
    if not messages:
        raise OpenAIError(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty "
            "array instead.",
            param="messages",
            code="empty_array",
        )
    if strict_template:
        check_strict_template(messages)
    parsed = [_turn(index, message) for index, message in enumerate(messages)]
    turns = [turn for turn, _ in parsed]
    roles = [role for _, role in parsed]
    tools = _tools(body.get("tools"))
    tool_choice = _tool_choice(body.get("tool_choice"), tools, bool(body.get("tools")))
    max_tokens = _max_tokens(body, STRICT_TEMPLATE_LIMITS if strict_template else LIMITS)
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise invalid_type("stream", "a boolean", stream)
    options = body.get("stream_options")
    if options is not None and stream is not True:
        raise OpenAIError(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.", param="stream_options"
        )
    top_logprobs = _top_logprobs(body)
    check_tool_pairing(turns, roles)
    return ChatRequest(
        model=model,
        conversation=Conversation(
            turns=tuple(turns), tools=tools, tool_choice=tool_choice, max_output_tokens=max_tokens
        ),
        stream=stream is True,
        include_usage=isinstance(options, dict) and options.get("include_usage") is True,
        top_logprobs=top_logprobs,
        response_format=_response_format(body),
    )

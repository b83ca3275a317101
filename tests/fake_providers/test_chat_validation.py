"""Requests OpenAI refuses get OpenAI's exact 400 (or 401) bodies."""

from __future__ import annotations

import typing
from typing import Any

import httpx
import openai
import pytest

from fake_providers import FakeOptions
from fake_providers.testing import FakeProviders

CHAT = "/openai/v1/chat/completions"
USER = {"role": "user", "content": "hi"}


def error(message: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}


def call(name: str, call_id: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": "{}"}}


def tool(name: str, parameters: Any, *, strict: bool | None = None) -> dict[str, Any]:
    function: dict[str, Any] = {"name": name, "parameters": parameters}
    if strict is not None:
        function["strict"] = strict
    return {"type": "function", "function": function}


CASES: list[tuple[str, Any, dict[str, Any]]] = [
    (
        "not json",
        b"{not json",
        error(
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
            "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. "
            "If you have trouble figuring out how to fix this, please contact us through our help center at "
            "help.openai.com.)"
        ),
    ),
    ("missing model", {"messages": [USER]}, error("you must provide a model parameter")),
    (
        "missing messages",
        {"model": "gpt-4o-mini"},
        error("Missing required parameter: 'messages'.", "messages", "missing_required_parameter"),
    ),
    (
        "empty messages",
        {"model": "gpt-4o-mini", "messages": []},
        error(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array "
            "instead.",
            "messages",
            "empty_array",
        ),
    ),
    (
        "messages of the wrong type",
        {"model": "gpt-4o-mini", "messages": "hi"},
        error(
            "Invalid type for 'messages': expected an array, but got a string instead.",
            "messages",
            "invalid_type",
        ),
    ),
    (
        "unknown role",
        {"model": "gpt-4o-mini", "messages": [{"role": "bot", "content": "x"}]},
        error(
            "Invalid value: 'bot'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and "
            "'developer'.",
            "messages[0].role",
            "invalid_value",
        ),
    ),
    (
        "null user content",
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": None}]},
        error("Invalid value for 'content': expected a string, got null.", "messages.[0].content"),
    ),
    (
        "user message without content",
        {"model": "gpt-4o-mini", "messages": [{"role": "user"}]},
        error(
            "Missing required parameter: 'messages[0].content'.",
            "messages[0].content",
            "missing_required_parameter",
        ),
    ),
    (
        "tool call without an id",
        {
            "model": "gpt-4o-mini",
            "messages": [
                USER,
                {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "a"}}]},
            ],
        },
        error(
            "Missing required parameter: 'messages[1].tool_calls[0].id'.",
            "messages[1].tool_calls[0].id",
            "missing_required_parameter",
        ),
    ),
    (
        "tool_choice naming an unknown function",
        {
            "model": "gpt-4o-mini",
            "messages": [USER],
            "tools": [tool("known", {"type": "object", "properties": {}})],
            "tool_choice": {"type": "function", "function": {"name": "unknown"}},
        },
        error(
            "Invalid value for 'tool_choice': function 'unknown' is not among the provided tools.",
            "tool_choice",
        ),
    ),
    (
        "tool message without a preceding call",
        {
            "model": "gpt-4o-mini",
            "messages": [USER, {"role": "tool", "tool_call_id": "call_1", "content": "x"}],
        },
        error(
            "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with "
            "'tool_calls'.",
            "messages.[1].role",
        ),
    ),
    (
        "tool message answering an unknown call",
        {
            "model": "gpt-4o-mini",
            "messages": [
                USER,
                {"role": "assistant", "content": None, "tool_calls": [call("a", "call_1")]},
                {"role": "tool", "tool_call_id": "call_9", "content": "x"},
            ],
        },
        error(
            "Invalid parameter: 'tool_call_id' of 'call_9' not found in 'tool_calls' of previous message.",
            "messages.[2].tool_call_id",
        ),
    ),
    (
        "calls without results",
        {
            "model": "gpt-4o-mini",
            "messages": [
                USER,
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [call("a", "call_1"), call("b", "call_2")],
                },
                {"role": "tool", "tool_call_id": "call_2", "content": "x"},
                USER,
            ],
        },
        error(
            "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
            "'tool_call_id'. The following tool_call_ids did not have response messages: call_1",
            "messages.[1].role",
        ),
    ),
    (
        "calls at the end without results",
        {
            "model": "gpt-4o-mini",
            "messages": [
                USER,
                {"role": "assistant", "content": None, "tool_calls": [call("a", "c1"), call("b", "c2")]},
            ],
        },
        error(
            "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
            "'tool_call_id'. The following tool_call_ids did not have response messages: c1, c2",
            "messages.[1].role",
        ),
    ),
    (
        "required: null",
        {
            "model": "gpt-4o-mini",
            "messages": [USER],
            "tools": [tool("ai-sfn", {"type": "object", "required": None})],
        },
        error(
            "Invalid schema for function 'ai-sfn': None is not of type 'array'.",
            "tools[0].function.parameters",
            "invalid_function_parameters",
        ),
    ),
    (
        "properties: [] in a property",
        {
            "model": "gpt-4o-mini",
            "messages": [USER],
            "tools": [
                tool("ok", {"type": "object", "properties": {}}),
                tool("x", {"type": "object", "properties": {"a": []}}),
            ],
        },
        error(
            "Invalid schema for function 'x': [] is not of type 'object', 'boolean'.",
            "tools[1].function.parameters",
            "invalid_function_parameters",
        ),
    ),
    (
        "typeless root",
        {"model": "gpt-4o-mini", "messages": [USER], "tools": [tool("json", {"properties": {}})]},
        error(
            "Invalid schema for function 'json': schema must be a JSON Schema of 'type: \"object\"', got "
            "'type: \"None\"'.",
            "tools[0].function.parameters",
            "invalid_function_parameters",
        ),
    ),
    (
        "array without items",
        {
            "model": "gpt-4o-mini",
            "messages": [USER],
            "tools": [tool("x", {"type": "object", "properties": {"paths": {"type": "array"}}})],
        },
        error(
            "Invalid schema for function 'x': In context=('properties', 'paths'), array schema missing items.",
            "tools[0].function.parameters",
            "invalid_function_parameters",
        ),
    ),
    (
        "strict: a property missing from required",
        {
            "model": "gpt-4o-mini",
            "messages": [USER],
            "tools": [
                tool(
                    "mysql_execute",
                    {
                        "type": "object",
                        "properties": {
                            "sql": {"type": "string"},
                            "params": {"type": "array", "items": {"type": "string"}},
                        },
                        "required": ["sql"],
                        "additionalProperties": False,
                    },
                    strict=True,
                )
            ],
        },
        error(
            "Invalid schema for function 'mysql_execute': In context=(), 'required' is required to be supplied and "
            "to be an array including every key in properties. Missing 'params'.",
            "tools[0].function.parameters",
            "invalid_function_parameters",
        ),
    ),
    (
        "tool name with a space",
        {
            "model": "gpt-4o-mini",
            "messages": [USER],
            "tools": [tool("get weather", {"type": "object", "properties": {}})],
        },
        error(
            "Invalid 'tools[0].function.name': string does not match pattern. Expected a string that matches the "
            "pattern '^[a-zA-Z0-9_-]+$'.",
            "tools[0].function.name",
            "invalid_value",
        ),
    ),
    (
        "tool_choice without tools",
        {"model": "gpt-4o-mini", "messages": [USER], "tool_choice": "auto"},
        error(
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
            "tool_choice",
        ),
    ),
    (
        "stream_options without stream",
        {"model": "gpt-4o-mini", "messages": [USER], "stream_options": {"include_usage": True}},
        error("The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options"),
    ),
    (
        "max_tokens below one",
        {"model": "gpt-4o-mini", "messages": [USER], "max_tokens": 0},
        error(
            "Invalid 'max_tokens': integer below minimum value. Expected a value >= 1, but got 0 instead.",
            "max_tokens",
            "integer_below_min_value",
        ),
    ),
    (
        "unknown fault model",
        {"model": "fault-teapot", "messages": [USER]},
        error("fake_providers: unknown fault 'fault-teapot'", "model"),
    ),
]


@pytest.mark.parametrize(
    ("request_body", "expected"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_refused_requests_get_openais_body(
    http: httpx.Client, request_body: Any, expected: dict[str, Any]
) -> None:
    if isinstance(request_body, bytes):
        response = http.post(CHAT, content=request_body, headers={"content-type": "application/json"})
    else:
        response = http.post(CHAT, json=request_body)
    assert response.status_code == 400
    assert response.json() == expected
    assert response.headers["x-request-id"].startswith("req_")


def test_sdk_raises_bad_request_with_code_and_param(client: openai.OpenAI) -> None:
    tools: Any = [tool("t", {"type": "object", "properties": {"a": {"type": "string"}}}, strict=True)]
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}], tools=tools
        )
    assert raised.value.status_code == 400
    assert raised.value.code == "invalid_function_parameters"
    assert raised.value.param == "tools[0].function.parameters"
    assert raised.value.message == (
        "Error code: 400 - Invalid schema for function 't': In context=(), 'additionalProperties' is required "
        "to be supplied and to be false."
    )
    assert raised.value.request_id == raised.value.response.headers["x-request-id"]


def test_a_refused_request_takes_no_scripted_step(providers: FakeProviders, http: httpx.Client) -> None:
    providers.script([{"fault": "500"}])
    assert http.post(CHAT, json={"model": "gpt-4o-mini"}).status_code == 400
    assert http.post(CHAT, json={"model": "gpt-4o-mini", "messages": [USER]}).status_code == 500


def test_require_auth_answers_openais_401() -> None:
    with (
        FakeProviders(FakeOptions(require_auth=True)) as providers,
        httpx.Client(base_url=providers.base_url) as http,
    ):
        for path, method in ((CHAT, "POST"), ("/openai/v1/models", "GET")):
            refused = http.request(method, path, json={"model": "gpt-4o-mini", "messages": [USER]})
            assert refused.status_code == 401
            assert refused.json() == error(
                "You didn't provide an API key. You need to provide your API key in an Authorization header using "
                "Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) "
                "if you're accessing the API from your browser and are prompted for a username and password. You "
                "can obtain an API key from https://platform.openai.com/account/api-keys."
            )
            assert refused.headers["x-request-id"].startswith("req_")
            empty = http.request(
                method, path, headers={"authorization": "Bearer"}, json={"model": "m", "messages": [USER]}
            )
            assert empty.status_code == 401
        sdk = openai.OpenAI(base_url=providers.openai_base_url, api_key="anything", max_retries=0)
        assert sdk.models.list().data[0].id == "gpt-4o-mini"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"top_k": 5}, "Unrecognized request argument supplied: top_k"),
        ({"top_k": 5, "thinking": {}}, "Unrecognized request arguments supplied: top_k, thinking"),
    ],
)
def test_openai_refuses_arguments_it_does_not_take(
    http: httpx.Client, extra: dict[str, Any], message: str
) -> None:
    answer = http.post(CHAT, json={"model": "gpt-4o-mini", "messages": [USER], **extra})
    assert answer.status_code == 400
    assert answer.json() == error(message)


def test_compatible_servers_ignore_arguments_they_do_not_know(http: httpx.Client) -> None:
    answer = http.post(
        "/vllm/v1/chat/completions",
        json={"model": "meta-llama/Llama-3.1-8B-Instruct", "messages": [USER], "top_k": 5, "min_p": 0.1},
    )
    assert answer.status_code == 200, answer.text


def test_the_arguments_openai_takes_are_the_sdks() -> None:
    from openai.types.chat import completion_create_params

    from fake_providers.openai.chat_request import CHAT_ARGUMENTS

    sdk = set(typing.get_type_hints(completion_create_params.CompletionCreateParamsStreaming))
    assert set(CHAT_ARGUMENTS) == sdk


@pytest.mark.parametrize("model", ["o3", "o4-mini", "gpt-5", "gpt-5-mini"])
def test_reasoning_models_refuse_max_tokens_and_a_temperature(http: httpx.Client, model: str) -> None:
    def ask(**extra: Any) -> httpx.Response:
        return http.post(CHAT, json={"model": model, "messages": [USER], **extra})

    assert ask(max_tokens=50).json() == error(
        "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' "
        "instead.",
        param="max_tokens",
        code="unsupported_parameter",
    )
    assert ask(temperature=0.2).json() == error(
        "Unsupported value: 'temperature' does not support 0.2 with this model. Only the default (1) value "
        "is supported.",
        param="temperature",
        code="unsupported_value",
    )
    assert ask(max_completion_tokens=50, temperature=1).status_code == 200
    assert (
        http.post(CHAT, json={"model": "gpt-4o-mini", "messages": [USER], "max_tokens": 50}).status_code
        == 200
    )

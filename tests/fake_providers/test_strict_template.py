"""The "strict template" persona under `/llamacpp/v1`: a small OpenAI-compatible server whose chat
template takes only strings, knows no `developer` role and caps output with `max_tokens` alone."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from fake_providers.catalogue import CATALOGUE

CHAT = "/llamacpp/v1/chat/completions"
LONG = "one two three four five six seven eight nine ten eleven twelve"


def chat(http: httpx.Client, messages: list[dict[str, Any]], **extra: Any) -> httpx.Response:
    return http.post(CHAT, json={"model": "gemma-3-1b-it", "messages": messages, **extra})


def refusal(message: str, param: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": None}}


def test_string_content_is_answered(http: httpx.Client) -> None:
    answer = chat(http, [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"}])
    assert answer.status_code == 200
    assert answer.json()["choices"][0]["message"]["content"] == "You said: hello"


@pytest.mark.parametrize(
    ("message", "error"),
    [
        (
            {"role": "user", "content": [{"type": "text", "text": "hello"}]},
            refusal("This model's chat template takes only a string as 'content'.", "messages[0].content"),
        ),
        (
            {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
            refusal("This model's chat template takes only a string as 'content'.", "messages[0].content"),
        ),
        (
            {"role": "developer", "content": "Be brief."},
            refusal(
                "This model's chat template has no 'developer' role; send it as 'system'.", "messages[0].role"
            ),
        ),
    ],
)
def test_what_the_template_cannot_render_is_a_400(
    http: httpx.Client, message: dict[str, Any], error: dict[str, Any]
) -> None:
    answer = chat(http, [message, {"role": "user", "content": "hello"}])
    assert (answer.status_code, answer.json()) == (400, error)


CALL = {"id": "call_1", "type": "function", "function": {"name": "now", "arguments": "{}"}}
TOOLS = [
    {"type": "function", "function": {"name": "now", "parameters": {"type": "object", "properties": {}}}}
]


def test_content_null_beside_tool_calls_is_a_400_and_leaving_it_out_works(http: httpx.Client) -> None:
    def history(assistant: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            {"role": "user", "content": "time?"},
            assistant,
            {"role": "tool", "tool_call_id": "call_1", "content": "noon"},
        ]

    refused = chat(http, history({"role": "assistant", "content": None, "tool_calls": [CALL]}), tools=TOOLS)
    assert (refused.status_code, refused.json()) == (
        400,
        refusal(
            "This model's chat template cannot render 'content': null; leave 'content' out.",
            "messages[1].content",
        ),
    )
    answered = chat(http, history({"role": "assistant", "tool_calls": [CALL]}), tools=TOOLS)
    assert answered.status_code == 200
    assert answered.json()["choices"][0]["message"]["content"] == "Tool results: now returned noon"


def test_max_completion_tokens_is_ignored_and_max_tokens_honoured(http: httpx.Client) -> None:
    messages = [{"role": "user", "content": LONG}]
    ignored = chat(http, messages, max_completion_tokens=3).json()["choices"][0]
    assert (ignored["finish_reason"], ignored["message"]["content"]) == ("stop", f"You said: {LONG}")
    capped = chat(http, messages, max_tokens=3).json()["choices"][0]
    assert capped["finish_reason"] == "length"
    both = chat(http, messages, max_completion_tokens=3, max_tokens=3).json()["choices"][0]
    assert both == capped


def test_the_openai_prefix_takes_what_the_template_refuses(http: httpx.Client) -> None:
    messages = [
        {"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
        {"role": "user", "content": [{"type": "text", "text": "hello"}]},
    ]
    assert (
        http.post("/openai/v1/chat/completions", json={"model": "m", "messages": messages}).status_code == 200
    )


def test_listing(http: httpx.Client) -> None:
    body = http.get("/llamacpp/v1/models").json()
    assert body["object"] == "list"
    assert body["data"][0] == {"id": CATALOGUE[0].id, "object": "model", "owned_by": "me", "permissions": []}
    assert len(body["data"]) == len(CATALOGUE)

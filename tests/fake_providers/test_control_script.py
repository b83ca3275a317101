"""The script queue: `POST/GET/DELETE /_fake/script` and `POST /_fake/reset`."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from fake_providers.script import ScriptedReply, ScriptStep
from fake_providers.testing import FakeProviders

CHAT = "/openai/v1/chat/completions"


def ask(http: httpx.Client, model: str, text: str = "hi") -> httpx.Response:
    return http.post(CHAT, json={"model": model, "messages": [{"role": "user", "content": text}]})


def content(response: httpx.Response) -> Any:
    return response.json()["choices"][0]["message"]["content"]


def test_steps_apply_in_order_for_their_times(providers: FakeProviders, http: httpx.Client) -> None:
    providers.script(
        [{"fault": "429", "times": 2}, {"reply": {"text": "first"}}, {"reply": {"text": "second"}}],
        model="gpt-4o-mini",
    )
    assert [ask(http, "gpt-4o-mini").status_code for _ in range(2)] == [429, 429]
    assert content(ask(http, "gpt-4o-mini")) == "first"
    assert content(ask(http, "gpt-4o-mini")) == "second"
    assert content(ask(http, "gpt-4o-mini")) == "You said: hi"


def test_model_queue_comes_before_the_queue_for_all(providers: FakeProviders, http: httpx.Client) -> None:
    providers.script([{"reply": {"text": "any model"}}])
    providers.script([{"reply": {"text": "just gpt-4o"}}], model="gpt-4o")
    assert content(ask(http, "gpt-4o")) == "just gpt-4o"
    assert content(ask(http, "gpt-4o")) == "any model"
    assert content(ask(http, "other")) == "You said: hi"


def test_a_step_for_one_model_leaves_others_alone(providers: FakeProviders, http: httpx.Client) -> None:
    providers.script([{"fault": "500"}], model="gpt-4o")
    assert ask(http, "gpt-4o-mini").status_code == 200
    assert ask(http, "gpt-4o").status_code == 500


def test_times_null_repeats_until_cleared(providers: FakeProviders, http: httpx.Client) -> None:
    providers.script([{"fault": "503", "times": None}])
    assert [ask(http, "m").status_code for _ in range(3)] == [503, 503, 503]
    providers.clear_script()
    assert ask(http, "m").status_code == 200


def test_get_shows_what_is_left(providers: FakeProviders, http: httpx.Client) -> None:
    providers.script(
        [ScriptStep(fault="500", times=3), ScriptStep(reply=ScriptedReply(text="ok"))], model="gpt-4o"
    )
    ask(http, "gpt-4o")
    assert http.get("/_fake/script").json() == {
        "queues": [{"model": "gpt-4o", "steps": [{"fault": "500", "times": 2}, {"reply": {"text": "ok"}}]}]
    }
    assert providers.status()["queued_steps"] == 2
    assert http.delete("/_fake/script").json() == {"queues": []}


def test_script_headers_status_and_body_override_the_answer(
    providers: FakeProviders, http: httpx.Client
) -> None:
    providers.script(
        [
            {
                "fault": "500",
                "status": 418,
                "body": {"error": {"message": "teapot"}},
                "headers": {"x-extra": "1"},
            },
            {"reply": {"text": "fine"}, "headers": {"x-request-id": "req_fixed", "X-Custom": "yes"}},
        ]
    )
    teapot = ask(http, "m")
    assert (teapot.status_code, teapot.json(), teapot.headers["x-extra"]) == (
        418,
        {"error": {"message": "teapot"}},
        "1",
    )
    fine = ask(http, "m")
    assert content(fine) == "fine"
    assert fine.headers["x-request-id"] == "req_fixed"
    assert fine.headers["x-custom"] == "yes"
    assert fine.headers.get_list("x-request-id") == ["req_fixed"]


def test_a_script_overrides_a_fault_model(providers: FakeProviders, http: httpx.Client) -> None:
    providers.script([{"reply": {"text": "rescued"}}], model="fault-500")
    assert content(ask(http, "fault-500")) == "rescued"
    assert ask(http, "fault-500").status_code == 500


def test_a_reply_step_can_carry_a_stream_fault(providers: FakeProviders, client: openai.OpenAI) -> None:
    providers.script([{"fault": "inband", "reply": {"text": "never seen"}}])
    stream = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "x"}], stream=True
    )
    with pytest.raises(openai.APIError):
        list(stream)


def test_multi_turn_script_drives_a_tool_loop(providers: FakeProviders, client: openai.OpenAI) -> None:
    tools: Any = [
        {
            "type": "function",
            "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}},
        }
    ]
    providers.script(
        [
            {"reply": {"tool_calls": [{"name": "lookup", "arguments": {"q": "x"}, "id": "call_a"}]}},
            {"reply": {"text": "done"}},
        ],
        model="gpt-4o-mini",
    )
    first = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "go"}], tools=tools
    )
    assert first.choices[0].finish_reason == "tool_calls"
    assert first.choices[0].message.tool_calls is not None
    [call] = first.choices[0].message.tool_calls
    assert call.type == "function"
    assert (call.id, call.function.arguments) == ("call_a", '{"q":"x"}')
    history: Any = [
        {"role": "user", "content": "go"},
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": "call_a", "content": "found"},
    ]
    second = client.chat.completions.create(model="gpt-4o-mini", messages=history, tools=tools)
    assert second.choices[0].message.content == "done"


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ({"steps": [{"fault": "teapot"}]}, "steps[0].fault: unknown fault 'teapot'"),
        ({"steps": [{"times": 0}]}, "steps[0].times must be at least 1 (or null for every request)"),
        (
            {"steps": [{"reply": {"txt": "typo"}}]},
            "Object contains unknown field `txt` - at `$.steps[0].reply`",
        ),
        ({"model": "m"}, "Object missing required field `steps`"),
        ({"steps": [{"status": 99}]}, "steps[0].status must be an HTTP status"),
    ],
)
def test_invalid_scripts_are_refused(http: httpx.Client, script: dict[str, Any], message: str) -> None:
    response = http.post("/_fake/script", json=script)
    assert (response.status_code, response.json()) == (400, {"error": {"message": message}})
    assert http.get("/_fake/script").json() == {"queues": []}


def test_reset_clears_scripts_and_journal(providers: FakeProviders, http: httpx.Client) -> None:
    providers.script([{"fault": "500"}])
    ask(http, "m", "journaled")
    assert http.post("/_fake/reset").json() == {"reset": True}
    assert providers.requests() == []
    assert ask(http, "m").status_code == 200

"""Chat Completions success paths, driven with the official SDK and checked against the raw wire."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import openai

from fake_providers.ids import system_fingerprint
from fake_providers.testing import FakeProviders, parse_sse

CHAT = "/openai/v1/chat/completions"
USAGE_DETAILS = {
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {
        "reasoning_tokens": 0,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    },
}
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city", "unit"],
        },
    },
}
TIME_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}},
    },
}


def usage(prompt: int, completion: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        **USAGE_DETAILS,
    }


def test_non_streaming_body_is_exact(http: httpx.Client) -> None:
    response = http.post(
        CHAT, json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello there"}]}
    )
    assert response.status_code == 200
    body = response.json()
    assert re.fullmatch(r"chatcmpl-[A-Za-z0-9]{29}", body["id"])
    assert isinstance(body["created"], int)
    assert body == {
        "id": body["id"],
        "object": "chat.completion",
        "created": body["created"],
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "You said: hello there",
                    "refusal": None,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": usage(3, 6),
        "service_tier": "default",
        "system_fingerprint": system_fingerprint("gpt-4o-mini"),
    }
    assert list(body) == [
        "id",
        "object",
        "created",
        "model",
        "choices",
        "usage",
        "service_tier",
        "system_fingerprint",
    ]


def test_headers_are_like_openai(http: httpx.Client) -> None:
    prompt = "x" * 96  # 24 tokens
    response = http.post(
        CHAT, json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}]}
    )
    headers = response.headers
    assert headers["content-type"] == "application/json"
    assert re.fullmatch(r"req_[0-9a-f]{32}", headers["x-request-id"])
    assert headers["openai-processing-ms"].isdigit()
    assert headers["openai-version"] == "2020-10-01"
    assert {name: headers[name] for name in headers if name.startswith("x-ratelimit-")} == {
        "x-ratelimit-limit-requests": "5000",
        "x-ratelimit-limit-tokens": "160000",
        "x-ratelimit-remaining-requests": "4999",
        "x-ratelimit-remaining-tokens": "159976",
        "x-ratelimit-reset-requests": "12ms",
        "x-ratelimit-reset-tokens": "9ms",
    }
    assert headers["content-length"] == str(len(response.content))


def test_sdk_reads_the_answer_and_request_id(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o",
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "ping"}],
    )
    completion = raw.parse()
    assert raw.headers["x-request-id"] == completion._request_id
    assert completion.choices[0].message.content == "You said: ping"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (3, 4)


def test_stream_frames_are_exact(http: httpx.Client) -> None:
    response = http.post(
        CHAT,
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi you"}], "stream": True},
    )
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert "content-length" not in response.headers
    text = response.text
    blocks = text.split("\n\n")
    assert blocks[-2:] == ["data: [DONE]", ""]
    assert all(block.startswith("data: ") and "\n" not in block for block in blocks[:-1])
    chunks = [json.loads(block.removeprefix("data: ")) for block in blocks[:-2]]
    first = chunks[0]
    common = {
        "id": first["id"],
        "object": "chat.completion.chunk",
        "created": first["created"],
        "model": "gpt-4o-mini",
        "service_tier": "default",
        "system_fingerprint": system_fingerprint("gpt-4o-mini"),
    }
    deltas: list[tuple[dict[str, Any], str | None]] = [
        ({"role": "assistant", "content": ""}, None),
        ({"content": "You "}, None),
        ({"content": "said: "}, None),
        ({"content": "hi "}, None),
        ({"content": "you"}, None),
        ({}, "stop"),
    ]
    assert chunks == [
        {**common, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        for delta, finish in deltas
    ]


def test_include_usage_adds_a_final_usage_chunk_and_null_usage_elsewhere(http: httpx.Client) -> None:
    request = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "count me"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    events = parse_sse(http.post(CHAT, json=request).text)
    assert events[-1].data == "[DONE]"
    chunks = [event.json() for event in events[:-1]]
    assert all(chunk["usage"] is None for chunk in chunks[:-1])
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == usage(2, 5)
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    non_streamed = http.post(CHAT, json={"model": "gpt-4o-mini", "messages": request["messages"]}).json()
    assert non_streamed["usage"] == chunks[-1]["usage"]


def test_sdk_stream_reassembles_the_text(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "two"}, {"type": "text", "text": "parts"}]}
        ],
        stream=True,
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "You said: two parts"


def test_forced_function_gets_schema_valid_arguments(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "weather?"}],
        tools=[TIME_TOOL, WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert choice.message.tool_calls is not None
    [call] = choice.message.tool_calls
    assert re.fullmatch(r"call_[A-Za-z0-9]{24}", call.id)
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "example", "unit": "c"}


def test_required_calls_the_first_tool_and_streams_index_keyed_deltas(http: httpx.Client) -> None:
    request = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "weather?"}],
        "tools": [WEATHER_TOOL, TIME_TOOL],
        "tool_choice": "required",
        "stream": True,
    }
    chunks = [event.json() for event in parse_sse(http.post(CHAT, json=request).text)[:-1]]
    deltas = [chunk["choices"][0]["delta"] for chunk in chunks]
    first_call = deltas[0]["tool_calls"][0]
    assert deltas[0] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "index": 0,
                "id": first_call["id"],
                "type": "function",
                "function": {"name": "get_weather", "arguments": ""},
            }
        ],
    }
    fragments = [delta["tool_calls"][0] for delta in deltas[1:-1]]
    assert all(set(fragment) == {"index", "function"} and fragment["index"] == 0 for fragment in fragments)
    arguments = "".join(fragment["function"]["arguments"] for fragment in fragments)
    assert arguments == '{"city":"example","unit":"c"}'
    assert [len(fragment["function"]["arguments"]) for fragment in fragments] == [16, 13]
    assert deltas[-1] == {}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_scripted_parallel_calls_stream_with_indexes(providers: FakeProviders, client: openai.OpenAI) -> None:
    providers.script(
        [{"reply": {"tool_calls": [{"name": "get_weather"}, {"name": "get_time", "id": "call_time"}]}}]
    )
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "both"}],
        tools=[WEATHER_TOOL, TIME_TOOL],
        stream=True,
    )
    calls: dict[int, dict[str, str]] = {}
    for chunk in stream:
        for fragment in chunk.choices[0].delta.tool_calls or []:
            entry = calls.setdefault(fragment.index, {"id": "", "name": "", "arguments": ""})
            entry["id"] += fragment.id or ""
            assert fragment.function is not None
            entry["name"] += fragment.function.name or ""
            entry["arguments"] += fragment.function.arguments or ""
    assert calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"]) == {"city": "example", "unit": "c"}
    assert calls[1] == {"id": "call_time", "name": "get_time", "arguments": '{"zone":"example"}'}


def test_tool_results_reach_the_reply(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "user", "content": "weather and time?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": "{}"},
                    },
                    {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 21}'},
            {"role": "tool", "tool_call_id": "call_2", "content": "12:00"},
        ],
        tools=[WEATHER_TOOL, TIME_TOOL],
    )
    assert (
        completion.choices[0].message.content
        == 'Tool results: get_weather returned {"temp": 21}; get_time returned 12:00'
    )


def test_max_tokens_cuts_the_text_with_finish_reason_length(http: httpx.Client) -> None:
    messages = [{"role": "user", "content": "a fairly long sentence to echo back"}]
    body = http.post(CHAT, json={"model": "gpt-4o-mini", "messages": messages, "max_tokens": 3}).json()
    assert body["choices"][0]["message"]["content"] == "You said: a "
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 3
    streamed = http.post(
        CHAT, json={"model": "gpt-4o-mini", "messages": messages, "max_completion_tokens": 3, "stream": True}
    )
    chunks = [event.json() for event in parse_sse(streamed.text)[:-1]]
    assert "".join(chunk["choices"][0]["delta"].get("content") or "" for chunk in chunks) == "You said: a "
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


def test_scripted_reply_overrides_text_chunks_finish_and_usage(
    providers: FakeProviders, http: httpx.Client
) -> None:
    providers.script(
        [
            {
                "reply": {
                    "chunks": ["Hel", "lo!"],
                    "finish_reason": "content_filter",
                    "usage": {"input_tokens": 100, "output_tokens": 7},
                }
            }
        ],
        model="gpt-4o-mini",
    )
    request = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "x"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    chunks = [event.json() for event in parse_sse(http.post(CHAT, json=request).text)[:-1]]
    assert [chunk["choices"][0]["delta"] for chunk in chunks[:-1]] == [
        {"role": "assistant", "content": ""},
        {"content": "Hel"},
        {"content": "lo!"},
        {},
    ]
    assert chunks[-2]["choices"][0]["finish_reason"] == "content_filter"
    assert chunks[-1]["usage"] == usage(100, 7)


def test_scripted_tool_call_arguments_can_be_verbatim_text(
    providers: FakeProviders, client: openai.OpenAI
) -> None:
    providers.script([{"reply": {"tool_calls": [{"name": "get_weather", "arguments": '{"city": '}]}}])
    completion = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "x"}],
        tools=[WEATHER_TOOL],
    )
    assert completion.choices[0].message.tool_calls is not None
    [call] = completion.choices[0].message.tool_calls
    assert call.type == "function"
    assert call.function.arguments == '{"city": '


def test_unknown_request_fields_are_ignored(http: httpx.Client) -> None:
    request = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "developer", "content": "rules"}, {"role": "user", "content": "ok"}],
        "reasoning_effort": "low",
        "prompt_cache_options": {"anything": True},
        "metadata": {"k": "v"},
    }
    response = http.post(CHAT, json=request)
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "You said: ok"


def test_catalogue_context_window_is_enforced(http: httpx.Client) -> None:
    prompt = "y" * (4097 * 4 + 4)  # 4098 tokens against gpt-3.5-turbo's 4097
    response = http.post(
        CHAT, json={"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": prompt}]}
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "message": "This model's maximum context length is 4097 tokens. However, your messages resulted in "
            "4098 tokens. Please reduce the length of the messages.",
            "type": "invalid_request_error",
            "param": "messages",
            "code": "context_length_exceeded",
        }
    }


def test_every_openai_compatible_prefix_serves_chat(providers: FakeProviders, http: httpx.Client) -> None:
    prefixes = [
        "/openrouter/api/v1",
        "/vllm/v1",
        "/groq/openai/v1",
        "/mistral/v1",
        "/lmstudio/api/v0",
        "/gemini/v1beta/openai",
        "/llamacpp/v1",
    ]
    for prefix in prefixes:
        response = http.post(
            prefix + "/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": prefix}]},
        )
        assert response.status_code == 200, prefix
        assert response.json()["choices"][0]["message"]["content"] == f"You said: {prefix}"
    assert [entry.path for entry in providers.requests()] == [
        prefix + "/chat/completions" for prefix in prefixes
    ]


def test_allowed_tools_required_calls_the_first_allowed(client: openai.OpenAI) -> None:
    choice: Any = {
        "type": "allowed_tools",
        "allowed_tools": {
            "mode": "required",
            "tools": [{"type": "function", "function": {"name": "get_time"}}],
        },
    }
    completion = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "time?"}],
        tools=[WEATHER_TOOL, TIME_TOOL],
        tool_choice=choice,
    )
    assert completion.choices[0].message.tool_calls is not None
    [call] = completion.choices[0].message.tool_calls
    assert call.type == "function"
    assert (call.function.name, call.function.arguments) == ("get_time", '{"zone":"example"}')

"""The official OpenAI SDK against the gateway, with the fake providers behind it."""

from __future__ import annotations

import json

import httpx
import openai
import pydantic
import pytest

from fake_providers.testing import FakeProviders
from tests.conftest import GATEWAY_KEY, GatewayFactory, RunningGateway, base_config

HELLO = [{"role": "user", "content": "Hello there"}]


def only_upstream_request(
    fake: FakeProviders, path: str = "/openai/v1/chat/completions"
) -> dict[str, object]:
    entries = fake.requests(path=path)
    assert len(entries) == 1, [e.path for e in entries]
    body = entries[0].body
    assert isinstance(body, dict)
    return body


def test_non_streaming_reply_usage_and_what_the_upstream_received(
    gateway: RunningGateway, fake: FakeProviders
) -> None:
    client = gateway.openai()
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=HELLO, temperature=0.2
    )
    reply = raw.parse()

    assert reply.choices[0].message.content == "You said: Hello there"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None
    assert reply.usage.prompt_tokens > 0
    assert reply.usage.completion_tokens > 0
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    assert raw.headers["x-request-id"].startswith("req_")
    assert float(raw.headers["x-gateway-overhead-ms"]) >= 0
    assert raw.headers["x-gateway-attempts"] == "1"
    assert raw.headers["x-gateway-provider"] == "fake-openai"

    entry = fake.requests(path="/openai/v1/chat/completions")[0]
    assert entry.body == {"model": "gpt-4o-mini", "messages": HELLO, "temperature": 0.2}
    # The provider's key goes upstream, never the client's gateway key.
    assert entry.headers["authorization"] == "Bearer sk-upstream-openai"
    assert GATEWAY_KEY not in json.dumps(entry.headers)


def test_streaming_with_include_usage(gateway: RunningGateway, fake: FakeProviders) -> None:
    client = gateway.openai()
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini", messages=HELLO, stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "You said: Hello there"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        "stop"
    ]
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None and last.usage.prompt_tokens > 0 and last.usage.completion_tokens > 0
    assert all(c.usage is None for c in chunks[:-1])

    body = only_upstream_request(fake)
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


def test_streaming_relays_bytes_and_ends_with_done(gateway: RunningGateway, fake: FakeProviders) -> None:
    with httpx.Client() as http:
        response = http.post(
            gateway.base_url + "/chat/completions",
            headers={"authorization": f"Bearer {GATEWAY_KEY}"},
            json={"model": "gpt-4o-mini", "messages": HELLO, "stream": True},
        )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.text.endswith("data: [DONE]\n\n")
    frames = [f for f in response.text.split("\n\n") if f]
    assert all(f.startswith("data: ") for f in frames)
    first = json.loads(frames[0].removeprefix("data: "))
    assert first["choices"][0]["delta"]["role"] == "assistant"


@pytest.mark.parametrize("model", ["gpt-4o-mini", "llama"])
def test_logprobs_reach_the_client_whole_and_streamed(gateway: RunningGateway, model: str) -> None:
    client = gateway.openai()
    whole = client.chat.completions.create(model=model, messages=HELLO, logprobs=True, top_logprobs=2)
    content = whole.choices[0].logprobs.content  # type: ignore[union-attr]
    assert content and "".join(entry.token for entry in content) == whole.choices[0].message.content
    assert all(len(entry.top_logprobs) == 2 for entry in content)
    streamed = [
        entry
        for chunk in client.chat.completions.create(
            model=model, messages=HELLO, logprobs=True, top_logprobs=2, stream=True
        )
        if chunk.choices and chunk.choices[0].logprobs is not None
        for entry in chunk.choices[0].logprobs.content or []
    ]
    assert streamed == content


def test_max_tokens_reaches_openai_as_max_completion_tokens(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    config = base_config(fake, redis_url)
    config["models"].append({"name": "thinker", "provider": "fake-openai", "upstream_model": "gpt-5-mini"})
    gw = gateway_factory(config)
    client = gw.openai()
    answer = client.chat.completions.create(model="thinker", messages=HELLO, max_tokens=50)
    assert answer.choices[0].message.content == "You said: Hello there"
    sent = only_upstream_request(fake)
    assert sent["max_completion_tokens"] == 50 and "max_tokens" not in sent
    # What the gateway cannot repair is OpenAI's own refusal, relayed.
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="thinker", messages=HELLO, temperature=0.2)
    assert "Only the default (1) value is supported" in refused.value.message
    # An OpenAI-compatible server keeps the name the client used.
    client.chat.completions.create(model="llama", messages=HELLO, max_tokens=50)
    [vllm] = fake.requests(path="/vllm/v1/chat/completions")
    assert vllm.body["max_tokens"] == 50 and "max_completion_tokens" not in vllm.body  # type: ignore[index,operator]


class Forecast(pydantic.BaseModel):
    city: str
    days: int


@pytest.mark.parametrize("model", ["gpt-4o-mini", "llama"])
def test_structured_output_parses_on_chat_and_responses(gateway: RunningGateway, model: str) -> None:
    client = gateway.openai()
    chat = client.chat.completions.parse(model=model, messages=HELLO, response_format=Forecast)
    assert isinstance(chat.choices[0].message.parsed, Forecast)
    response = client.responses.parse(model=model, input="Hello there", text_format=Forecast)
    assert isinstance(response.output_parsed, Forecast)


def test_forced_tool_call_streams_index_keyed_deltas(gateway: RunningGateway, fake: FakeProviders) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "city": {"type": "string"},
                        "unit": {"type": "string", "enum": ["c", "f"]},
                    },
                    "required": ["city", "unit"],
                },
            },
        }
    ]
    client = gateway.openai()
    choice = {"type": "function", "function": {"name": "get_weather"}}
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=HELLO, tools=tools, tool_choice=choice
    )
    calls = reply.choices[0].message.tool_calls
    assert reply.choices[0].finish_reason == "tool_calls"
    assert calls is not None and len(calls) == 1
    args = json.loads(calls[0].function.arguments)
    assert set(args) == {"city", "unit"} and args["unit"] in ("c", "f")

    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini", messages=HELLO, tools=tools, tool_choice=choice, stream=True
        )
    )
    deltas = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert deltas and all(d.index == 0 for d in deltas)
    assert deltas[0].id and deltas[0].function and deltas[0].function.name == "get_weather"
    streamed_args = "".join(d.function.arguments or "" for d in deltas if d.function)
    assert json.loads(streamed_args) == args  # the fake is deterministic
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        "tool_calls"
    ]
    # The tool definition reached the upstream as sent.
    sent = fake.requests(path="/openai/v1/chat/completions")[-1].body
    assert sent["tools"] == tools


def test_models_list_and_retrieve(gateway: RunningGateway) -> None:
    client = gateway.openai()
    assert [m.id for m in client.models.list()] == ["gpt-4o-mini", "llama"]
    model = client.models.retrieve("llama")
    assert model.id == "llama" and model.object == "model" and model.owned_by == "fake-vllm"
    with pytest.raises(openai.NotFoundError) as info:
        client.models.retrieve("nope")
    assert info.value.code == "model_not_found"


def test_upstream_model_name_and_unknown_fields_pass_through(
    gateway: RunningGateway, fake: FakeProviders
) -> None:
    client = gateway.openai()
    reply = client.chat.completions.create(
        model="llama", messages=HELLO, extra_body={"vendor_option": {"depth": 3}, "top_k": 5}
    )
    assert reply.choices[0].message.content == "You said: Hello there"
    body = only_upstream_request(fake, "/vllm/v1/chat/completions")
    assert body["model"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert body["vendor_option"] == {"depth": 3}
    assert body["top_k"] == 5


@pytest.mark.parametrize(
    "headers",
    [
        {"authorization": f"Bearer {GATEWAY_KEY}"},
        {"api-key": GATEWAY_KEY},
        {"x-api-key": GATEWAY_KEY},
    ],
)
def test_key_headers_sdks_send(gateway: RunningGateway, headers: dict[str, str]) -> None:
    with httpx.Client() as http:
        response = http.post(
            gateway.base_url + "/chat/completions",
            headers=headers,
            json={"model": "gpt-4o-mini", "messages": HELLO},
        )
    assert response.status_code == 200, response.text


def test_wrong_and_missing_keys_get_401_without_reaching_upstream(
    gateway: RunningGateway, fake: FakeProviders
) -> None:
    with pytest.raises(openai.AuthenticationError) as info:
        gateway.openai(api_key="sk-not-a-real-key-000").chat.completions.create(
            model="gpt-4o-mini", messages=HELLO
        )
    assert info.value.status_code == 401
    assert info.value.code == "invalid_api_key"
    assert "sk-test-gateway" not in info.value.message

    with httpx.Client() as http:
        response = http.post(
            gateway.base_url + "/chat/completions", json={"model": "gpt-4o-mini", "messages": HELLO}
        )
        models = http.get(gateway.base_url + "/models")
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "didn't provide an API key" in response.json()["error"]["message"]
    assert models.status_code == 401
    assert [e for e in fake.requests() if e.method == "POST"] == []


def test_client_errors_in_openai_shape(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(base_config(fake, redis_url, server={"max_body_bytes": 4096}))
    auth = {"authorization": f"Bearer {GATEWAY_KEY}"}
    url = gw.base_url + "/chat/completions"
    with httpx.Client() as http:
        cases = {
            "malformed": http.post(url, headers=auth, content=b'{"model": "gpt-4o-mini", "messages": ['),
            "not_object": http.post(url, headers=auth, content=b"[1, 2]"),
            "no_model": http.post(url, headers=auth, json={"messages": HELLO}),
            "no_messages": http.post(url, headers=auth, json={"model": "gpt-4o-mini"}),
            "messages_string": http.post(url, headers=auth, json={"model": "gpt-4o-mini", "messages": "hi"}),
            "messages_empty": http.post(url, headers=auth, json={"model": "gpt-4o-mini", "messages": []}),
            "unknown_model": http.post(url, headers=auth, json={"model": "gpt-9", "messages": HELLO}),
            "too_large": http.post(
                url,
                headers=auth,
                json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x" * 5000}]},
            ),
            "wrong_method": http.get(url, headers=auth),
        }
    expected = {
        "malformed": (400, None, None),
        "not_object": (400, None, None),
        "no_model": (400, "model", "missing_required_parameter"),
        "no_messages": (400, "messages", "missing_required_parameter"),
        "messages_string": (400, "messages", "invalid_type"),
        "messages_empty": (400, "messages", "empty_array"),
        "unknown_model": (404, None, "model_not_found"),
        "too_large": (413, None, "request_too_large"),
        "wrong_method": (405, None, "method_not_allowed"),
    }
    for name, response in cases.items():
        status, param, code = expected[name]
        error = response.json()["error"]
        assert (response.status_code, error["param"], error["code"]) == (status, param, code), name
        assert error["type"] == "invalid_request_error", name
        assert set(error) == {"message", "type", "param", "code"}, name
        assert response.headers["x-request-id"].startswith("req_"), name
    assert "could not parse the JSON body" in cases["malformed"].json()["error"]["message"]
    assert cases["unknown_model"].json()["error"]["message"] == (
        "The model `gpt-9` does not exist or you do not have access to it."
    )
    assert [e for e in fake.requests() if e.method == "POST"] == []


def test_requests_no_route_takes_get_openai_error_bodies(gateway: RunningGateway) -> None:
    auth = {"authorization": f"Bearer {gateway.key}"}
    with httpx.Client() as http:
        unknown = http.post(gateway.base_url + "/no-such-route", headers=auth, json={"input": "x"})
        wrong_method = http.delete(gateway.base_url + "/models", headers=auth)
    assert unknown.status_code == 404
    assert unknown.json() == {
        "error": {
            "message": "Invalid URL (POST /v1/no-such-route)",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }
    assert unknown.headers["x-request-id"].startswith("req_")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "method_not_allowed"
    assert wrong_method.json()["error"]["message"] == "Invalid URL (DELETE /v1/models)"
    with pytest.raises(openai.NotFoundError):
        gateway.openai().embeddings.create(model="text-embedding-3-small", input="x")


def test_sdk_raises_the_right_exceptions_for_client_errors(gateway: RunningGateway) -> None:
    client = gateway.openai()
    with pytest.raises(openai.NotFoundError) as not_found:
        client.chat.completions.create(model="no-such-model", messages=HELLO)
    assert not_found.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="gpt-4o-mini", messages=[])
    assert bad.value.param == "messages"


def test_health_and_readiness(gateway: RunningGateway) -> None:
    with httpx.Client() as http:
        assert http.get(gateway.root_url + "/healthz").json() == {"status": "ok"}
        ready = http.get(gateway.root_url + "/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["redis"] == "ok"

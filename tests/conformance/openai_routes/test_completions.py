"""``POST /v1/completions`` (legacy text completions) through the official OpenAI SDK."""

from __future__ import annotations

import json

import openai
import pytest

from fake_providers.testing import FakeProviders, parse_sse
from tests.conformance.openai_routes.support import metric_lines, surface_config, usage_events
from tests.conftest import AutoAdvance, GatewayFactory

ROUTE = "/v1/completions"
MODEL = "gpt-3.5-turbo-instruct"


def test_a_completion_and_what_the_upstream_received(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(surface_config(fake, redis_url))
    raw = gw.openai().completions.with_raw_response.create(
        model=MODEL, prompt="Hello there", max_tokens=20, suffix="!"
    )
    answer = raw.parse()
    assert answer.object == "text_completion"
    assert answer.choices[0].text == "You said: Hello there"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None and answer.usage.prompt_tokens == 3
    assert raw.headers["x-gateway-provider"] == "fake-openai"
    [sent] = fake.requests(path="/openai/v1/completions")
    assert sent.body == {"model": MODEL, "prompt": "Hello there", "max_tokens": 20, "suffix": "!"}


def test_a_stream_with_and_without_usage(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(surface_config(fake, redis_url))
    client = gw.openai()
    chunks = list(client.completions.create(model=MODEL, prompt="one two", stream=True))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "You said: one two"
    assert all(c.usage is None for c in chunks)  # the usage the gateway asked for is hidden
    assert fake.requests(path="/openai/v1/completions")[-1].body["stream_options"] == {"include_usage": True}

    with_usage = list(
        client.completions.create(
            model=MODEL, prompt="one two", stream=True, stream_options={"include_usage": True}
        )
    )
    assert with_usage[-1].choices == [] and with_usage[-1].usage is not None
    [event] = [e for e in usage_events(gw, redis_url, ROUTE, 2) if e["stream"]][:1]
    assert event["input_tokens"] == 2 and event["output_tokens"] > 0 and event["usage_source"] == "reported"


def test_a_chat_model_is_openais_404_with_its_words_not_failed_over(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    """OpenAI answers a chat model on this route with a 404 "This is a chat model and not
    supported in the v1/completions endpoint": the client named a model of the wrong kind for
    the route. The client gets that 404 in OpenAI's shape with OpenAI's words; neither the same
    deployment nor the model's other one is asked again, and no breaker counts it."""
    config = surface_config(fake, redis_url)
    config["models"] += [
        {"name": "chat-two", "provider": "fake-openai", "upstream_model": "gpt-4o-mini"},
        {"name": "chat-two", "provider": "fake-vllm", "upstream_model": "meta-llama/Llama-3.1-8B"},
    ]
    gw = gateway_factory(config)
    with pytest.raises(openai.NotFoundError) as info:
        gw.openai().completions.create(model="chat-two", prompt="hi")
    body = info.value.body
    assert isinstance(body, dict)
    assert body["message"] == (
        "This is a chat model and not supported in the v1/completions endpoint. "
        "Did you mean to use v1/chat/completions?"
    )
    assert (body["type"], body["param"], body["code"]) == (
        "invalid_request_error",
        "model",
        "model_not_supported_on_route",
    )
    assert info.value.response.headers["x-should-retry"] == "false"
    assert info.value.response.headers["x-gateway-attempts"] == "1"
    assert len(fake.requests(path="/openai/v1/completions")) == 1
    assert fake.requests(path="/vllm/v1/completions") == []
    # Through the plain model name too (one deployment): the same 404.
    with pytest.raises(openai.NotFoundError):
        gw.openai().completions.create(model="gpt-4o-mini", prompt="hi")


def test_client_errors(gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str) -> None:
    gw = gateway_factory(surface_config(fake, redis_url))
    client = gw.openai()
    for body, param in (
        ({"prompt": "x"}, "model"),
        ({"model": MODEL, "prompt": "x", "stream": "yes"}, "stream"),
    ):
        with pytest.raises(openai.BadRequestError) as info:
            client.post("/completions", body=body, cast_to=object)
        assert info.value.body["param"] == param  # type: ignore[index]
    with gw.http() as http:
        bad = http.post(ROUTE, content=b'{"model": ', headers={"content-type": "application/json"})
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
    assert fake.requests(path="/openai/v1/completions") == []


def test_an_error_after_the_commit_point_is_in_band_and_before_it_is_retried(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(surface_config(fake, redis_url))
    # A stream cut after its first chunks (an upstream in-band error is only after the commit
    # point when it arrives in a later read than the first text, which a test cannot force).
    fake.script([{"fault": "cut-3"}], model=MODEL)
    with gw.http() as http:
        after = http.post(ROUTE, json={"model": MODEL, "prompt": "one two three", "stream": True})
    events = parse_sse(after.text)
    assert after.status_code == 200, after.text
    assert json.loads(events[0].data)["choices"][0]["text"]  # the committed text ...
    assert json.loads(events[-1].data)["error"]["code"] == "stream_truncated"  # ... then the error
    assert all(e.data != "[DONE]" for e in events)

    fake.script([{"fault": "inband-500-after-0"}], model=MODEL)
    with AutoAdvance(gw.clock), gw.http() as http:
        before = http.post(ROUTE, json={"model": MODEL, "prompt": "one", "stream": True})
    assert before.headers["x-gateway-attempts"] == "2"
    assert before.text.endswith("data: [DONE]\n\n")


def test_a_retried_fault_a_failover_and_the_metrics(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    config = surface_config(fake, redis_url)
    config["models"] += [
        {"name": "instruct-ha", "provider": "fake-openai", "upstream_model": "fault-500"},
        {"name": "instruct-ha", "provider": "fake-vllm", "upstream_model": "meta-llama/Llama-3.1-8B"},
    ]
    gw = gateway_factory(config)
    fake.script([{"fault": "503"}], model=MODEL)
    with AutoAdvance(gw.clock):
        retried = gw.openai().completions.with_raw_response.create(model=MODEL, prompt="x")
        failed_over = gw.openai().completions.with_raw_response.create(model="instruct-ha", prompt="x")
    assert retried.headers["x-gateway-attempts"] == "2"
    assert failed_over.headers["x-gateway-provider"] == "fake-vllm"
    assert failed_over.parse().choices[0].text == "You said: x"
    assert fake.requests(path="/vllm/v1/completions")[0].body["model"] == "meta-llama/Llama-3.1-8B"
    lines = metric_lines(gw, "gw_requests_total", ROUTE)
    assert any('status_class="2xx"' in line for line in lines), lines

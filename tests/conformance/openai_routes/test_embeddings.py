"""``POST /v1/embeddings`` through the official OpenAI SDK, the fake providers behind the gateway."""

from __future__ import annotations

import base64
import struct
from typing import Any

import httpx
import openai
import pytest

from fake_providers.openai.vectors import vector_for
from fake_providers.testing import FakeProviders
from tests.conformance.openai_routes.support import metric_lines, surface_config, usage_events
from tests.conftest import OTHER_KEY, AutoAdvance, GatewayFactory

ROUTE = "/v1/embeddings"


def decoded(encoded: str) -> list[float]:
    raw = base64.b64decode(encoded)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def post(gw: Any, body: dict[str, Any], key: str | None = None) -> httpx.Response:
    with gw.http(key=key) as http:
        return http.post(ROUTE, json=body)


# -- input forms and parameters ---------------------------------------------------------------


def test_every_input_form_and_the_parameters_passed_on(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(surface_config(fake, redis_url))
    client = gw.openai()
    one = client.embeddings.create(
        model="text-embedding-3-small", input="hello world", encoding_format="float"
    )
    assert [d.index for d in one.data] == [0]
    assert one.data[0].embedding == vector_for("hello world", 1536)
    assert one.usage.prompt_tokens == one.usage.total_tokens == 3

    many = client.embeddings.create(
        model="text-embedding-3-small", input=["a", "bb", "ccc"], encoding_format="float"
    )
    assert [d.embedding for d in many.data] == [vector_for(t, 1536) for t in ("a", "bb", "ccc")]

    tokens = client.embeddings.create(
        model="text-embedding-3-small", input=[1, 2, 3], encoding_format="float"
    )
    assert len(tokens.data) == 1 and tokens.data[0].embedding == vector_for("tokens:1,2,3", 1536)
    assert tokens.usage.prompt_tokens == 3

    lists = client.embeddings.create(
        model="text-embedding-3-small",
        input=[[1, 2], [3]],
        dimensions=8,
        user="u-42",
        encoding_format="float",
    )
    assert [d.embedding for d in lists.data] == [vector_for("tokens:1,2", 8), vector_for("tokens:3", 8)]

    sent = fake.requests(path="/openai/v1/embeddings")[-1].body
    assert sent == {
        "model": "text-embedding-3-small",
        "input": [[1, 2], [3]],
        "dimensions": 8,
        "user": "u-42",
        "encoding_format": "float",
    }


def test_an_openai_compatible_upstream_gets_its_model_name(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(surface_config(fake, redis_url))
    answer = gw.openai().embeddings.create(model="nomic-embed", input="hi")
    assert answer.data[0].embedding == vector_for("hi", 1536)
    [sent] = fake.requests(path="/vllm/v1/embeddings")
    assert sent.body["model"] == "nomic-embed-text"
    assert sent.body["encoding_format"] == "base64"  # the SDK's default, passed on


# -- the encoding the client asked for, whatever the upstream returns -----------------------


@pytest.mark.parametrize("model", ["embed-floats", "embed-base64", "text-embedding-3-small"])
def test_vectors_are_exact_in_both_encodings_against_every_upstream_behaviour(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str, model: str
) -> None:
    gw = gateway_factory(surface_config(fake, redis_url))
    expected = [vector_for(t, 1536) for t in ("first", "second")]
    client = gw.openai()
    # The SDK's default: it asks for base64 and decodes it.
    default = client.embeddings.create(model=model, input=["first", "second"])
    assert [d.embedding for d in default.data] == expected
    explicit = client.embeddings.create(model=model, input=["first", "second"], encoding_format="float")
    assert [d.embedding for d in explicit.data] == expected

    # On the wire: a base64 request gets strings (never a float list the SDK would misread) ...
    raw = post(gw, {"model": model, "input": ["first", "second"], "encoding_format": "base64"}).json()
    assert all(isinstance(d["embedding"], str) for d in raw["data"])
    assert [decoded(d["embedding"]) for d in raw["data"]] == expected
    # ... and a float request (or none) gets float lists.
    for body in ({"encoding_format": "float"}, {}):
        plain = post(gw, {"model": model, "input": ["first", "second"], **body}).json()
        assert [d["embedding"] for d in plain["data"]] == expected
        assert plain["usage"] == {"prompt_tokens": 4, "total_tokens": 4}


# -- batches larger than the provider takes --------------------------------------------------


def limited(fake: FakeProviders, redis_url: str, limit: int) -> dict[str, Any]:
    config = surface_config(fake, redis_url)
    config["providers"][0]["embedding_batch_limit"] = limit
    return config


def test_a_batch_larger_than_the_provider_limit_is_split_and_joined_in_order(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(limited(fake, redis_url, 2))
    texts = ["one", "two", "three", "four", "five"]
    answer = gw.openai().embeddings.create(model="text-embedding-3-small", input=texts)
    assert [d.index for d in answer.data] == [0, 1, 2, 3, 4]
    assert [d.embedding for d in answer.data] == [vector_for(t, 1536) for t in texts]
    sent = [e.body["input"] for e in fake.requests(path="/openai/v1/embeddings")]
    assert sent == [["one", "two"], ["three", "four"], ["five"]]
    assert answer.usage.prompt_tokens == answer.usage.total_tokens == 6  # "three" is two tokens


def test_a_retry_of_a_split_batch_sends_only_what_is_missing(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(limited(fake, redis_url, 2))
    fake.script([{"times": 1}, {"fault": "500"}], model="text-embedding-3-small")
    with AutoAdvance(gw.clock):
        raw = post(gw, {"model": "text-embedding-3-small", "input": ["a", "b", "c", "d", "e"]})
    assert raw.status_code == 200, raw.text
    assert raw.headers["x-gateway-attempts"] == "2"
    sent = [e.body["input"] for e in fake.requests(path="/openai/v1/embeddings")]
    assert sent == [["a", "b"], ["c", "d"], ["c", "d"], ["e"]]
    assert [d["embedding"] for d in raw.json()["data"]] == [vector_for(t, 1536) for t in "abcde"]


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"input": "x"}, "model", "missing_required_parameter"),
        ({"model": "text-embedding-3-small"}, "input", "missing_required_parameter"),
        ({"model": "text-embedding-3-small", "input": ""}, "input", "invalid_value"),
        ({"model": "text-embedding-3-small", "input": []}, "input", "invalid_value"),
        ({"model": "text-embedding-3-small", "input": [1, "a"]}, "input", "invalid_value"),
        (
            {"model": "text-embedding-3-small", "input": "x", "encoding_format": "hex"},
            "encoding_format",
            "invalid_value",
        ),
        ({"model": "text-embedding-3-small", "input": "x", "dimensions": 0}, "dimensions", "invalid_value"),
    ],
)
def test_client_errors_are_refused_before_any_upstream_call(
    gateway_factory: GatewayFactory,
    fake: FakeProviders,
    redis_url: str,
    body: dict[str, Any],
    param: str,
    code: str,
) -> None:
    gw = gateway_factory(surface_config(fake, redis_url))
    with pytest.raises(openai.BadRequestError) as info:
        gw.openai().post("/embeddings", body=body, cast_to=object)  # the SDK's own transport
    assert info.value.status_code == 400
    assert info.value.body["param"] == param and info.value.body["code"] == code  # type: ignore[index]
    assert fake.requests(path="/openai/v1/embeddings") == []


def test_keys_models_and_unknown_models(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    config = surface_config(fake, redis_url)
    config["auth"]["keys"][1]["models"] = ["gpt-4o-mini"]
    gw = gateway_factory(config)
    with pytest.raises(openai.AuthenticationError):
        gw.openai(api_key="sk-wrong").embeddings.create(model="text-embedding-3-small", input="x")
    with pytest.raises(openai.PermissionDeniedError):
        gw.openai(api_key=OTHER_KEY).embeddings.create(model="text-embedding-3-small", input="x")
    with pytest.raises(openai.NotFoundError):
        gw.openai().embeddings.create(model="no-such-model", input="x")


def test_a_model_that_is_not_an_embedding_model_is_the_upstreams_classified_error(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(surface_config(fake, redis_url))
    with pytest.raises(openai.BadRequestError) as info:
        gw.openai().embeddings.create(model="whisper-1", input="x")
    assert "does not support embeddings" in info.value.message
    assert info.value.response.headers["x-should-retry"] == "false"
    assert len(fake.requests(path="/openai/v1/embeddings")) == 1  # not retried


def test_a_chat_model_is_openais_403_passed_on_as_a_400_not_failed_over(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    """OpenAI answers a chat model on /v1/embeddings with a 403 "You are not allowed to generate
    embeddings from this model": the client's model of the wrong kind, not the gateway's
    credentials and not a broken deployment. The client gets a 400 with OpenAI's words; neither
    the same deployment nor the model's other one is asked again."""
    config = surface_config(fake, redis_url)
    config["models"] += [
        {"name": "chat-two", "provider": "fake-openai", "upstream_model": "gpt-4o"},
        {"name": "chat-two", "provider": "fake-vllm", "upstream_model": "nomic-embed-text"},
    ]
    gw = gateway_factory(config)
    with pytest.raises(openai.BadRequestError) as info:
        gw.openai().embeddings.create(model="chat-two", input="x")
    body = info.value.body
    assert isinstance(body, dict)
    assert body["message"] == "You are not allowed to generate embeddings from this model"
    assert (body["type"], body["param"], body["code"]) == (
        "invalid_request_error",
        "model",
        "model_not_supported_on_route",
    )
    assert body["status_code"] == 403
    assert info.value.response.headers["x-should-retry"] == "false"
    assert len(fake.requests(path="/openai/v1/embeddings")) == 1
    assert fake.requests(path="/vllm/v1/embeddings") == []


def test_an_anthropic_deployment_is_a_clear_400(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    from gateway.testing import add_anthropic

    gw = gateway_factory(add_anthropic(surface_config(fake, redis_url), fake))
    with pytest.raises(openai.BadRequestError) as info:
        gw.openai().embeddings.create(model="claude", input="x")
    assert info.value.body["code"] == "not_supported"  # type: ignore[index]
    assert "claude" in info.value.message and ROUTE in info.value.message


# -- retries, failover, usage and metrics ------------------------------------------------------


def test_a_retried_fault_and_a_failover(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    config = surface_config(fake, redis_url)
    config["models"] += [
        {"name": "embed-ha", "provider": "fake-openai", "upstream_model": "fault-503"},
        {"name": "embed-ha", "provider": "fake-vllm", "upstream_model": "nomic-embed-text"},
    ]
    gw = gateway_factory(config)
    fake.script([{"fault": "429"}], model="text-embedding-3-small")
    with AutoAdvance(gw.clock):
        retried = post(gw, {"model": "text-embedding-3-small", "input": "x"})
        failed_over = post(gw, {"model": "embed-ha", "input": "x"})
    assert retried.status_code == 200 and retried.headers["x-gateway-attempts"] == "2"
    assert failed_over.status_code == 200, failed_over.text
    assert failed_over.headers["x-gateway-attempts"] == "4"
    assert failed_over.headers["x-gateway-provider"] == "fake-vllm"
    assert [d["embedding"] for d in failed_over.json()["data"]] == [vector_for("x", 1536)]


def test_usage_is_counted_and_priced_and_the_route_has_its_metrics(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(surface_config(fake, redis_url))
    answer = gw.openai().embeddings.create(model="text-embedding-3-small", input=["some words here"] * 3)
    [event] = usage_events(gw, redis_url, ROUTE, 1)
    assert event["model"] == "text-embedding-3-small" and event["status"] == 200
    assert event["input_tokens"] == answer.usage.prompt_tokens == 12
    assert event.get("output_tokens", 0) == 0
    assert event["usage_source"] == "reported"
    assert event["cost_nusd"] == 12 * 20  # $0.02 per million tokens
    lines = metric_lines(gw, "gw_requests_total", ROUTE)
    assert any('status_class="2xx"' in line and line.endswith(" 1.0") for line in lines), lines

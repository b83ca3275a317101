"""The Anthropic SDK on a Claude deployment: the request reaches Anthropic byte for byte (only the
model changed), the answer comes back as Anthropic sent it, JSON and streamed; thinking
signatures, cache usage, tools, count_tokens, errors in Anthropic's envelope."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import msgspec
import pytest

from fake_providers.anthropic.thinking import sign
from fake_providers.testing import FakeProviders
from gateway.testing import GATEWAY_KEY, AutoAdvance
from tests.conformance.messages.support import WEATHER, client, config, recorded_gateway

MESSAGES = "/anthropic/v1/messages"
THOUGHT = "The user greets me; I should greet back."


def raw_body(model: str = "claude") -> bytes:
    """A request as a client might write it: odd spacing, escapes, caching, a signed thought,
    a field no gateway knows."""
    return (
        b'{\n  "model" : "' + model.encode() + b'",  "max_tokens":64,\n'
        b'  "future_field": {"nested": [1, 2.50, "caf\\u00e9"]},\n'
        b'  "system": [{"type": "text", "text": "Be kind.", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],\n'
        b'  "messages": [\n'
        b'    {"role": "user", "content": "hi"},\n'
        b'    {"role": "assistant", "content": [{"type": "thinking", "thinking": "'
        + THOUGHT.encode()
        + b'", '
        b'"signature": "' + sign(THOUGHT).encode() + b'"}, {"type": "text", "text": "Hello!"}]},\n'
        b'    {"role": "user", "content": [{"type": "text", "text": "again", "cache_control": {"type": "ephemeral"}}]}\n'
        b"  ]\n}"
    )


HEADERS = {
    "x-api-key": GATEWAY_KEY,
    "anthropic-version": "2023-06-01",
    "anthropic-beta": "interleaved-thinking-2025-05-14,prompt-caching-scope-2026-01-05",
    "content-type": "application/json",
}


@pytest.mark.parametrize("stream", [False, True])
def test_the_request_reaches_anthropic_byte_for_byte_and_the_answer_comes_back_as_sent(
    fake: FakeProviders, redis_url: str, stream: bool
) -> None:
    body = raw_body()
    if stream:
        body = body.replace(b'"max_tokens":64,', b'"max_tokens":64, "stream": true,')
    with recorded_gateway(config(fake, redis_url)) as (gw, claude, _):
        answer = httpx.post(gw.root_url + "/v1/messages", content=body, headers=HEADERS, timeout=30)
    assert answer.status_code == 200, answer.text
    [sent] = claude.sent
    assert sent.path == MESSAGES
    assert sent.body == body.replace(b'"model" : "claude"', b'"model" : "claude-haiku-4-5"')
    assert sent.headers["x-api-key"] == "sk-ant-upstream"  # the provider's key, never the client's
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.headers["anthropic-beta"] == "interleaved-thinking-2025-05-14,prompt-caching-scope-2026-01-05"
    # The fake checks the thought's signature: it arrived intact, so the fake answered.
    [received] = fake.requests(path=MESSAGES)
    assert received.body["future_field"] == {"nested": [1, 2.5, "café"]}
    assert answer.headers["x-request-id"].startswith("req_")
    if stream:
        assert answer.headers["content-type"].startswith("text/event-stream")
        # The fake's own framing, relayed: a ping after the first block start, the terminal event.
        text = answer.text
        assert "event: message_start\n" in text and text.rstrip().endswith('data: {"type":"message_stop"}')
        assert text.index("event: ping") > text.index("event: content_block_start")
    else:
        message = answer.json()
        assert message["id"].startswith("msg_01") and message["model"] == "claude-haiku-4-5"
        assert message["content"] == [{"type": "text", "text": "You said: again"}]


def test_the_provider_betas_and_the_clients_are_merged(fake: FakeProviders, redis_url: str) -> None:
    cfg = config(fake, redis_url)
    cfg["providers"][-1]["anthropic_beta"] = ["context-1m-2025-08-07"]
    with recorded_gateway(cfg) as (gw, claude, _):
        headers = {**HEADERS, "anthropic-beta": "context-1m-2025-08-07, token-efficient-tools-2025-02-19"}
        answer = httpx.post(gw.root_url + "/v1/messages", content=raw_body(), headers=headers, timeout=30)
    assert answer.status_code == 200
    assert (
        claude.sent[0].headers["anthropic-beta"] == "context-1m-2025-08-07,token-efficient-tools-2025-02-19"
    )


def test_sdk_thinking_signatures_survive_a_second_turn(fake: FakeProviders, redis_url: str) -> None:
    with recorded_gateway(config(fake, redis_url)) as (gw, _, _):
        sdk = client(gw)
        fake.script([{"reply": {"thinking": "Plan: greet.", "text": "Hello!"}}])
        with sdk.messages.stream(
            model="claude",
            max_tokens=2048,
            thinking={"type": "enabled", "budget_tokens": 1024},
            messages=[{"role": "user", "content": "hi"}],
        ) as stream:
            kinds = [event.type for event in stream]
            first = stream.get_final_message()
        assert "thinking" in kinds and "signature" in kinds
        thinking, text = first.content
        assert thinking.type == "thinking" and thinking.thinking == "Plan: greet."
        assert thinking.signature == sign("Plan: greet.")
        assert text.type == "text" and text.text == "Hello!"
        second = sdk.messages.create(
            model="claude",
            max_tokens=2048,
            thinking={"type": "enabled", "budget_tokens": 1024},
            messages=[
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": [block.model_dump() for block in first.content]},
                {"role": "user", "content": "and now?"},
            ],
        )
        assert second.content[0].text == "You said: and now?"  # the fake accepted the signature


def test_sdk_cache_usage_and_tools(fake: FakeProviders, redis_url: str) -> None:
    with recorded_gateway(config(fake, redis_url)) as (gw, _, _):
        sdk = client(gw, bearer=True)
        fake.script(
            [
                {
                    "reply": {
                        "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}],
                        "usage": {
                            "input_tokens": 7,
                            "cache_read_input_tokens": 1200,
                            "cache_creation_input_tokens": 300,
                        },
                    }
                }
            ]
        )
        message = sdk.messages.create(
            model="claude",
            max_tokens=256,
            tools=[WEATHER],  # type: ignore[list-item]
            messages=[{"role": "user", "content": "weather in Paris?"}],
        )
        assert message.stop_reason == "tool_use"
        [call] = message.content
        assert call.type == "tool_use" and call.input == {"city": "Paris"} and call.id.startswith("toolu_01")
        assert (message.usage.input_tokens, message.usage.cache_read_input_tokens) == (7, 1200)
        assert message.usage.cache_creation_input_tokens == 300
        with sdk.messages.stream(
            model="claude",
            max_tokens=256,
            tools=[WEATHER],  # type: ignore[list-item]
            messages=[
                {"role": "user", "content": "weather in Paris?"},
                {"role": "assistant", "content": [call.model_dump()]},
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}],
                },
            ],
        ) as stream:
            final = stream.get_final_message()
        assert final.content[0].text == "Tool results: get_weather returned sunny"


def test_count_tokens_is_anthropics_own_count(fake: FakeProviders, redis_url: str) -> None:
    with recorded_gateway(config(fake, redis_url)) as (gw, claude, _):
        counted = client(gw).messages.count_tokens(
            model="claude",
            system="Be brief.",
            messages=[{"role": "user", "content": "How many tokens is this?"}],
        )
        [sent] = claude.sent
    assert sent.path == MESSAGES + "/count_tokens"
    assert msgspec.json.decode(sent.body)["model"] == "claude-haiku-4-5"
    assert counted.input_tokens > 0
    [received] = fake.requests(path=MESSAGES + "/count_tokens")
    assert received.body["messages"] == [{"role": "user", "content": "How many tokens is this?"}]


def error_of(call: Any) -> anthropic.APIStatusError:
    with pytest.raises(anthropic.APIStatusError) as caught:
        call()
    return caught.value


def create(sdk: anthropic.Anthropic, model: str = "claude", **fields: Any) -> Any:
    return lambda: sdk.messages.create(
        model=model,
        max_tokens=fields.pop("max_tokens", 32),
        messages=[{"role": "user", "content": "hi"}],
        **fields,
    )


def test_errors_in_anthropics_envelope(fake: FakeProviders, redis_url: str) -> None:
    cfg = config(fake, redis_url)
    cfg["auth"]["keys"].append({"name": "narrow", "key": "sk-narrow-key", "models": ["gpt-4o-mini"]})
    cfg["server"] = {"max_body_bytes": 2048}
    with recorded_gateway(cfg) as (gw, claude, _), AutoAdvance(gw.clock):
        sdk = client(gw)
        cases: list[tuple[anthropic.APIStatusError, int, str]] = []
        cases.append((error_of(create(client(gw, key="sk-wrong"))), 401, "authentication_error"))
        cases.append((error_of(create(client(gw, key="sk-narrow-key"))), 403, "permission_error"))
        cases.append((error_of(create(sdk, "no-such-model")), 404, "not_found_error"))
        cases.append((error_of(create(sdk, system="x" * 4096)), 413, "request_too_large"))
        cases.append((error_of(create(sdk, extra_body={"temperature": "hot"})), 400, "invalid_request_error"))
        assert claude.sent == []  # none of these reached the upstream
    for error, status, kind in cases:
        assert (error.status_code, error.body["type"], error.body["error"]["type"]) == (
            status,
            "error",
            kind,
        ), error.body  # type: ignore[index, call-overload]
        assert error.body["request_id"].startswith("req_")  # type: ignore[index, call-overload]
        assert error.response.headers["x-request-id"].startswith("req_")
        assert error.response.headers["x-should-retry"] == "false"


@pytest.mark.parametrize(
    ("fault", "status", "kind", "retry"),
    [
        ("429", 429, "rate_limit_error", "true"),
        ("529", 529, "overloaded_error", "true"),
        ("500", 502, "api_error", "true"),
        ("502", 503, "api_error", "true"),
        ("context-length", 400, "invalid_request_error", "false"),
    ],
)
@pytest.mark.parametrize("model", ["claude", "gpt-4o-mini"])
def test_upstream_failures_in_anthropics_envelope(
    fake: FakeProviders, redis_url: str, fault: str, status: int, kind: str, retry: str, model: str
) -> None:
    """The classifier decides the status (as on every route); the envelope and types are Anthropic's."""
    with recorded_gateway(config(fake, redis_url)) as (gw, _, _), AutoAdvance(gw.clock):
        fake.script([{"fault": fault, "times": 3}])
        error = error_of(create(client(gw), model))
    assert (error.status_code, error.body["type"], error.body["error"]["type"]) == (status, "error", kind), (
        error.body
    )  # type: ignore[index, call-overload]
    assert error.response.headers["x-should-retry"] == retry
    if fault == "429":
        assert error.response.headers["retry-after"] == "1"


def test_failover_to_the_next_deployment_before_the_stream_commits(
    fake: FakeProviders, redis_url: str
) -> None:
    cfg = config(fake, redis_url, fallbacks=["gpt-4o-mini"])
    with recorded_gateway(cfg) as (gw, claude, openai), AutoAdvance(gw.clock):
        fake.script([{"fault": "529", "times": 3}], model="claude-haiku-4-5")
        with client(gw).messages.stream(
            model="claude", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            final = stream.get_final_message()
    assert len(claude.sent) == 3 and len(openai.sent) == 1
    assert final.content[0].text == "You said: hi" and final.model == "gpt-4o-mini"


def test_a_failure_after_the_commit_is_an_error_event_without_message_stop(
    fake: FakeProviders, redis_url: str
) -> None:
    with recorded_gateway(config(fake, redis_url)) as (gw, _, _):
        fake.script([{"fault": "inband-after-3"}])
        answer = httpx.post(
            gw.root_url + "/v1/messages",
            json={
                "model": "claude",
                "max_tokens": 64,
                "stream": True,
                "messages": [{"role": "user", "content": "one two three four"}],
            },
            headers=HEADERS,
            timeout=30,
        )
        assert answer.status_code == 200
        events = [line[7:] for line in answer.text.splitlines() if line.startswith("event: ")]
        assert events[-1] == "error" and "message_stop" not in events
        last = msgspec.json.decode(answer.text.rstrip().rsplit("data: ", 1)[1])
        assert last["type"] == "error" and last["error"]["type"] == "overloaded_error"
        fake.script([{"fault": "cut-3"}])
        stream = client(gw).messages.stream(
            model="claude", max_tokens=64, messages=[{"role": "user", "content": "a b c d"}]
        )
        with pytest.raises(anthropic.APIStatusError) as caught, stream as events:
            for _ in events:
                pass
        assert caught.value.body["error"]["type"] == "api_error"  # type: ignore[index, call-overload]


def test_a_prompt_over_the_window_is_refused_in_anthropics_words(fake: FakeProviders, redis_url: str) -> None:
    with recorded_gateway(config(fake, redis_url, context_window=100)) as (gw, claude, _):
        error = error_of(
            lambda: client(gw).messages.create(
                model="claude", max_tokens=16, messages=[{"role": "user", "content": "word " * 400}]
            )
        )
    assert claude.sent == []
    assert error.status_code == 400 and error.body["error"]["type"] == "invalid_request_error"  # type: ignore[index, call-overload]
    assert error.body["error"]["message"].startswith("prompt is too long: about ")  # type: ignore[index, call-overload]
    assert error.body["error"]["message"].endswith(" tokens > 100 maximum")  # type: ignore[index, call-overload]

"""The rescue on the Anthropic Messages route: a stream cut after its commit point is continued
on a prefill-capable deployment after the broken one, as more of the same message, and the
official Anthropic SDK reads one whole answer; a refused prefill keeps the original error."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx
import pytest

from fake_providers.testing import FakeProviders
from gateway.testing import add_anthropic
from tests.conftest import GATEWAY_KEY, GatewayFactory, RunningGateway
from tests.integration.failover.support import (
    OPENAI_CHAT,
    PRIMARY,
    TEXT,
    VLLM_CHAT,
    WORDS,
    config,
    metric,
    sent,
    words,
)

ALL = words(1, 60)
CLAUDE = "claude-haiku-4-5"  # the upstream models the fake sees
CLAUDE_B = "claude-sonnet-4-5"
MESSAGES = "/anthropic/v1/messages"
ASK = [{"role": "user", "content": "Say the sixty words."}]


def claude_config(fake: FakeProviders, redis_url: str, *, primary: str = "claude") -> dict[str, Any]:
    """``claude`` (fake-anthropic) falls back to ``claude-b`` (fake-anthropic-b, another Claude
    deployment); ``primary`` (fake-openai) falls back to ``claude-b`` too."""
    cfg = config(fake, redis_url)
    cfg["providers"][1]["continuation"] = "none"
    timeouts = {"timeouts": {"startup": 10.0, "idle": 10.0}}
    add_anthropic(cfg, fake, model_fields={"fallbacks": ["claude-b"]}, **timeouts)
    add_anthropic(
        cfg, fake, provider="fake-anthropic-b", model="claude-b", upstream_model=CLAUDE_B, **timeouts
    )
    cfg["models"][0]["fallbacks"] = ["claude-b"]
    return cfg


def sdk(gw: RunningGateway) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.root_url, api_key=GATEWAY_KEY, max_retries=0, timeout=30)


def prefill_text(request: Any) -> str:
    last = request.body["messages"][-1]
    assert last["role"] == "assistant"
    content = last["content"]
    return content if isinstance(content, str) else "".join(b.get("text", "") for b in content)


def raw_stream(gw: RunningGateway, model: str) -> list[tuple[str, dict[str, Any]]]:
    """The (event, data) pairs of one streamed Messages request, read to its end."""
    body = {"model": model, "max_tokens": 1024, "messages": ASK, "stream": True}
    response = httpx.post(
        gw.root_url + "/v1/messages", headers={"x-api-key": GATEWAY_KEY}, json=body, timeout=30
    )
    assert response.status_code == 200, response.text
    events = []
    for block in response.text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n") if ": " in line)
        if "data" in lines:
            events.append((lines.get("event", ""), json.loads(lines["data"])))
    return events


def assert_one_message(events: list[tuple[str, dict[str, Any]]]) -> None:
    kinds = [kind for kind, _ in events if kind != "ping"]
    assert kinds.count("message_start") == 1
    assert kinds[-2:] == ["message_delta", "message_stop"]
    assert "error" not in kinds
    starts = [data["index"] for kind, data in events if kind == "content_block_start"]
    stops = [data["index"] for kind, data in events if kind == "content_block_stop"]
    assert starts == stops == list(range(len(starts)))  # indexes go on, every block closed once
    text = "".join(
        data["delta"]["text"]
        for kind, data in events
        if kind == "content_block_delta" and "text" in data["delta"]
    )
    assert text == TEXT


def test_a_claude_stream_cut_mid_text_is_continued_by_the_fallback_claude(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(claude_config(fake, redis_url))
    # message_start, content_block_start, ping and 40 words, then the connection closes.
    fake.script([{"fault": "cut-43", "reply": ALL}], model=CLAUDE)
    fake.script([{"reply": words(41, 60)}], model=CLAUDE_B)
    with sdk(gw) as client, client.messages.stream(model="claude", max_tokens=1024, messages=ASK) as stream:
        streamed = "".join(stream.text_stream)
        message = stream.get_final_message()
    assert streamed == TEXT
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == TEXT  # one text block, whole
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0
    assert message.usage.output_tokens > 20  # both parts: the first estimated, the rest reported
    [broken] = sent(fake, MESSAGES)[:1]
    continuation = sent(fake, MESSAGES)[1]
    assert len(sent(fake, MESSAGES)) == 2
    assert broken.model == CLAUDE and continuation.model == CLAUDE_B
    assert prefill_text(continuation) == " ".join(WORDS[:40])
    assert continuation.body["messages"][:-1] == broken.body["messages"]
    assert metric(gw, "gw_stream_rescues_total", provider="fake-anthropic", result="continued") == 1.0


def test_a_continued_messages_stream_keeps_one_message(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(claude_config(fake, redis_url))
    fake.script([{"fault": "cut-43", "reply": ALL}], model=CLAUDE)
    fake.script([{"reply": words(41, 60)}], model=CLAUDE_B)
    events = raw_stream(gw, "claude")
    assert_one_message(events)
    [start] = [data for kind, data in events if kind == "message_start"]
    assert start["message"]["model"] == CLAUDE  # the first part's message, continued
    [delta] = [data for kind, data in events if kind == "message_delta"]
    assert delta["usage"]["input_tokens"] == start["message"]["usage"]["input_tokens"]


def test_a_translated_messages_stream_is_continued_by_claude(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    """The broken upstream spoke Chat Completions (its stream translated to Anthropic events)."""
    gw = gateway_factory(claude_config(fake, redis_url))
    fake.script([{"fault": "cut-41", "reply": ALL}], model=PRIMARY)  # the role chunk and 40 words
    fake.script([{"reply": words(41, 60)}], model=CLAUDE_B)
    with sdk(gw) as client, client.messages.stream(model="primary", max_tokens=1024, messages=ASK) as stream:
        streamed = "".join(stream.text_stream)
        message = stream.get_final_message()
    assert streamed == TEXT
    assert [block.text for block in message.content if block.type == "text"] == [TEXT]
    assert len(sent(fake, OPENAI_CHAT)) == 1
    [continuation] = sent(fake, MESSAGES)
    assert prefill_text(continuation) == " ".join(WORDS[:40])


def test_a_messages_stream_continued_by_an_openai_compatible_fallback(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    cfg = claude_config(fake, redis_url)
    cfg["providers"][1]["continuation"] = "prefill"
    cfg["models"][2]["fallbacks"] = ["fallback"]  # claude -> the vLLM-style fallback
    gw = gateway_factory(cfg)
    fake.script([{"fault": "cut-43", "reply": ALL}], model=CLAUDE)
    fake.script([{"reply": words(41, 60)}], model="fb-fallback")
    events = raw_stream(gw, "claude")
    assert_one_message(events)
    [continuation] = sent(fake, VLLM_CHAT)
    assert continuation.body["messages"][-1] == {"role": "assistant", "content": " ".join(WORDS[:40])}
    assert continuation.body["continue_final_message"] is True


PREFILL_REFUSED = {
    "type": "error",
    "error": {
        "type": "invalid_request_error",
        "message": "This model does not support assistant message prefill.",
    },
}


def test_a_refused_prefill_keeps_the_original_error(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(claude_config(fake, redis_url))
    fake.script([{"fault": "cut-43", "reply": ALL}], model=CLAUDE)
    fake.script([{"fault": "500", "status": 400, "body": PREFILL_REFUSED}], model=CLAUDE_B)
    events = raw_stream(gw, "claude")
    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "error" and "message_stop" not in kinds
    error = events[-1][1]["error"]
    assert "prefill" not in error["message"]  # the cut, not the refusal
    assert error["type"] in ("api_error", "timeout_error", "overloaded_error")
    text = "".join(d["delta"]["text"] for k, d in events if k == "content_block_delta")
    assert text == " ".join(WORDS[:40]) + " "
    assert len(sent(fake, MESSAGES)) == 2
    assert metric(gw, "gw_stream_rescues_total", provider="fake-anthropic", result="refused") == 1.0
    with sdk(gw) as client:
        fake.script([{"fault": "cut-43", "reply": ALL}], model=CLAUDE)
        fake.script([{"fault": "500", "status": 400, "body": PREFILL_REFUSED}], model=CLAUDE_B)
        with (
            pytest.raises(anthropic.APIStatusError),
            client.messages.stream(model="claude", max_tokens=1024, messages=ASK) as stream,
        ):
            "".join(stream.text_stream)


def test_a_tool_call_in_the_partial_answer_is_not_continued(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(claude_config(fake, redis_url))
    call = {"tool_calls": [{"name": "lookup", "arguments": {"q": "sixty words"}}]}
    fake.script([{"fault": "cut-3", "reply": call}], model=CLAUDE)
    tools = [{"name": "lookup", "description": "Look up", "input_schema": {"type": "object"}}]
    body = {"model": "claude", "max_tokens": 1024, "messages": ASK, "stream": True, "tools": tools}
    response = httpx.post(
        gw.root_url + "/v1/messages", headers={"x-api-key": GATEWAY_KEY}, json=body, timeout=30
    )
    assert "event: error" in response.text and "event: message_stop" not in response.text
    assert len(sent(fake, MESSAGES)) == 1  # nothing asked of the fallback
    assert metric(gw, "gw_stream_rescues_total", provider="fake-anthropic", result="not_continuable") == 1.0


def test_a_claude_continuation_gets_the_clients_own_request(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    """Thinking on and a cached system prompt: the first part's signed thinking block stays the
    client's; the continuation is the client's request (cache_control kept, its headers passed)
    without thinking (a prefill refuses it), and its text goes on in the open text block."""
    gw = gateway_factory(claude_config(fake, redis_url))
    fake.script([{"fault": "cut-31", "reply": {**ALL, "thinking": "Sixty words, one by one."}}], model=CLAUDE)
    fake.script([{"reply": words(21, 60)}], model=CLAUDE_B)
    system = [{"type": "text", "text": "You count.", "cache_control": {"type": "ephemeral"}}]
    with (
        sdk(gw) as client,
        client.messages.stream(
            model="claude",
            max_tokens=2048,
            system=system,  # type: ignore[arg-type]
            thinking={"type": "enabled", "budget_tokens": 1024},
            messages=ASK,
            extra_headers={"anthropic-beta": "prompt-caching-2024-07-31"},
        ) as stream,
    ):
        streamed = "".join(stream.text_stream)
        message = stream.get_final_message()
    assert streamed == TEXT
    assert [block.type for block in message.content] == ["thinking", "text"]
    assert message.content[0].thinking == "Sixty words, one by one."  # type: ignore[union-attr]
    broken, continuation = sent(fake, MESSAGES)
    assert prefill_text(continuation) == " ".join(WORDS[:20])
    assert "thinking" not in continuation.body and broken.body["thinking"]["type"] == "enabled"
    assert continuation.body["system"] == system
    assert continuation.body["messages"][:-1] == broken.body["messages"]
    assert continuation.body["max_tokens"] == 2048
    assert "prompt-caching-2024-07-31" in continuation.headers["anthropic-beta"]
    assert continuation.headers["anthropic-version"] == broken.headers["anthropic-version"]


def test_a_continuation_that_breaks_too_ends_with_the_error_after_its_text(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(claude_config(fake, redis_url))
    fake.script([{"fault": "cut-43", "reply": ALL}], model=CLAUDE)
    fake.script([{"fault": "cut-13", "reply": words(41, 60)}], model=CLAUDE_B)  # 10 more words
    events = raw_stream(gw, "claude")
    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "error" and "message_stop" not in kinds and "message_delta" not in kinds
    assert kinds.count("message_start") == 1 and kinds.count("content_block_start") == 1
    text = "".join(d["delta"]["text"] for k, d in events if k == "content_block_delta")
    assert text == " ".join(WORDS[:50]) + " "
    assert len(sent(fake, MESSAGES)) == 2
    assert metric(gw, "gw_stream_rescues_total", provider="fake-anthropic-b", result="no_candidate") == 1.0

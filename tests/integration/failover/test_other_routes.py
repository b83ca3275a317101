"""The same rescue rules on the other routes that share the request cycle: a stateful chat's
step and a Responses stream continue a cut stream on the continuing fallback, and a Chat
Completions client whose fallback is Claude gets the rest by Anthropic prefill."""

from __future__ import annotations

import json
from typing import Any

from fake_providers.testing import FakeProviders
from gateway.testing import add_anthropic
from tests.conftest import GatewayFactory
from tests.integration.chats.helpers import client, wait_status
from tests.integration.failover.support import (
    OPENAI_CHAT,
    PRIMARY,
    TEXT,
    VLLM_CHAT,
    WORDS,
    config,
    sent,
    stream,
    words,
)

ALL = words(1, 60)


def test_a_chat_step_cut_mid_answer_is_continued(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(config(fake, redis_url))
    fake.script([{"fault": "cut-41", "reply": ALL}], model=PRIMARY)
    fake.script([{"reply": words(41, 60)}], model="fb-fallback")
    with client(gw) as c:
        created = c.post("", json={"model": "primary", "message": "Say the sixty words."})
        assert created.status_code == 201, created.text
        chat_id = created.json()["id"]
        wait_status(c, chat_id, "waiting")
        messages = c.get(f"/{chat_id}/messages").json()["messages"]
    [answer] = [m for m in messages if m["role"] == "assistant"]
    assert [p["text"] for p in answer["content"] if p["type"] == "text"] == [TEXT]
    assert len(sent(fake, OPENAI_CHAT)) == 1  # the step was not started again
    [continuation] = sent(fake, VLLM_CHAT)
    assert continuation.body["messages"][-1] == {"role": "assistant", "content": " ".join(WORDS[:40])}


def test_a_chat_completions_stream_is_continued_by_claude_prefill(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    cfg = config(fake, redis_url)
    cfg["providers"][1]["continuation"] = "none"
    add_anthropic(cfg, fake)  # anthropic: prefill by default
    cfg["models"][0]["fallbacks"] = ["claude"]
    gw = gateway_factory(cfg)
    fake.script([{"fault": "cut-41", "reply": ALL}], model=PRIMARY)
    fake.script([{"reply": words(41, 60)}], model="claude-haiku-4-5")
    answer = stream(gw, stream_options={"include_usage": True})
    assert answer.status == 200 and answer.error is None, answer.body
    assert answer.text == TEXT
    assert answer.frames[-1] == "[DONE]"
    assert len({c["id"] for c in answer.chunks}) == 1
    assert answer.chunks[-1]["usage"]["completion_tokens"] > 0
    [prefill] = sent(fake, "/anthropic/v1/messages")
    assert prefill.body["messages"][-1]["role"] == "assistant"
    content = prefill.body["messages"][-1]["content"]
    text = content if isinstance(content, str) else "".join(b.get("text", "") for b in content)
    assert text == " ".join(WORDS[:40])


def _events(text: str) -> list[dict[str, Any]]:
    return [
        json.loads(line[6:])
        for block in text.split("\n\n")
        for line in block.split("\n")
        if line.startswith("data: ") and line != "data: [DONE]"
    ]


def test_a_responses_stream_cut_mid_answer_is_continued(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(config(fake, redis_url))
    fake.script([{"fault": "cut-41", "reply": ALL}], model=PRIMARY)
    fake.script([{"reply": words(41, 60)}], model="fb-fallback")
    with gw.http() as http:
        response = http.post(
            "/v1/responses", json={"model": "primary", "input": "Say the sixty words.", "stream": True}
        )
        assert response.status_code == 200, response.text
        events = _events(response.text)
        kinds = [e["type"] for e in events]
        assert kinds.count("response.created") == 1
        assert kinds.count("response.output_item.added") == 1  # one message item throughout
        assert "error" not in kinds and "response.failed" not in kinds
        assert "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta") == TEXT
        numbers = [e["sequence_number"] for e in events]
        assert numbers == list(range(len(events)))
        final = events[-1]
        assert final["type"] == "response.completed"
        assert final["response"]["output"][0]["content"][0]["text"] == TEXT
        stored = http.get(f"/v1/responses/{final['response']['id']}").json()
    assert stored["output"][0]["content"][0]["text"] == TEXT  # recorded whole, before the end
    [continuation] = sent(fake, VLLM_CHAT)
    assert continuation.body["messages"][-1] == {"role": "assistant", "content": " ".join(WORDS[:40])}

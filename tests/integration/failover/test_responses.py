"""The rescue on Responses streams whose broken upstream spoke Responses (its events passed
through) or Anthropic (translated): a prefill-capable deployment continues, and the client gets
one answer: one message item, sequence numbers with no gap, the whole text in
``response.completed`` and in the record written before it."""

from __future__ import annotations

import json
from typing import Any

import openai

from fake_providers.testing import FakeProviders
from gateway.testing import add_anthropic
from tests.conftest import GATEWAY_KEY, GatewayFactory, RunningGateway
from tests.integration.failover.support import TEXT, VLLM_CHAT, WORDS, config, metric, sent, words

ALL = words(1, 60)
NATIVE = "fb-native"  # the Responses upstream's model
CLAUDE = "claude-haiku-4-5"
RESPONSES = "/openai/v1/responses"
MESSAGES = "/anthropic/v1/messages"
ASK = "Say the sixty words."


def responses_config(fake: FakeProviders, redis_url: str) -> dict[str, Any]:
    """``native`` (fake-openai's Responses API) and ``claude`` both fall back to ``fallback``
    (fake-vllm, which continues a prefilled assistant message)."""
    cfg = config(fake, redis_url)
    cfg["models"].append(
        {
            "name": "native",
            "provider": "fake-openai",
            "upstream_model": NATIVE,
            "api": "responses",
            "fallbacks": ["fallback"],
        }
    )
    add_anthropic(
        cfg, fake, model_fields={"fallbacks": ["fallback"]}, timeouts={"startup": 10.0, "idle": 10.0}
    )
    return cfg


def events_of(text: str) -> list[dict[str, Any]]:
    return [
        json.loads(line[6:])
        for block in text.split("\n\n")
        for line in block.split("\n")
        if line.startswith("data: ") and line != "data: [DONE]"
    ]


def create(gw: RunningGateway, model: str, **extra: Any) -> list[dict[str, Any]]:
    with gw.http() as http:
        response = http.post("/v1/responses", json={"model": model, "input": ASK, "stream": True, **extra})
    assert response.status_code == 200, response.text
    return events_of(response.text)


def assert_one_answer(events: list[dict[str, Any]]) -> dict[str, Any]:
    """One message item throughout, numbered without a gap; the final response's text whole.
    Returns the final response."""
    kinds = [e["type"] for e in events]
    assert kinds.count("response.created") == 1
    assert kinds.count("response.output_item.added") == 1
    assert kinds.count("response.output_item.done") == 1
    assert kinds.count("response.content_part.added") == kinds.count("response.content_part.done") == 1
    assert "error" not in kinds and "response.failed" not in kinds
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    deltas = [e for e in events if e["type"] == "response.output_text.delta"]
    assert "".join(e["delta"] for e in deltas) == TEXT
    [added] = [e for e in events if e["type"] == "response.output_item.added"]
    item_id = added["item"]["id"]
    keyed = [e for e in events if "item_id" in e]
    assert {e["item_id"] for e in keyed} == {item_id}
    assert {e["output_index"] for e in keyed} == {0} and {e["content_index"] for e in keyed} == {0}
    [done] = [e for e in events if e["type"] == "response.output_text.done"]
    assert done["text"] == TEXT
    [item_done] = [e for e in events if e["type"] == "response.output_item.done"]
    assert item_done["item"]["id"] == item_id and item_done["item"]["content"][0]["text"] == TEXT
    final = events[-1]
    assert final["type"] == "response.completed"
    response: dict[str, Any] = final["response"]
    assert response["id"] == events[0]["response"]["id"]
    assert [o["id"] for o in response["output"]] == [item_id]
    assert response["output"][0]["content"][0]["text"] == TEXT
    assert response["usage"]["output_tokens"] > 0
    return response


def test_a_native_responses_stream_cut_mid_answer_is_continued(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(responses_config(fake, redis_url))
    # created, in_progress, output_item.added, content_part.added and 40 words.
    fake.script([{"fault": "cut-44", "reply": ALL}], model=NATIVE)
    fake.script([{"reply": words(41, 60)}], model="fb-fallback")
    response = assert_one_answer(create(gw, "native"))
    assert response["model"] == NATIVE  # the client's answer, continued
    [continuation] = sent(fake, VLLM_CHAT)
    assert continuation.body["messages"][-1] == {"role": "assistant", "content": " ".join(WORDS[:40])}
    assert continuation.body["messages"][0] == {"role": "user", "content": ASK}
    with gw.http() as http:
        stored = http.get(f"/v1/responses/{response['id']}").json()
    assert stored["output"][0]["content"][0]["text"] == TEXT  # recorded whole, before the end
    assert metric(gw, "gw_stream_rescues_total", provider="fake-openai", result="continued") == 1.0
    # A follow-up on the native model replays the answer: the upstream never finished it, so
    # it is not chained to by its upstream id.
    fake.script([{"reply": {"chunks": ["ok"]}}], model=NATIVE)
    follow = create(gw, "native", previous_response_id=response["id"])
    assert follow[-1]["type"] == "response.completed"
    second = sent(fake, RESPONSES)[-1]
    assert "previous_response_id" not in second.body
    replayed = json.dumps(second.body["input"])
    assert TEXT in replayed


def test_an_anthropic_upstream_responses_stream_cut_mid_answer_is_continued(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(responses_config(fake, redis_url))
    # message_start, content_block_start, ping and 40 words.
    fake.script([{"fault": "cut-43", "reply": ALL}], model=CLAUDE)
    fake.script([{"reply": words(41, 60)}], model="fb-fallback")
    response = assert_one_answer(create(gw, "claude"))
    [continuation] = sent(fake, VLLM_CHAT)
    assert continuation.body["messages"][-1] == {"role": "assistant", "content": " ".join(WORDS[:40])}
    assert len(sent(fake, MESSAGES)) == 1
    with gw.http() as http:
        stored = http.get(f"/v1/responses/{response['id']}").json()
    assert stored["output"][0]["content"][0]["text"] == TEXT


def test_the_openai_sdk_reads_a_continued_native_stream_whole(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(responses_config(fake, redis_url))
    fake.script([{"fault": "cut-24", "reply": ALL}], model=NATIVE)  # 20 words
    fake.script([{"reply": words(21, 60)}], model="fb-fallback")
    client = openai.OpenAI(base_url=gw.base_url, api_key=GATEWAY_KEY, max_retries=0)
    with client.responses.stream(model="native", input=ASK) as stream:
        streamed = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert streamed == TEXT
    assert final.output_text == TEXT
    [continuation] = sent(fake, VLLM_CHAT)
    assert continuation.body["messages"][-1]["content"] == " ".join(WORDS[:20])


PREFILL_REFUSED = {
    "error": {
        "message": "This model does not support assistant message prefill.",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_prefill",
    }
}


def test_a_native_stream_whose_continuation_is_refused_keeps_the_original_error(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(responses_config(fake, redis_url))
    fake.script([{"fault": "cut-44", "reply": ALL}], model=NATIVE)
    fake.script([{"fault": "500", "status": 400, "body": PREFILL_REFUSED}], model="fb-fallback")
    events = create(gw, "native")
    kinds = [e["type"] for e in events]
    assert kinds[-2:] == ["error", "response.failed"]
    assert "response.completed" not in kinds
    assert events[-2]["code"] == "stream_truncated"  # not the refusal
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert text == " ".join(WORDS[:40]) + " "
    assert len(sent(fake, VLLM_CHAT)) == 1
    assert metric(gw, "gw_stream_rescues_total", provider="fake-openai", result="refused") == 1.0


def test_a_continuation_that_breaks_too_ends_the_answer_in_band_after_its_text(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    """The continuation is cut as well and nothing is left to continue it: the client's answer
    ends with ``error`` and ``response.failed`` numbered after the rest, holding both parts'
    text, and the record says the same."""
    gw = gateway_factory(responses_config(fake, redis_url))
    fake.script([{"fault": "cut-44", "reply": ALL}], model=NATIVE)
    fake.script([{"fault": "cut-11", "reply": words(41, 60)}], model="fb-fallback")  # role + 10 words
    events = create(gw, "native")
    kinds = [e["type"] for e in events]
    assert kinds[-2:] == ["error", "response.failed"] and "response.completed" not in kinds
    assert events[-2]["code"] == "stream_truncated"
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert text == " ".join(WORDS[:50]) + " "
    failed = events[-1]["response"]
    assert failed["output"][0]["content"][0]["text"] == text
    assert failed["output"][0]["id"] == events[2]["item"]["id"]
    with gw.http() as http:
        stored = http.get(f"/v1/responses/{failed['id']}").json()
    assert stored["status"] == "failed"
    assert stored["output"][0]["content"][0]["text"] == text
    assert metric(gw, "gw_stream_rescues_total", provider="fake-vllm", result="no_candidate") == 1.0

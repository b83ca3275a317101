"""``POST /v1/responses/compact`` and ``POST /v1/responses/input_tokens`` on every upstream dialect,
and what Codex sends (``store: false`` with ``include: ["reasoning.encrypted_content"]`` and
earlier reasoning items in the input) on each of them."""

from __future__ import annotations

from typing import Any

import pytest

from fake_providers.testing import FakeProviders
from gateway.responses.compaction import PREFIX, SUMMARY_HEADING
from gateway.testing import add_anthropic
from tests.conftest import GatewayFactory, RunningGateway
from tests.fixtures.openresponses import validate, validate_response
from tests.integration.responses.support import CHAT_PATH, RESPONSES_PATH, call, post, responses_config

MESSAGES_PATH = "/anthropic/v1/messages"
CONVERSATION = [
    {"type": "message", "role": "user", "content": "We launch on Tuesday."},
    {"type": "message", "role": "assistant", "content": "Tuesday it is."},
]


@pytest.fixture
def gw(gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str) -> RunningGateway:
    config = responses_config(fake, redis_url)
    add_anthropic(config, fake, upstream_model="claude-sonnet-4-5")
    return gateway_factory(config)


def last_body(fake: FakeProviders, path: str) -> dict[str, Any]:
    body: dict[str, Any] = fake.requests(path=path)[-1].body
    return body


@pytest.mark.parametrize(("model", "path"), [("chat-model", CHAT_PATH), ("claude", MESSAGES_PATH)])
def test_translated_upstreams_compact_with_a_summary_stored_as_a_chain_root(
    gw: RunningGateway, fake: FakeProviders, model: str, path: str
) -> None:
    answer = call(gw, "POST", "/responses/compact", json={"model": model, "input": CONVERSATION})
    assert answer.status_code == 200, answer.text
    compacted = answer.json()
    validate("CompactResource", compacted)
    kept, item = compacted["output"][:-1], compacted["output"][-1]
    assert [m["content"][0]["text"] for m in kept] == ["We launch on Tuesday."]  # user messages stay
    assert item["type"] == "compaction" and item["encrypted_content"].startswith(PREFIX)
    # The routed model was asked for the summary, after the conversation.
    asked = str(last_body(fake, path))
    assert "We launch on Tuesday." in asked and "Summarize the conversation above" in asked

    # A new chain root: retrievable, and continued by its id.
    stored = call(gw, "GET", f"/responses/{compacted['id']}").json()
    validate_response(stored)
    assert stored["output"] == compacted["output"]
    follow = post(gw, {"model": model, "input": "When?", "previous_response_id": compacted["id"]})
    assert follow.status_code == 200, follow.text
    replayed = str(last_body(fake, path))
    assert SUMMARY_HEADING.strip() in replayed and PREFIX not in replayed
    # ...or by passing the compacted output back as input (OpenAI's way).
    again = post(gw, {"model": model, "input": [*compacted["output"], {"role": "user", "content": "When?"}]})
    assert again.status_code == 200, again.text
    assert SUMMARY_HEADING.strip() in str(last_body(fake, path))


def test_a_responses_upstream_compacts_itself(gw: RunningGateway, fake: FakeProviders) -> None:
    first = post(gw, {"model": "resp-model", "input": "Remember 7."}).json()
    answer = call(
        gw,
        "POST",
        "/responses/compact",
        json={"model": "resp-model", "input": "And 8.", "previous_response_id": first["id"]},
    )
    assert answer.status_code == 200, answer.text
    compacted = answer.json()
    validate("CompactResource", compacted)
    sent = last_body(fake, RESPONSES_PATH + "/compact")
    assert sent["model"] == "gpt-4o-mini"
    # The parent was produced by this deployment: its upstream id, and only the new input.
    assert sent["previous_response_id"] != first["id"] and sent["previous_response_id"].startswith("resp_")
    assert sent["input"] == "And 8."
    assert compacted["id"] != sent["previous_response_id"]
    # The upstream's own compaction item goes back to it as it is...
    follow = post(
        gw, {"model": "resp-model", "input": [*compacted["output"], {"role": "user", "content": "Sum?"}]}
    )
    assert follow.status_code == 200, follow.text
    assert last_body(fake, RESPONSES_PATH)["input"][-2]["type"] == "compaction"
    # ...and is dropped for an upstream that could not read it.
    elsewhere = post(
        gw, {"model": "chat-model", "input": [*compacted["output"], {"role": "user", "content": "Sum?"}]}
    )
    assert elsewhere.status_code == 200, elsewhere.text
    assert "fake-compaction" not in str(last_body(fake, CHAT_PATH))


def test_compaction_refusals(gw: RunningGateway) -> None:
    missing = call(gw, "POST", "/responses/compact", json={"input": CONVERSATION})
    assert (missing.status_code, missing.json()["error"]["param"]) == (400, "model")
    unknown = call(
        gw, "POST", "/responses/compact", json={"model": "chat-model", "previous_response_id": "resp_nope"}
    )
    assert unknown.json()["error"]["code"] == "previous_response_not_found"
    assert call(gw, "GET", "/responses/compact").status_code == 405
    assert call(gw, "GET", "/responses/input_tokens").status_code == 405


def test_input_tokens_are_the_upstream_s_count_or_the_estimate(
    gw: RunningGateway, fake: FakeProviders
) -> None:
    native = call(gw, "POST", "/responses/input_tokens", json={"model": "resp-model", "input": "Hello there"})
    assert native.status_code == 200, native.text
    assert native.json()["object"] == "response.input_tokens" and native.json()["input_tokens"] > 0
    assert "x-gateway-token-count" not in native.headers
    assert last_body(fake, RESPONSES_PATH + "/input_tokens")["model"] == "gpt-4o-mini"

    for model in ("chat-model", "claude"):
        estimate = call(gw, "POST", "/responses/input_tokens", json={"model": model, "input": "Hello there"})
        assert estimate.status_code == 200, estimate.text
        assert estimate.headers["x-gateway-token-count"] == "estimate"
        assert estimate.json()["input_tokens"] > 0
    # A chain's history counts too.
    first = post(gw, {"model": "chat-model", "input": "A long first message " * 20}).json()
    chained = call(
        gw,
        "POST",
        "/responses/input_tokens",
        json={"model": "chat-model", "input": "Hi", "previous_response_id": first["id"]},
    )
    alone = call(gw, "POST", "/responses/input_tokens", json={"model": "chat-model", "input": "Hi"})
    assert chained.json()["input_tokens"] > alone.json()["input_tokens"]
    assert (
        call(gw, "POST", "/responses/input_tokens", json={"model": "nope", "input": "x"}).status_code == 404
    )


@pytest.mark.parametrize("model", ["chat-model", "resp-model", "claude"])
def test_codex_style_unstored_turns_with_encrypted_reasoning(gw: RunningGateway, model: str) -> None:
    body: dict[str, Any] = {
        "model": model,
        "store": False,
        "stream": True,
        "include": ["reasoning.encrypted_content"],
        "reasoning": {"effort": "low", "summary": "auto"},
        "instructions": "You are a coding agent.",
        "input": [
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "List the files."}],
            },
            {"type": "reasoning", "id": "rs_prev1", "summary": [], "encrypted_content": "gAAAAB-opaque-blob"},
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Two files."}],
            },
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "And now?"}]},
        ],
    }
    answer = post(gw, body)
    assert answer.status_code == 200, answer.text
    assert "response.completed" in answer.text

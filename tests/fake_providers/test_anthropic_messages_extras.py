"""The fake Anthropic provider's extras for Messages clients: count_tokens, signed thoughts (and
the refusal of thoughts it did not sign), scripted cache usage, system messages between turns."""

from __future__ import annotations

import anthropic
import pytest

from fake_providers.anthropic.thinking import sign
from fake_providers.testing import FakeProviders


@pytest.fixture
def sdk(fake: FakeProviders) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="sk-ant-test", max_retries=0)


def test_count_tokens_matches_the_usage_of_the_same_prompt(
    sdk: anthropic.Anthropic, fake: FakeProviders
) -> None:
    prompt = [{"role": "user", "content": "How many tokens is this sentence?"}]
    counted = sdk.messages.count_tokens(model="claude-haiku-4-5", messages=prompt)  # type: ignore[arg-type]
    answered = sdk.messages.create(model="claude-haiku-4-5", max_tokens=32, messages=prompt)  # type: ignore[arg-type]
    assert counted.input_tokens == answered.usage.input_tokens > 0
    with pytest.raises(anthropic.BadRequestError, match="messages: at least one message is required"):
        sdk.messages.count_tokens(model="claude-haiku-4-5", messages=[])
    assert [e.path for e in fake.requests()] == [
        "/anthropic/v1/messages/count_tokens",
        "/anthropic/v1/messages",
        "/anthropic/v1/messages/count_tokens",
    ]


def test_a_scripted_thought_is_signed_and_only_its_own_signature_is_accepted(
    sdk: anthropic.Anthropic, fake: FakeProviders
) -> None:
    fake.script([{"reply": {"thinking": "Think first.", "text": "Done."}}, {"reply": {"thinking": "Again."}}])
    message = sdk.messages.create(
        model="claude-haiku-4-5", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    )
    thinking, text = message.content
    assert thinking.type == "thinking" and thinking.signature == sign("Think first.")
    assert text.type == "text" and text.text == "Done."
    with sdk.messages.stream(
        model="claude-haiku-4-5", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        kinds = [event.type for event in stream]
        streamed = stream.get_final_message()
    assert streamed.content[0].type == "thinking" and streamed.content[0].signature == sign("Again.")
    assert "signature" in kinds

    def history(signature: str) -> list[dict[str, object]]:
        block = {"type": "thinking", "thinking": "Think first.", "signature": signature}
        return [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [block, {"type": "text", "text": "Done."}]},
            {"role": "user", "content": "more"},
        ]

    assert sdk.messages.create(
        model="claude-haiku-4-5", max_tokens=64, messages=history(sign("Think first."))
    )  # type: ignore[arg-type]
    for wrong in ("", sign("Something else.")):
        with pytest.raises(
            anthropic.BadRequestError,
            match=r"messages\.1\.content\.0: Invalid `signature` in `thinking` block",
        ):
            sdk.messages.create(model="claude-haiku-4-5", max_tokens=64, messages=history(wrong))  # type: ignore[arg-type]


def test_scripted_cache_usage(sdk: anthropic.Anthropic, fake: FakeProviders) -> None:
    usage = {
        "input_tokens": 4,
        "output_tokens": 2,
        "cache_read_input_tokens": 900,
        "cache_creation_input_tokens": 50,
    }
    fake.script([{"reply": {"text": "x", "usage": usage}}, {"reply": {"text": "y", "usage": usage}}])
    message = sdk.messages.create(
        model="claude-haiku-4-5", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
    )
    assert (message.usage.cache_read_input_tokens, message.usage.cache_creation_input_tokens) == (900, 50)
    with sdk.messages.stream(
        model="claude-haiku-4-5", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        final = stream.get_final_message()
    assert (final.usage.cache_read_input_tokens, final.usage.input_tokens) == (900, 4)


def test_a_system_message_between_turns(sdk: anthropic.Anthropic) -> None:
    message = sdk.messages.create(
        model="claude-haiku-4-5",
        max_tokens=64,
        messages=[
            {"role": "user", "content": "hi"},
            {"role": "system", "content": "Be brief."},  # type: ignore[typeddict-item]
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "bye"},
        ],
    )
    assert message.content[0].text == "You said: bye"  # type: ignore[union-attr]
    with pytest.raises(anthropic.BadRequestError, match=r"messages\.0\.role"):
        sdk.messages.create(
            model="claude-haiku-4-5", max_tokens=8, messages=[{"role": "system", "content": "x"}]
        )  # type: ignore[typeddict-item]

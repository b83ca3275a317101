"""Token log probabilities from the fakes, read by the official SDK: Chat Completions with
``logprobs``/``top_logprobs`` (whole and streamed), the Responses API with
``include: ["message.output_text.logprobs"]``, the 400s for bad values, and none unless asked."""

from __future__ import annotations

from typing import Any

import openai
import pytest

HELLO: Any = [{"role": "user", "content": "hello there"}]
MODEL = "gpt-4o-mini"


def _check_ranked(token: str, logprob: float, top: list[Any], count: int) -> None:
    assert logprob < 0
    assert len(top) == count
    if count:
        assert (top[0].token, top[0].logprob) == (token, logprob)
        ranked = [entry.logprob for entry in top]
        assert ranked == sorted(ranked, reverse=True) and len({entry.token for entry in top}) == count
        assert all(bytes(entry.bytes).decode() == entry.token for entry in top)


def test_chat_logprobs_cover_the_answer_token_by_token(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(model=MODEL, messages=HELLO, logprobs=True, top_logprobs=3)
    choice = answer.choices[0]
    assert choice.logprobs is not None and choice.logprobs.content
    assert "".join(entry.token for entry in choice.logprobs.content) == choice.message.content
    for entry in choice.logprobs.content:
        assert bytes(entry.bytes or []).decode() == entry.token
        _check_ranked(entry.token, entry.logprob, entry.top_logprobs, 3)
    again = client.chat.completions.create(model=MODEL, messages=HELLO, logprobs=True, top_logprobs=3)
    assert again.choices[0].logprobs == choice.logprobs  # the same answer, the same numbers


def test_chat_stream_chunks_carry_their_own_tokens(client: openai.OpenAI) -> None:
    whole = client.chat.completions.create(model=MODEL, messages=HELLO, logprobs=True)
    assert whole.choices[0].logprobs is not None
    streamed = []
    for chunk in client.chat.completions.create(model=MODEL, messages=HELLO, logprobs=True, stream=True):
        choice = chunk.choices[0]
        if choice.delta.content:
            assert choice.logprobs is not None and choice.logprobs.content is not None
            assert [entry.token for entry in choice.logprobs.content] == [choice.delta.content]
            streamed.extend(choice.logprobs.content)
        else:
            assert choice.logprobs is None
    assert streamed == whole.choices[0].logprobs.content
    assert all(entry.top_logprobs == [] for entry in streamed)  # logprobs alone: no alternatives


def test_chat_logprobs_only_when_asked(client: openai.OpenAI) -> None:
    assert client.chat.completions.create(model=MODEL, messages=HELLO).choices[0].logprobs is None
    plain = client.chat.completions.create(model=MODEL, messages=HELLO, logprobs=False, top_logprobs=2)
    assert plain.choices[0].logprobs is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"logprobs": True, "top_logprobs": 21},
            "Invalid 'top_logprobs': integer above maximum value. Expected a value <= 20, but got 21 instead.",
        ),
        (
            {"logprobs": True, "top_logprobs": -1},
            "Invalid 'top_logprobs': integer below minimum value. Expected a value >= 0, but got -1 instead.",
        ),
        (
            {"logprobs": "yes"},
            "Invalid type for 'logprobs': expected a boolean, but got a string instead.",
        ),
    ],
)
def test_chat_bad_logprobs_are_openais_400(
    client: openai.OpenAI, fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=MODEL, messages=HELLO, extra_body=fields)
    assert refused.value.body["message"] == message  # type: ignore[index]


def test_responses_logprobs_when_included(client: openai.OpenAI) -> None:
    include: Any = ["message.output_text.logprobs"]
    answer = client.responses.create(model=MODEL, input="hello there", include=include, top_logprobs=2)
    part = answer.output[0].content[0]  # type: ignore[union-attr]
    assert part.type == "output_text" and part.logprobs
    assert "".join(entry.token for entry in part.logprobs) == part.text
    for entry in part.logprobs:
        _check_ranked(entry.token, entry.logprob, entry.top_logprobs, 2)
    deltas = []
    with client.responses.stream(model=MODEL, input="hello there", include=include, top_logprobs=2) as stream:
        for event in stream:
            if event.type == "response.output_text.delta":
                assert [entry.token for entry in event.logprobs] == [event.delta]
                deltas.extend(event.logprobs)
            elif event.type == "response.output_text.done":
                assert [entry.model_dump() for entry in event.logprobs] == [
                    entry.model_dump() for entry in part.logprobs
                ]
    assert [entry.model_dump() for entry in deltas] == [entry.model_dump() for entry in part.logprobs]
    plain = client.responses.create(model=MODEL, input="hello there", top_logprobs=2)
    assert plain.output[0].content[0].logprobs == []  # type: ignore[union-attr]

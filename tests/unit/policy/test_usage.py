from __future__ import annotations

from gateway.policy.usage import StreamUsageTap, usage_from_body, usage_from_responses
from gateway.pricing import Usage


def test_responses_usage() -> None:
    usage = {
        "input_tokens": 120,
        "input_tokens_details": {"cached_tokens": 100},
        "output_tokens": 30,
        "output_tokens_details": {"reasoning_tokens": 12},
        "total_tokens": 150,
    }
    assert usage_from_responses(usage) == Usage(
        input_tokens=120, cache_read_tokens=100, output_tokens=30, reasoning_tokens=12
    )
    assert usage_from_responses(None) is None
    assert usage_from_responses({"input_tokens": "many"}) is None


def test_chat_body_cache_writes_under_either_name() -> None:
    body = (
        b'{"id":"x","usage":{"prompt_tokens":50,"completion_tokens":5,'
        b'"prompt_tokens_details":{"cached_tokens":10,"cache_write_tokens":20}}}'
    )
    assert usage_from_body(body) == Usage(
        input_tokens=50, cache_read_tokens=10, cache_write_tokens=20, output_tokens=5
    )


def test_tap_keeps_the_model_of_the_usage_chunk() -> None:
    tap = StreamUsageTap(strip=True)
    usage = b'data: {"model":"gpt-4o-mini-2024","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}\n\n'
    assert tap.feed(b'data: {"choices":[{"delta":{"content":"hi"}}]}\n\n' + usage) == (
        b'data: {"choices":[{"delta":{"content":"hi"}}]}\n\n'
    )
    assert tap.usage == Usage(input_tokens=3, output_tokens=4)
    assert tap.model == "gpt-4o-mini-2024"


def test_tap_passes_the_events_around_the_usage_chunk_as_they_came() -> None:
    # CRLF and LF events mixed, comments and ids kept: only the usage event is looked at.
    head = b'id: 1\r\ndata: {"choices":[{"delta":{"content":"a"}}]}\r\n\r\n: keep-alive\n\n'
    usage = b'data: {"model":"m-1","choices":[],"usage":{"prompt_tokens":4,"completion_tokens":1}}\r\n\r\n'
    tail = b'data: {"choices":[{"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
    kept = StreamUsageTap(strip=False)
    assert kept.feed(head + usage + tail) == head + usage + tail
    assert kept.usage == Usage(input_tokens=4, output_tokens=1) and kept.model == "m-1"
    stripped = StreamUsageTap(strip=True)
    assert stripped.feed(head + usage + tail) == head + tail
    assert stripped.usage == Usage(input_tokens=4, output_tokens=1)


def test_tap_keeps_the_last_of_two_usage_events_and_a_chunk_with_choices() -> None:
    first = (
        b'data: {"choices":[{"delta":{"content":"a"}}],"usage":{"prompt_tokens":1,"completion_tokens":1}}\n\n'
    )
    second = b'data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":7}}\n\n'
    tap = StreamUsageTap(strip=True)
    assert tap.feed(first + second + b"data: [DONE]\n\n") == first + b"data: [DONE]\n\n"
    assert tap.usage == Usage(input_tokens=5, output_tokens=7)

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

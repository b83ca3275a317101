from __future__ import annotations

import random
import string

from gateway.policy.keys import kid_of, new_key, new_kid
from gateway.policy.usage import StreamUsageTap
from gateway.telemetry.metrics import Metrics


def test_ten_thousand_junk_models_do_not_add_series() -> None:
    m = Metrics(["gpt-4o-mini"], ["openai"])
    m.request(
        route="/v1/chat/completions",
        model="gpt-4o-mini",
        status=200,
        error_type="",
        duration_s=0.1,
        overhead_s=0.001,
        ttft_s=None,
    )
    m.request(
        route="/seen-once",
        model="x",
        status=200,
        error_type="",
        duration_s=0.1,
        overhead_s=0.001,
        ttft_s=None,
    )
    before = m.exposition().count(b"\n")
    rng = random.Random(1)
    for _ in range(10_000):
        junk = "".join(rng.choices(string.ascii_letters, k=12))
        m.request(
            route="/" + junk,
            model=junk,
            status=200,
            error_type="",
            duration_s=0.1,
            overhead_s=0.001,
            ttft_s=None,
        )
    assert m.exposition().count(b"\n") == before


def test_key_format_checksum() -> None:
    kid = new_kid()
    key = new_key(kid)
    assert kid_of(key) == kid
    broken = key[:-1] + ("A" if key[-1] != "A" else "B")
    assert kid_of(broken) is None
    assert kid_of("sk-test-gateway-key-1") is None


def test_tap_strips_usage_chunk_split_across_reads() -> None:
    stream = (
        b'data: {"choices":[{"delta":{"content":"hi"}}],"usage":null}\n\n'
        b'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}\n\n'
        b"data: [DONE]\n\n"
    )
    tap = StreamUsageTap(strip=True)
    out = b"".join(tap.feed(stream[i : i + 7]) for i in range(0, len(stream), 7)) + tap.flush()
    assert out == (b'data: {"choices":[{"delta":{"content":"hi"}}],"usage":null}\n\ndata: [DONE]\n\n')
    assert tap.usage is not None and (tap.usage.input_tokens, tap.usage.output_tokens) == (3, 2)

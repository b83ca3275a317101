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


def _one_of_everything(m: Metrics) -> None:
    gauge = m.in_flight("/v1/chat/completions")
    gauge.inc()
    m.request(
        route="/v1/chat/completions",
        model="gpt-4o-mini",
        status=200,
        error_type="",
        duration_s=0.1,
        overhead_s=0.001,
        ttft_s=0.05,
    )
    m.attempt(provider="openai", model="gpt-4o-mini", error_type="", duration_s=0.09)
    m.usage(
        provider="openai", model="gpt-4o-mini", tokens={"input": 10, "output": 5}, cost_nusd=7, estimated=True
    )
    m.decision("rpm", "key", "allowed")
    m.store_error("closed")


def test_metrics_off_records_nothing_on_the_request_path() -> None:
    from gateway.telemetry.metrics import DisabledMetrics

    on, off = Metrics(["gpt-4o-mini"], ["openai"]), DisabledMetrics(["gpt-4o-mini"], ["openai"])
    untouched = off.exposition()
    _one_of_everything(on)
    _one_of_everything(off)
    assert off.exposition() == untouched
    exposed = on.exposition()
    assert (
        b"gw_requests_total{" in exposed
        and b'gw_inflight_requests{route="/v1/chat/completions"} 1.0' in exposed
    )

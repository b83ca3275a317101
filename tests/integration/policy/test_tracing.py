"""OpenTelemetry traces: one CLIENT span per upstream attempt, GenAI attributes, no content.
Spans go to the SDK's in-memory exporter (the SDK is in the ``dev`` extra)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from fake_providers.testing import serve
from gateway.app import create_app
from gateway.clock import ManualClock
from gateway.config import settings_from_mapping
from tests.conftest import GATEWAY_KEY, base_config
from tests.integration.policy.test_policy import MSG, chat, poll

pytest.importorskip("opentelemetry.sdk")
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode


class Served:
    def __init__(self, base_url: str, root_url: str) -> None:
        self.base_url = base_url
        self.root_url = root_url


@contextmanager
def traced_gateway(fake: Any, redis_url: str) -> Iterator[tuple[Served, InMemorySpanExporter]]:
    cfg = base_config(fake, redis_url)
    cfg["telemetry"] = {"otel_traces": True, "otel_sample_ratio": 1.0}
    exporter = InMemorySpanExporter()
    app = create_app(settings_from_mapping(cfg, source="<test>"), clock=ManualClock(), span_exporter=exporter)
    with serve(app) as served:
        yield Served(served.base_url + "/v1", served.base_url), exporter


def attributes(span: Any) -> dict[str, Any]:
    return dict(span.attributes)


def test_one_span_per_attempt_with_genai_attributes(fake: Any, redis_url: str) -> None:
    fake.script([{"fault": "500", "times": 1}], model="gpt-4o-mini")
    with traced_gateway(fake, redis_url) as (gw, exporter):
        reply = chat(gw, GATEWAY_KEY)
        assert reply.status_code == 200
        usage = reply.json()["usage"]
        failed, ok = poll(lambda: (s := exporter.get_finished_spans()) and len(s) == 2 and s)
    port = int(fake.base_url.rsplit(":", 1)[1])
    common = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.request.stream": False,
        "server.address": "127.0.0.1",
        "server.port": port,
        "gateway.provider": "fake-openai",
        "gateway.model.alias": "gpt-4o-mini",
    }
    assert (failed.name, failed.kind, failed.status.status_code) == (
        "chat gpt-4o-mini",
        SpanKind.CLIENT,
        StatusCode.ERROR,
    )
    assert attributes(failed) == {**common, "gateway.attempt": 1, "error.type": "generic"}
    assert ok.status.status_code == StatusCode.UNSET
    assert attributes(ok) == {
        **common,
        "gateway.attempt": 2,
        "gen_ai.response.model": reply.json()["model"],
        "gen_ai.usage.input_tokens": usage["prompt_tokens"],
        "gen_ai.usage.output_tokens": usage["completion_tokens"],
    }


def test_stream_span_ends_with_the_stream_and_carries_usage(fake: Any, redis_url: str) -> None:
    with traced_gateway(fake, redis_url) as (gw, exporter):
        reply = chat(gw, GATEWAY_KEY, stream=True, stream_options={"include_usage": True})
        assert reply.status_code == 200
        [span] = poll(lambda: exporter.get_finished_spans())
    shown = [line for line in reply.text.splitlines() if '"usage":{' in line]
    assert len(shown) == 1
    attrs = attributes(span)
    assert attrs["gen_ai.request.stream"] is True
    assert attrs["gen_ai.response.model"] == "gpt-4o-mini"
    assert attrs["gen_ai.usage.input_tokens"] > 0 and attrs["gen_ai.usage.output_tokens"] > 0
    assert "error.type" not in attrs
    # Never content: no attribute holds the prompt or the answer.
    text = " ".join(str(v) for v in attrs.values())
    assert MSG[0]["content"] not in text and "You said" not in text


def test_traces_are_off_by_default_and_need_no_sdk() -> None:
    """With every ``opentelemetry`` import made to fail, the gateway still builds (redis-py
    probes for the package too, so "not imported" alone would prove nothing)."""
    code = (
        "import sys; sys.modules['opentelemetry'] = None;"
        "from gateway.app import create_app; from gateway.config import settings_from_mapping;"
        "from gateway.telemetry.tracing import build_tracing;"
        "s = settings_from_mapping({}, source='<t>'); create_app(s);"
        "print(build_tracing(s.telemetry))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "None"


def test_responses_attempts_are_traced_too(fake: Any, redis_url: str) -> None:
    with traced_gateway(fake, redis_url) as (gw, exporter):
        answer = httpx.post(
            gw.base_url + "/responses",
            headers={"authorization": f"Bearer {GATEWAY_KEY}"},
            json={"model": "gpt-4o-mini", "input": "hello"},
            timeout=30,
        )
        assert answer.status_code == 200
        streamed = httpx.post(
            gw.base_url + "/responses",
            headers={"authorization": f"Bearer {GATEWAY_KEY}"},
            json={"model": "gpt-4o-mini", "input": "hello", "stream": True},
            timeout=30,
        )
        assert streamed.status_code == 200
        plain, stream = poll(lambda: (s := exporter.get_finished_spans()) and len(s) == 2 and s)
    usage = answer.json()["usage"]
    assert plain.name == stream.name == "chat gpt-4o-mini"
    assert attributes(plain)["gen_ai.usage.input_tokens"] == usage["input_tokens"]
    assert attributes(plain)["gen_ai.usage.output_tokens"] == usage["output_tokens"]
    assert attributes(plain)["gen_ai.request.stream"] is False
    assert attributes(stream)["gen_ai.request.stream"] is True
    assert attributes(stream)["gen_ai.usage.output_tokens"] > 0
    assert "error.type" not in attributes(plain) and "error.type" not in attributes(stream)

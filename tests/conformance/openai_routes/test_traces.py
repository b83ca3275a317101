"""Traces on the OpenAI surface: one client span per upstream attempt, as for chat."""

from __future__ import annotations

from typing import Any

import pytest

from fake_providers.testing import FakeProviders
from gateway.clock import ManualClock
from gateway.testing import AutoAdvance, poll_until, serve_gateway
from tests.conformance.openai_routes.support import surface_config

pytest.importorskip("opentelemetry.sdk")
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode


@pytest.mark.parametrize(
    ("route", "body", "operation"),
    [
        ("/v1/embeddings", {"model": "text-embedding-3-small", "input": "x"}, "embeddings"),
        ("/v1/audio/speech", {"model": "tts-1", "input": "x", "voice": "alloy"}, "speech"),
        (
            "/v1/completions",
            {"model": "gpt-3.5-turbo-instruct", "prompt": "x", "stream": True},
            "text_completion",
        ),
        ("/v1/moderations", {"model": "omni-moderation-latest", "input": "x"}, "moderation"),
    ],
)
def test_a_failed_attempt_and_the_answer_each_have_a_span(
    fake: FakeProviders, redis_url: str, route: str, body: dict[str, Any], operation: str
) -> None:
    config = surface_config(fake, redis_url)
    config["telemetry"] = {"otel_traces": True, "otel_sample_ratio": 1.0}
    exporter = InMemorySpanExporter()
    fake.script([{"fault": "500"}], model=body["model"])
    with serve_gateway(config, clock=ManualClock(), span_exporter=exporter) as gw, AutoAdvance(gw.clock):
        with gw.http() as http:
            answer = http.post(route, json=body)
        assert answer.status_code == 200, answer.text
        failed, ok = poll_until(lambda: (s := exporter.get_finished_spans()) and len(s) == 2 and s)
    assert failed.status.status_code == StatusCode.ERROR
    assert ok.status.status_code == StatusCode.UNSET
    assert dict(ok.attributes or {})["gateway.attempt"] == 2
    assert dict(ok.attributes or {})["gateway.model.alias"] == body["model"]
    # Each span is named for the route's operation, not "chat".
    for span in (failed, ok):
        assert dict(span.attributes or {})["gen_ai.operation.name"] == operation
        assert span.name.startswith(f"{operation} ")

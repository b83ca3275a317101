"""The Responses benchmark's pure parts: the bench upstream's encoded Responses answers, the
gateway config it generates, the body checks of the load generator and the report's verdicts.
Nothing here starts a process or times."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from gateway.config import UpstreamApi, load_settings

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def modules() -> Iterator[dict[str, ModuleType]]:
    """benchmarks/ is a directory of the repository, not an installed package."""
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(REPO))
        names = ("harness", "loadgen", "responses", "responses_upstream", "upstream", "variants")
        yield {name: importlib.import_module(f"benchmarks.{name}") for name in names}


def http_body(modules: dict[str, ModuleType], response: bytes) -> bytes:
    head, _, rest = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    if b"transfer-encoding: chunked" not in head:
        return rest
    decoded = modules["upstream"]._dechunk(bytearray(rest), 0)
    assert decoded is not None and decoded[1] == len(rest)
    body: bytes = decoded[0]
    return body


def test_the_upstream_answers_the_chat_reply_as_a_completed_response(modules: dict[str, ModuleType]) -> None:
    upstream = modules["upstream"]
    response = json.loads(http_body(modules, modules["responses_upstream"].RESPONSE))
    assert response["object"] == "response" and response["status"] == "completed"
    [message] = response["output"]
    assert message["content"][0]["text"] == "".join(upstream.CONTENT_PIECES)
    assert response["usage"]["input_tokens"] == upstream.USAGE["prompt_tokens"]
    assert response["usage"]["output_tokens"] == upstream.USAGE["completion_tokens"]


def test_the_upstream_streams_the_events_of_one_message_in_order(modules: dict[str, ModuleType]) -> None:
    text = http_body(modules, modules["responses_upstream"].RESPONSE_STREAM).decode()
    events = [block.split("\n") for block in text.split("\n\n") if block]
    names = [lines[0].removeprefix("event: ") for lines in events]
    payloads: list[dict[str, Any]] = [json.loads(lines[1].removeprefix("data: ")) for lines in events]
    assert [p["type"] for p in payloads] == names
    assert [p["sequence_number"] for p in payloads] == list(range(len(events)))
    assert names[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert names[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    deltas = "".join(p["delta"] for p in payloads if p["type"] == "response.output_text.delta")
    assert deltas == "".join(modules["upstream"].CONTENT_PIECES) == payloads[-4]["text"]
    assert payloads[-1]["response"]["output"][0]["content"][0]["text"] == deltas


def test_the_gateway_accepts_the_config_with_a_responses_deployment(
    modules: dict[str, ModuleType], tmp_path: Path
) -> None:
    text = modules["variants"].gateway_config(
        port=8000, upstream_port=9000, key="sk-bench-generated", data_dir=tmp_path / "redis", extra=[]
    )
    path = tmp_path / "gateway.toml"
    path.write_text(text + modules["responses"].PASSTHROUGH_MODEL)
    settings = load_settings(path, env={})
    by_name = {model.name: model for model in settings.models}
    assert by_name["bench-responses"].api is UpstreamApi.RESPONSES
    assert by_name["bench-responses"].provider == by_name["bench-model"].provider == "bench"


def test_a_body_check_with_expect_replaces_the_chat_checks(modules: dict[str, ModuleType]) -> None:
    loadgen = modules["loadgen"]

    def generator(**spec: Any) -> Any:
        return loadgen.LoadGenerator(loadgen.Spec.from_json({"host": "127.0.0.1", "port": 1, **spec}))

    completed = bytearray(b'{"object":"response","status":"completed","error":null}')
    assert generator().fault(completed) == "error body with status 200"
    assert generator(expect='"status":"completed"').fault(completed) is None
    stream = bytearray(b"event: response.created\n\nevent: response.completed\ndata: {}\n\n")
    checked = generator(stream=True, expect="event: response.completed", reject=["event: error"])
    assert checked.fault(stream) is None
    assert checked.fault(stream + b"event: error\ndata: {}\n\n") is not None
    assert checked.fault(bytearray(b"event: response.created\n\n")) is not None
    assert generator(stream=True).fault(stream) == "stream without [DONE] or with an error event"


def row(modules: dict[str, ModuleType], title: str, mode: str, cpu_ms: float) -> Any:
    result = {"rps": 1000.0, "latency_ms": {"p50": 1.0, "p99": 2.0}, "completed": 1000}
    return modules["responses"].Measured(modules["harness"].Row(title, result, cpu_ms), mode, 0.01)


def test_the_report_compares_each_case_with_chat_in_its_mode_and_flags_over_10_percent(
    modules: dict[str, ModuleType],
) -> None:
    report = modules["responses"].report(
        [
            row(modules, "chat completions (non-streaming)", "non-streaming", 0.200),
            row(modules, "responses, translated to chat (non-streaming)", "non-streaming", 0.210),
            row(modules, "chat completions (streaming)", "streaming", 0.400),
            row(modules, "WebSocket passthrough", "streaming", 0.600),
        ]
    )
    lines = {line.split(" | ")[0].removeprefix("| "): line for line in report if line.startswith("| ")}
    assert lines["chat completions (non-streaming)"].endswith("| reference |")
    assert lines["responses, translated to chat (non-streaming)"].endswith("| +5% |")
    assert lines["WebSocket passthrough"].endswith("| +50% **over 10 %** |")
    assert report[-1] == "- Over the 10 % budget: WebSocket passthrough."

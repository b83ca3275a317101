"""Bad input on the proxy routes (every ``POST`` the app serves before Litestar): never a 5xx,
never a traceback, and a request the gateway refuses itself writes nothing to Redis (no usage
event, no rate-limit state, no lease) and reaches no upstream.

Three batteries: bodies that are no request at all (every hot route), requests the gateway must
refuse before any upstream call (wrong types of the fields it reads, an unknown parent, a prompt
no deployment fits), and every top-level field of the main routes set to every kind of wrong
value (these may reach the upstream, which refuses them: still no 5xx).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from gateway.testing import GATEWAY_KEY
from tests.integration.hardening.conftest import Hardened, error_shape, tracebacks

_ENC = msgspec.json.Encoder()
USER = [{"role": "user", "content": "hi"}]


def nested(depth: int, leaf: bytes = b"1") -> bytes:
    return b"[" * depth + leaf + b"]" * depth


def valid_body(path: str, model: str = "gpt-4o-mini") -> dict[str, Any]:
    """A request each route accepts (for the routes this battery knows; a bare model otherwise)."""
    if path == "/v1/chat/completions":
        return {"model": model, "messages": USER}
    if path == "/v1/responses":
        return {"model": model, "input": "hi"}
    if path.startswith("/v1/messages"):
        return {"model": model, "max_tokens": 16, "messages": USER}
    if path in ("/v1/embeddings", "/v1/moderations"):
        return {"model": model, "input": "hi"}
    if path == "/v1/completions":
        return {"model": model, "prompt": "hi"}
    return {"model": model}


def malformed(path: str) -> Iterator[tuple[str, bytes]]:
    """Bodies that are no request: refused (4xx) by every hot route."""
    yield "empty", b""
    yield "truncated", b'{"model": "gpt-4o-mini", "messages": ['
    yield "array", b"[]"
    yield "number", b"1"
    yield "string", b'"hello"'
    yield "null", b"null"
    yield "invalid utf-8", b'{"model": "\xff\xfe"}'
    yield "lone surrogate", b'{"model": "\\ud800"}'
    yield "byte order mark", b"\xef\xbb\xbf{}"
    yield "nul", b"\x00"
    yield "two documents", b"{} {}"
    yield "nested 1,000", nested(1000)
    yield "nested 100,000 objects", b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    body = _ENC.encode(valid_body(path))[:-1]
    yield "nested 5,000 in a field", body + b',"extra":' + nested(5000) + b"}"
    yield "integer of 5,000 digits", body + b',"max_tokens":' + b"9" * 5000 + b"}"
    yield "float overflow", body + b',"temperature":1e400}'


def test_bodies_that_are_no_request_are_refused_on_every_hot_route(
    hardened: Hardened, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    failures: list[str] = []
    calls = hardened.upstream_calls()
    events = hardened.usage_events()
    before = hardened.snapshot()
    count = 0
    for path in sorted(hardened.app._routes):
        for name, body in malformed(path):
            count += 1
            response = hardened.send("POST", path, content=body)
            if not 400 <= response.status_code < 500:
                failures.append(f"{path} {name}: {response.status_code} {response.text[:200]}")
            elif (problem := error_shape(path, response)) is not None:
                failures.append(f"{path} {name}: {problem}")
    assert count >= 17 * 2
    assert not failures, "\n".join(failures)
    assert hardened.upstream_calls() == calls
    assert_nothing_written(hardened, before, events)
    assert not tracebacks(caplog.records)


def assert_nothing_written(hardened: Hardened, before: dict[bytes, bytes | None], events: int) -> None:
    """After the refused requests, one accepted request with a config key: once its usage event
    is written, every earlier settlement is too (the settler writes in order). Only what that
    request writes may differ: its own key's counters, the org-wide rollup, one usage event."""
    sentinel = hardened.send(
        "POST",
        "/v1/chat/completions",
        content=_ENC.encode(valid_body("/v1/chat/completions")),
        key=GATEWAY_KEY,
    )
    assert sentinel.status_code == 200, sentinel.text
    hardened.settled(events + 1)
    after = hardened.snapshot()
    config_ids = [c.key.id.encode() for c in hardened.gw.services.policy.config_keys.values()]
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    unexplained = [
        k
        for k in changed
        if not (k.endswith(b"usage") or b"roll:d:" in k or any(cid in k for cid in config_ids))
    ]
    assert unexplained == [], unexplained
    assert not [k for k in changed if hardened.kid.encode() in k]


def refused_before_upstream(hardened: Hardened) -> Iterator[tuple[str, str, dict[str, Any], int, str]]:
    """(name, path, body, status, code) of requests the gateway refuses itself."""
    chat, responses = "/v1/chat/completions", "/v1/responses"
    big = "word " * 4000  # about 5,000 tokens: beyond the tiny model's window
    for model in ("gpt-4o-mini", "claude"):
        for value in (1, 0, "true", [], {}, 1.5):
            yield (
                f"chat stream={value!r} {model}",
                chat,
                {**valid_body(chat, model), "stream": value},
                400,
                ("invalid_type"),
            )
            yield (
                f"responses stream={value!r} {model}",
                responses,
                {
                    **valid_body(responses, model),
                    "stream": value,
                },
                400,
                "invalid_type",
            )
        yield (
            f"chat stream_options string {model}",
            chat,
            {
                **valid_body(chat, model),
                "stream": True,
                "stream_options": "yes",
            },
            400,
            "invalid_type",
        )
        for value in ("x", [], 1, ["a", "b"]):
            yield (
                f"responses metadata={value!r} {model}",
                responses,
                {
                    **valid_body(responses, model),
                    "metadata": value,
                },
                400,
                "invalid_type",
            )
        yield (
            f"responses metadata value not a string {model}",
            responses,
            {
                **valid_body(responses, model),
                "metadata": {"a": 1},
            },
            400,
            "invalid_type",
        )
        yield (
            f"responses metadata of 17 pairs {model}",
            responses,
            {
                **valid_body(responses, model),
                "metadata": {f"k{i}": "v" for i in range(17)},
            },
            400,
            "object_above_max_properties",
        )
        yield (
            f"responses unknown parent {model}",
            responses,
            {
                **valid_body(responses, model),
                "previous_response_id": "resp_0123456789abcdef",
            },
            400,
            "previous_response_not_found",
        )
        for value in (1, [], {}, None):
            yield (
                f"chat model={value!r}",
                chat,
                {"model": value, "messages": USER},
                400,
                ("missing_required_parameter" if value is None else "invalid_type"),
            )
        yield f"chat messages string {model}", chat, {"model": model, "messages": "hi"}, 400, "invalid_type"
        yield f"chat messages empty {model}", chat, {"model": model, "messages": []}, 400, "empty_array"
        yield (
            f"chat message not an object {model}",
            chat,
            {"model": model, "messages": [1]},
            400,
            ("invalid_type"),
        )
        yield f"responses input number {model}", responses, {"model": model, "input": 1}, 400, "invalid_type"
        yield (
            f"responses input item not an object {model}",
            responses,
            {"model": model, "input": ["x"]},
            400,
            ("invalid_type"),
        )
    yield (
        "chat context too long",
        chat,
        {
            "model": "tiny",
            "messages": [{"role": "user", "content": big}],
        },
        400,
        "context_length_exceeded",
    )
    yield (
        "responses context too long",
        responses,
        {"model": "tiny", "input": big},
        400,
        "context_length_exceeded",
    )
    yield "chat unknown model", chat, {"model": "no-such-model", "messages": USER}, 404, "model_not_found"


def test_refusals_reach_no_upstream_and_write_nothing(
    hardened: Hardened, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    calls = hardened.upstream_calls()
    events = hardened.usage_events()
    before = hardened.snapshot()
    failures: list[str] = []
    for name, path, body, status, code in refused_before_upstream(hardened):
        response = hardened.send("POST", path, content=_ENC.encode(body))
        got = (
            response.json().get("error", {})
            if response.headers.get("content-type") == "application/json"
            else {}
        )
        if response.status_code != status or got.get("code") != code:
            failures.append(f"{name}: {response.status_code} {response.text[:300]}")
    assert not failures, "\n".join(failures)
    assert hardened.upstream_calls() == calls
    assert_nothing_written(hardened, before, events)
    assert not tracebacks(caplog.records)


WRONG_VALUES: list[Any] = [
    1,
    -1,
    2**63 - 1,
    2**64,
    -(2**63),
    1.5,
    "",
    "x",
    "²",
    "\u202e\u0000\ufeff",
    True,
    None,
    [],
    {},
    [1, "a", None],
    {"a": [{"b": None}]},
    [{"type": ["list"]}, {"type": {"an": "object"}}],
]


def fields_of(path: str) -> list[str]:
    common = ["model", "stream", "stream_options", "metadata", "user", "temperature", "top_p", "tools"]
    common += ["tool_choice", "parallel_tool_calls", "max_tokens", "stop", "seed", "service_tier", "store"]
    if path == "/v1/chat/completions":
        return [
            *common,
            "messages",
            "n",
            "max_completion_tokens",
            "response_format",
            "logprobs",
            "top_logprobs",
            "functions",
            "function_call",
            "reasoning_effort",
            "modalities",
            "prediction",
        ]
    if path == "/v1/responses":
        return [
            *common,
            "input",
            "instructions",
            "previous_response_id",
            "max_output_tokens",
            "text",
            "reasoning",
            "include",
            "truncation",
            "background",
            "conversation",
            "prompt",
            "max_tool_calls",
        ]
    return [*common, "messages", "system", "top_k", "stop_sequences", "thinking"]


def nested_variants(path: str, model: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Wrong values one level down: message fields, content parts, input items, tool schemas."""
    base = valid_body(path, model)
    deep: Any = 1
    for _ in range(900):  # as deep as the decoder follows
        deep = [deep]
    odd: list[Any] = [{"type": ["x"]}, {"type": {"a": 1}}, {"type": 1}, {"type": None}, {}, [], "x", 1]
    for value in [*WRONG_VALUES, deep]:
        for part in odd:
            if path == "/v1/responses":
                yield f"input item {part!r}", {**base, "input": [part]}
                yield f"content part {part!r}", {**base, "input": [{"role": "user", "content": [part]}]}
            else:
                yield f"content part {part!r}", {**base, "messages": [{"role": "user", "content": [part]}]}
        if path == "/v1/responses":
            yield f"input content {value!r:.40}", {**base, "input": [{"role": "user", "content": value}]}
            yield f"input role {value!r:.40}", {**base, "input": [{"role": value, "content": "hi"}]}
            yield (
                f"function output {value!r:.40}",
                {
                    **base,
                    "input": [{"type": "function_call_output", "call_id": value, "output": value}],
                },
            )
        else:
            yield f"content {value!r:.40}", {**base, "messages": [{"role": "user", "content": value}]}
            yield f"role {value!r:.40}", {**base, "messages": [{"role": value, "content": "hi"}]}
            yield (
                f"tool call arguments {value!r:.40}",
                {
                    **base,
                    "messages": [
                        *USER,
                        {
                            "role": "assistant",
                            "tool_calls": [
                                {
                                    "id": "c1",
                                    "type": "function",
                                    "function": {"name": "f", "arguments": value},
                                }
                            ],
                        },
                        {"role": "tool", "tool_call_id": "c1", "content": value},
                    ],
                },
            )
        yield (
            f"tool parameters {value!r:.40}",
            {
                **base,
                "tools": [{"type": "function", "function": {"name": "f", "parameters": value}, "name": "f"}],
            },
        )
    for depth in (900, 5000):
        yield from deep_arguments(path, base, depth)


def deep_arguments(path: str, base: dict[str, Any], depth: int) -> Iterator[tuple[str, dict[str, Any]]]:
    """Tool-call arguments as JSON text nested ``depth`` deep (translators decode it)."""
    text = "[" * depth + "]" * depth
    if path == "/v1/responses":
        call = {"type": "function_call", "call_id": "c1", "name": "f", "arguments": text}
        output = {"type": "function_call_output", "call_id": "c1", "output": "ok"}
        yield f"function_call arguments nested {depth}", {**base, "input": [call, output]}
        return
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": text}}
    messages = [
        *USER,
        {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "ok"},
    ]
    yield f"tool call arguments nested {depth}", {**base, "messages": messages}


MAIN_ROUTES = [
    ("/v1/chat/completions", "gpt-4o-mini"),
    ("/v1/chat/completions", "claude"),
    ("/v1/responses", "gpt-4o-mini"),
    ("/v1/responses", "claude"),
    ("/v1/responses", "llama"),
    ("/v1/messages", "claude"),
    ("/v1/messages", "gpt-4o-mini"),
]


@pytest.mark.parametrize(("path", "model"), MAIN_ROUTES)
def test_every_field_of_every_wrong_type_is_no_server_error(
    hardened: Hardened, caplog: pytest.LogCaptureFixture, path: str, model: str
) -> None:
    if path not in hardened.app._routes:
        pytest.skip(f"{path} is not served")
    caplog.set_level(logging.INFO)
    failures: list[str] = []
    cases: list[tuple[str, dict[str, Any]]] = []
    for name in fields_of(path):
        for value in WRONG_VALUES:
            cases.append((f"{name}={value!r:.40}", {**valid_body(path, model), name: value}))
    cases += list(nested_variants(path, model))
    for name, body in cases:
        response = hardened.send("POST", path, content=_ENC.encode(body))
        if response.status_code >= 500:
            failures.append(f"{name}: {response.status_code} {response.text[:300]}")
        elif (problem := error_shape(path, response)) is not None:
            failures.append(f"{name}: {problem}")
    assert len(cases) > 300
    assert not failures, f"{len(failures)} of {len(cases)}:\n" + "\n".join(failures[:40])
    assert not tracebacks(caplog.records), tracebacks(caplog.records)[:10]

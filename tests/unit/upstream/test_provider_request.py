"""``Upstream.request`` builds, in one pass, the request ``httpx.Request(content=...)`` builds:
the same headers in the same order with the same values, and the same content; a posted body's
request also carries the bytes the gateway's transport writes for it, from a head kept per path."""

from __future__ import annotations

import httpx
import pytest

from gateway.config import ProviderKind, ProviderSettings
from gateway.upstream.http11_transport import JOIN_LIMIT, WireRequest, _serialise
from gateway.upstream.provider import Upstream


def upstream(headers: dict[str, str] | None = None) -> Upstream:
    settings = ProviderSettings(
        name="p",
        kind=ProviderKind.OPENAI,
        base_url="http://127.0.0.1:8123/v1",
        api_key="sk-test",
        headers=headers or {},
    )
    return Upstream(settings, httpx.MockTransport(lambda r: httpx.Response(200)))


def reference(
    up: Upstream, method: str, path: str, body: bytes | None, headers: dict[str, str]
) -> httpx.Request:
    merged = {**up._headers, **headers}
    return httpx.Request(method, httpx.URL(up.base_url + path), content=body, headers=merged)


@pytest.mark.parametrize(
    ("method", "body", "extra", "configured"),
    [
        ("POST", b'{"model":"m"}', {}, {}),
        ("POST", b"", {}, {}),
        ("POST", None, {}, {}),
        ("GET", None, {}, {}),
        ("DELETE", None, {}, {}),
        ("POST", b"{}", {"OpenAI-Beta": "assistants=v2", "x-trace": "1"}, {}),
        ("POST", b"{}", {"Content-Length": "2"}, {}),  # a caller's own framing: httpx decides
        ("POST", b"{}", {}, {"Host": "proxy.example"}),  # a configured Host header
        ("POST", b"{}", {"transfer-encoding": "chunked"}, {}),
    ],
)
def test_the_request_is_the_one_httpx_builds(
    method: str, body: bytes | None, extra: dict[str, str], configured: dict[str, str]
) -> None:
    up = upstream(configured)
    built = up.request(method, "/chat/completions", body, headers=extra)
    expected = reference(up, method, "/chat/completions", body, extra)
    assert built.method == expected.method
    assert built.url == expected.url
    assert built.headers.raw == expected.headers.raw
    assert built.content == expected.content
    assert built.extensions["timeout"] == up._timeout


@pytest.mark.parametrize(
    ("configured", "extra"),
    [
        ({}, {}),
        ({"X-Org": "team-7"}, {}),
        ({}, {"anthropic-version": "2023-06-01"}),
        ({"A": "1"}, {"a": "2"}),
    ],
)
async def test_a_posted_body_carries_the_bytes_the_transport_would_write(
    configured: dict[str, str], extra: dict[str, str]
) -> None:
    up = upstream(configured)
    body = b'{"model":"m","messages":[]}'
    for _ in range(2):  # the second from the head kept for the path and headers
        built = up.request("POST", "/chat/completions", body, headers=extra)
        assert isinstance(built, WireRequest)
        expected = reference(up, "POST", "/chat/completions", body, extra)
        assert built.wire == (await _serialise(expected))[0]
        assert built.origin == ("http", "127.0.0.1", 8123)
        assert built.headers.raw == expected.headers.raw


def test_what_the_head_cannot_be_written_ahead_for_takes_the_general_path() -> None:
    body = b"{}"
    assert not isinstance(
        upstream().request("POST", "/x", body, headers={"Content-Length": "2"}), WireRequest
    )
    assert not isinstance(upstream().request("POST", "/x", b"x" * (JOIN_LIMIT + 1)), WireRequest)
    assert not isinstance(upstream().request("GET", "/x"), WireRequest)


def test_heads_are_kept_for_a_bounded_number_of_header_combinations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gateway.upstream.provider.HEADS_KEPT", 2)
    up = upstream()
    for n in range(4):
        built = up.request("POST", "/x", b"{}", headers={"x-trace": str(n)})
        assert isinstance(built, WireRequest)  # written ahead or not, the same request
        assert built.headers["x-trace"] == str(n)
    assert len(up._heads) == 2

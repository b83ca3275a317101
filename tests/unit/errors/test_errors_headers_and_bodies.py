"""Retry-After parsing and detail extraction (chatd-spec §2.6)."""

from __future__ import annotations

import gzip

import httpx
import pytest

from gateway.errors import parse_retry_after
from gateway.errors._body import parse_body, strip_http_dump, truncate_detail

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z
HTTP_DATE_3S_AHEAD = "Fri, 15 Jan 2027 08:00:03 GMT"


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "30"}, 30.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"Retry-After": "30", "ReTrY-AfTeR-Ms": "1500"}, 1.5),
        ({"retry-after-ms": "250.5"}, 0.2505),
        ({"retry-after-ms": "0", "retry-after": "4"}, 4.0),
        ({"retry-after-ms": "soon", "retry-after": "4"}, 4.0),
        ({"Retry-After": HTTP_DATE_3S_AHEAD}, 3.0),
        ({"Retry-After": "Fri, 15 Jan 2027 07:59:00 GMT"}, 0.0),
        ({"Retry-After": "Friday, 15-Jan-27 08:00:10 GMT"}, 10.0),
        ({"Retry-After": "definitely not a delay"}, 0.0),
        ({"Retry-After": "-5"}, 0.0),
        ({"Retry-After": "nan"}, 0.0),
        ({"Retry-After": "inf"}, 0.0),
        ({"Retry-After": ""}, 0.0),
        ({"x-ratelimit-reset-requests": "12ms"}, 0.0),
        ({}, 0.0),
    ],
)
def test_retry_after_forms(headers: dict[str, str], seconds: float) -> None:
    assert parse_retry_after(headers, now=NOW) == pytest.approx(seconds, abs=1e-9)


def test_retry_after_reads_httpx_headers() -> None:
    headers = httpx.Headers([("Retry-After", "30"), ("Retry-After-Ms", "2000")])
    assert parse_retry_after(headers, now=NOW) == 2.0


def test_http_date_needs_a_clock() -> None:
    assert parse_retry_after({"Retry-After": HTTP_DATE_3S_AHEAD}, now=0.0) == 0.0
    assert parse_retry_after(None, now=NOW) == 0.0


def test_detail_truncation_keeps_500_characters() -> None:
    assert truncate_detail("  short  ") == "short"
    assert truncate_detail("x" * 500) == "x" * 500
    cut = truncate_detail("é" * 501)
    assert len(cut) == 500
    assert cut == "é" * 499 + "…"


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b'{"error": {"message": " first choice ", "type": "x"}, "message": "second"}', "first choice"),
        (b'{"error": {"type": "x"}, "message": "second choice"}', "second choice"),
        (b'{"message": "top level only", "object": "error", "code": 400}', "top level only"),
        (b'{"error": "model \'llama9\' not found"}', "model 'llama9' not found"),
        (b'{"detail": "Not Found"}', "Not Found"),
        (
            b'[{"error": {"code": 429, "message": "Resource exhausted", "status": "RESOURCE_EXHAUSTED"}}]',
            "Resource exhausted",
        ),
        (b'{"error": {"code": "some_code"}}', "some_code"),
        (
            b"upstream connect error or disconnect/reset before headers",
            "upstream connect error or disconnect/reset before headers",
        ),
        (
            b"<html><head><title>502 Bad Gateway</title><style>p{}</style></head><body><h1>502 Bad&nbsp;Gateway</h1></body></html>",
            "502 Bad Gateway 502 Bad Gateway",
        ),
        (b"", ""),
    ],
)
def test_detail_extraction(body: bytes, detail: str) -> None:
    assert parse_body(body).detail == detail


def test_http_dump_headers_are_stripped() -> None:
    dump = (
        b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nRetry-After: 3\r\n\r\n"
        b'{"error": {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}}'
    )
    parsed = parse_body(dump)
    assert parsed.detail == "slow down"
    assert parsed.fields is not None
    assert (parsed.fields.type, parsed.fields.code) == ("requests", "rate_limit_exceeded")


def test_only_real_dumps_are_stripped() -> None:
    assert strip_http_dump("POST /v1/messages HTTP/1.1\nHost: x\n\nbody") == "body"
    assert strip_http_dump("HTTP/2 500\n\nboom") == "boom"
    assert strip_http_dump("Error\n\nsecond paragraph") == "Error\n\nsecond paragraph"


def test_long_messages_are_truncated_in_detail() -> None:
    body = b'{"error": {"message": "' + b"a" * 900 + b'"}}'
    assert parse_body(body).detail == "a" * 499 + "…"


def test_only_the_first_64_kib_are_read() -> None:
    # A JSON document cut at 64 KiB no longer parses; its text is used instead.
    body = b'{"error": {"message": "' + b"b" * 70_000 + b'"}}'
    parsed = parse_body(body)
    assert parsed.fields is None
    assert parsed.detail == '{"error": {"message": "' + "b" * 476 + "…"
    assert len(parsed.text) == 64 * 1024


def test_gzip_bodies_are_decompressed() -> None:
    body = gzip.compress(b'{"error": {"message": "compressed", "type": "server_error"}}')
    assert parse_body(body).detail == "compressed"


def test_an_sse_body_uses_its_first_data_line() -> None:
    body = (
        b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    )
    parsed = parse_body(body)
    assert parsed.detail == "Overloaded"
    assert parsed.fields is not None
    assert parsed.fields.type == "overloaded_error"

"""The request decoders against generated input: arbitrary bytes, JSON of every shape with odd
unicode, nesting as deep as the decoder follows and deeper, wrong types at every field the
gateway reads. Each decoder either returns or refuses with its route's own 400; nothing else
(no TypeError, no RecursionError, no ValueError) may escape. The token estimator and the
scrubber take whatever a decoded body holds.
"""

from __future__ import annotations

import contextlib
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.chat_completions.request import parse_chat_request
from gateway.chats import requests as chat_requests
from gateway.chats.errors import ChatApiError
from gateway.chats.stream import resume_id
from gateway.errors._scrub import scrub
from gateway.errors.client import GatewayError, InvalidRequest
from gateway.exchange.body import parse_count
from gateway.policy.admin import KeyCreate, Rotate, TeamCreate
from gateway.responses.request import parse_responses_request
from gateway.token_estimate import estimate_chat_tokens, estimate_responses_tokens

_ENC = msgspec.json.Encoder()
ODD_TEXT = st.text(
    alphabet=st.sampled_from(
        ["a", "\u00b2", "\u0663", "\u202e", "\u0000", "\ufeff", "\U0001f600", "é", '"', "\\"]
    )
    | st.characters(exclude_categories=("Cs",)),
    max_size=20,
)
SCALARS = st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1) | ODD_TEXT
SCALARS |= st.floats(allow_nan=False, allow_infinity=False)
JSON = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(ODD_TEXT, children, max_size=4),
    max_leaves=20,
)
FIELDS = [
    "model",
    "messages",
    "input",
    "stream",
    "stream_options",
    "metadata",
    "service_tier",
    "previous_response_id",
    "instructions",
    "background",
    "store",
    "conversation",
    "tools",
    "max_tokens",
    "role",
    "content",
    "type",
]
REQUESTS = st.dictionaries(st.sampled_from(FIELDS) | ODD_TEXT, JSON, max_size=8)
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def nested(depth: int) -> bytes:
    return b'{"model": "m", "messages": ' + b"[" * depth + b"]" * depth + b"}"


def decoders() -> list[tuple[str, Any, type[Exception]]]:
    return [
        ("chat", parse_chat_request, InvalidRequest),
        ("responses", parse_responses_request, InvalidRequest),
        ("chat create", lambda b: chat_requests.decode(b, chat_requests.CreateChatRequest), ChatApiError),
        ("chat send", lambda b: chat_requests.decode(b, chat_requests.SendMessageRequest), ChatApiError),
        ("tool results", lambda b: chat_requests.decode(b, chat_requests.ToolResultsRequest), ChatApiError),
        ("admin key", lambda b: _admin(b, KeyCreate), GatewayError),
        ("admin team", lambda b: _admin(b, TeamCreate), GatewayError),
        ("admin rotate", lambda b: _admin(b, Rotate), GatewayError),
    ]


def _admin(body: bytes, kind: type[Any]) -> Any:
    """What the admin controller does with a body (its decode errors are answered as 400s)."""
    try:
        return msgspec.json.decode(body, type=kind)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as exc:
        raise InvalidRequest(str(exc)) from None


def refuses_cleanly(decode: Any, refusal: type[Exception], body: bytes) -> None:
    with contextlib.suppress(refusal):
        decode(body)


@pytest.mark.parametrize(("name", "decode", "refusal"), decoders(), ids=[d[0] for d in decoders()])
@FUZZ
@given(body=st.binary(max_size=200))
def test_arbitrary_bytes(name: str, decode: Any, refusal: type[Exception], body: bytes) -> None:
    refuses_cleanly(decode, refusal, body)


@pytest.mark.parametrize(("name", "decode", "refusal"), decoders(), ids=[d[0] for d in decoders()])
@FUZZ
@given(value=JSON)
def test_any_json_value(name: str, decode: Any, refusal: type[Exception], value: Any) -> None:
    refuses_cleanly(decode, refusal, _ENC.encode(value))


@pytest.mark.parametrize(("name", "decode", "refusal"), decoders(), ids=[d[0] for d in decoders()])
@FUZZ
@given(value=REQUESTS)
def test_objects_with_wrong_types_at_every_field(
    name: str, decode: Any, refusal: type[Exception], value: Any
) -> None:
    refuses_cleanly(decode, refusal, _ENC.encode(value))


@pytest.mark.parametrize(("name", "decode", "refusal"), decoders(), ids=[d[0] for d in decoders()])
@pytest.mark.parametrize("text", [b'"\\ud800"', b'"\\udfff x"', b'"\xed\xa0\x80"', b'"\x00"'])
def test_lone_surrogates_and_nul(name: str, decode: Any, refusal: type[Exception], text: bytes) -> None:
    refuses_cleanly(decode, refusal, b'{"model": ' + text + b', "message": ' + text + b"}")


@pytest.mark.parametrize(("name", "decode", "refusal"), decoders(), ids=[d[0] for d in decoders()])
@pytest.mark.parametrize("depth", [500, 998, 999, 1000, 100_000])
def test_deep_nesting(name: str, decode: Any, refusal: type[Exception], depth: int) -> None:
    refuses_cleanly(decode, refusal, nested(depth))
    refuses_cleanly(decode, refusal, b'{"a":' * depth + b"1" + b"}" * depth)


@FUZZ
@given(value=REQUESTS, items=st.lists(JSON, max_size=6))
def test_the_token_estimator_takes_any_decoded_body(value: dict[str, Any], items: list[Any]) -> None:
    assert estimate_chat_tokens(value) >= 0
    assert estimate_chat_tokens({"messages": items, "tools": items}) >= 0
    assert estimate_responses_tokens(items, None, items) >= 0
    assert estimate_responses_tokens([{"type": item} for item in items], None, None) >= 0


@given(text=ODD_TEXT | st.text(alphabet="0123456789-\u00b2\u0663", max_size=50))
def test_counts_and_resume_points_are_read_or_refused(text: str) -> None:
    count = parse_count(text)
    assert count is None or ((0 <= count < 10**18 and str(count) == text.lstrip("0")) or count == 0)
    try:
        resumed = resume_id(text)
    except ChatApiError as refused:
        status = refused.status
    else:
        status, _ = 200, resumed
        assert resumed in (None, text)
    assert status in (200, 400)


@given(text=st.text(max_size=300))
def test_the_scrubber_takes_any_text(text: str) -> None:
    assert isinstance(scrub(text), str)


@pytest.mark.parametrize(
    ("text", "kept", "gone"),
    [
        ("Incorrect API key provided: sk-PROV****c123.", "Incorrect API key provided", "PROV"),
        ("invalid x-api-key sk-ant-api03-AbCdEf0123456789", "invalid x-api-key", "AbCdEf"),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload", "Authorization", "eyJ"),
        ("connect to http://10.1.2.3:8000/v1/chat/completions failed", "failed", "10.1.2.3"),
        ("upstream vllm.internal:8443 refused the connection", "refused", "vllm"),
        ("token 0123456789abcdef0123456789abcdef is expired", "is expired", "0123456789abcdef"),
        (
            "model meta-llama/Llama-3.1-8B-Instruct does not exist",
            "meta-llama/Llama-3.1-8B-Instruct",
            "[redacted]",
        ),
        ("Missing required parameter: 'messages'.", "Missing required parameter: 'messages'.", "[redacted]"),
    ],
)
def test_the_scrubber_keeps_prose_and_drops_secrets_and_addresses(text: str, kept: str, gone: str) -> None:
    scrubbed = scrub(text)
    assert kept in scrubbed
    assert gone not in scrubbed

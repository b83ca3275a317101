"""Properties that hold for any input: classification never fails and stays in bounds."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import (
    ErrorKind,
    classify_response,
    classify_stream_error,
    classify_text,
    error_response,
    with_provider,
)

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
_ERROR_KEYS = st.sampled_from(["message", "type", "code", "param", "status", "error"])


@given(st.text(max_size=2000), st.integers(min_value=0, max_value=999))
def test_text_classification_is_total(text: str, status: int) -> None:
    ce = classify_text(text, status_code=status)
    assert ce.kind in ErrorKind
    assert ce.message
    assert ce.retry_message
    assert ce.retry_after >= 0
    assert len(ce.detail) <= 500


@given(
    st.integers(min_value=100, max_value=599),
    st.binary(max_size=3000) | _JSON.map(lambda value: json.dumps(value).encode()),
    st.dictionaries(
        st.sampled_from(["retry-after", "Retry-After-Ms", "x"]), st.text(max_size=30), max_size=3
    ),
)
def test_response_classification_is_total(status: int, body: bytes, headers: dict[str, str]) -> None:
    ce = classify_response(status, headers, body, provider="openai", now=1_800_000_000.0)
    assert ce.retry_after >= 0
    assert len(ce.detail) <= 500
    answer_status, answer_headers, answer_body = error_response(ce)
    assert 400 <= answer_status <= 599
    assert answer_headers["x-should-retry"] in ("true", "false")
    error = json.loads(answer_body)["error"]
    assert set(error) == {
        "message",
        "type",
        "param",
        "code",
        "kind",
        "provider",
        "retryable",
        "status_code",
        "detail",
    }
    assert isinstance(error["message"], str)
    assert error["message"]


@given(st.dictionaries(_ERROR_KEYS, _JSON, max_size=5), st.sampled_from([0, 200, 400, 500]))
def test_stream_classification_is_total(payload: dict[str, Any], status: int) -> None:
    ce = classify_stream_error(payload, provider="anthropic", status_code=status)
    assert ce.provider == "anthropic"
    assert len(ce.detail) <= 500


@given(st.text(max_size=200), st.sampled_from(["openai", "anthropic", "azure openai", "", "custom"]))
def test_with_provider_keeps_the_classification(text: str, provider: str) -> None:
    ce = classify_text(text)
    moved = with_provider(ce, provider)
    assert (
        moved.kind,
        moved.retryable,
        moved.status_code,
        moved.retry_after,
        moved.failover,
        moved.code,
    ) == (
        ce.kind,
        ce.retryable,
        ce.status_code,
        ce.retry_after,
        ce.failover,
        ce.code,
    )

"""The body for an Anthropic upstream: only the top-level ``model`` value changes, byte for byte."""

from __future__ import annotations

import msgspec
import pytest

from gateway.messages.passthrough import with_model

_RAW = msgspec.json.Decoder(dict[str, msgspec.Raw])


def rewrite(body: bytes, model: str) -> bytes:
    return with_model(body, _RAW.decode(body), model)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"model":"claude","max_tokens":5}', b'{"model":"claude-haiku-4-5","max_tokens":5}'),
        (
            b'{ "max_tokens" : 5 ,\n  "model" :  "claude" , "x": {"model": "keep"}}',
            b'{ "max_tokens" : 5 ,\n  "model" :  "claude-haiku-4-5" , "x": {"model": "keep"}}',
        ),
        (
            b'{"messages":[{"role":"user","content":"the \\"model\\": \\"claude\\" text"}],"model":"claude"}',
            b'{"messages":[{"role":"user","content":"the \\"model\\": \\"claude\\" text"}],"model":"claude-haiku-4-5"}',
        ),
        (
            b'{"k\\u0065y":1.50,"model":"cl\\u00e4ude","z":1e3}',
            b'{"k\\u0065y":1.50,"model":"claude-haiku-4-5","z":1e3}',
        ),
    ],
)
def test_only_the_model_value_changes(body: bytes, expected: bytes) -> None:
    assert rewrite(body, "claude-haiku-4-5") == expected


def test_a_body_already_naming_the_upstream_model_is_the_same_object() -> None:
    body = b'{"model": "claude-haiku-4-5", "max_tokens": 5}'
    assert rewrite(body, "claude-haiku-4-5") is body


def test_a_duplicated_key_falls_back_to_re_encoding_with_the_decoded_values() -> None:
    body = b'{"model":"a","max_tokens":1,"model":"claude"}'
    assert msgspec.json.decode(rewrite(body, "up")) == {"model": "up", "max_tokens": 1}


def test_cache_control_thinking_signatures_and_unknown_fields_survive() -> None:
    body = (
        b'{"model":"claude","max_tokens":64,"future_field":{"a":[1,2,3]},'
        b'"system":[{"type":"text","text":"sys","cache_control":{"type":"ephemeral","ttl":"1h"}}],'
        b'"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":['
        b'{"type":"thinking","thinking":"hmm","signature":"EqSig+/=="},{"type":"text","text":"ok"}]},'
        b'{"role":"user","content":"again"}]}'
    )
    out = rewrite(body, "claude-sonnet-4-5")
    assert out == body.replace(b'"model":"claude"', b'"model":"claude-sonnet-4-5"', 1)

"""Gateway keys: constant-time lookup by digest, the header forms SDKs use, OpenAI's 401s."""

from __future__ import annotations

import hashlib

import pytest

from gateway.config import GatewayKey
from gateway.errors.client import AuthenticationFailed
from gateway.policy.auth import KeyRing, presented_key

RING = KeyRing(
    [
        GatewayKey(name="plain", key="sk-plain-key-123"),
        GatewayKey(name="hashed", hash="sha256:" + hashlib.sha256(b"sk-hashed-key-456").hexdigest()),
    ]
)


def test_plain_and_hashed_keys() -> None:
    assert RING.authenticate("sk-plain-key-123").key_name == "plain"
    principal = RING.authenticate("sk-hashed-key-456")
    assert principal.key_name == "hashed"
    assert principal.key_id == hashlib.sha256(b"sk-hashed-key-456").hexdigest()[:12]


@pytest.mark.parametrize(
    ("authorization", "api_key", "x_api_key", "expected"),
    [
        ("Bearer sk-a", None, None, "sk-a"),
        ("bearer  sk-a ", None, None, "sk-a"),
        ("Basic abc", "sk-b", None, "sk-b"),
        (None, None, "sk-c", "sk-c"),
        (None, None, None, None),
        ("Bearer ", None, None, None),
    ],
)
def test_presented_key_forms(
    authorization: str | None, api_key: str | None, x_api_key: str | None, expected: str | None
) -> None:
    assert presented_key(authorization, api_key, x_api_key) == expected


def test_missing_and_wrong_keys_say_nothing_about_existing_keys() -> None:
    with pytest.raises(AuthenticationFailed) as missing:
        RING.authenticate(None)
    assert missing.value.status_code == 401
    assert "didn't provide an API key" in missing.value.message
    with pytest.raises(AuthenticationFailed) as wrong:
        RING.authenticate("sk-plain-key-124")
    assert wrong.value.code == "invalid_api_key"
    assert wrong.value.message == "Incorrect API key provided: sk-****-124."
    assert b"plain" not in wrong.value.body()

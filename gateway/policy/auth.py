"""Gateway keys: who is calling.

Keys are held only as SHA-256 digests; a presented key is hashed and compared against every
known digest with ``hmac.compare_digest`` (constant time, and no early exit that would tell
how many keys exist or which one nearly matched).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

import msgspec

from gateway.config import GatewayKey
from gateway.errors.client import AuthenticationFailed


class Principal(msgspec.Struct, frozen=True):
    """The caller: a gateway key, by name and id (the digest's hex prefix, safe to log)."""

    key_name: str
    key_id: str


MISSING_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header using "
    "Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
)


def incorrect_key(presented: str) -> AuthenticationFailed:
    """OpenAI's refusal of a wrong key: only its first three and last four characters shown."""
    shown = presented[:3] + "*" * 4 + presented[-4:] if len(presented) > 8 else "*" * 4
    return AuthenticationFailed(f"Incorrect API key provided: {shown}.", code="invalid_api_key")


def presented_key(authorization: str | None, api_key: str | None, x_api_key: str | None) -> str | None:
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return (api_key or x_api_key or "").strip() or None


class KeyRing:
    def __init__(self, keys: Iterable[GatewayKey]) -> None:
        self._entries = tuple((k.digest(), Principal(k.name, k.digest().hex()[:12])) for k in keys)

    def authenticate(self, presented: str | None) -> Principal:
        if not presented:
            raise AuthenticationFailed(MISSING_KEY)
        digest = hashlib.sha256(presented.encode()).digest()
        found: Principal | None = None
        for known, principal in self._entries:
            if hmac.compare_digest(known, digest):
                found = principal
        if found is None:
            raise incorrect_key(presented)
        return found

"""Who may use the admin operations: the admin keys of the config file, never an inference
key. A ``viewer`` key reads; an ``admin`` key reads and writes."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import Protocol

from gateway.errors.client import AuthenticationFailed, PermissionDenied


class AdminKeyLike(Protocol):
    """An ``[admin] keys`` entry of the config."""

    @property
    def name(self) -> str: ...
    @property
    def role(self) -> str: ...
    def digest(self) -> bytes: ...


def admin_name(keys: Iterable[AdminKeyLike], presented: str | None, *, write: bool) -> str:
    """The name of the admin key ``presented``: 401 for anything else (inference keys
    included), 403 for a viewer asking to write. Every key is compared (constant time, no
    early exit)."""
    if not presented:
        raise AuthenticationFailed("An admin API key is required.", code="invalid_api_key")
    digest = hashlib.sha256(presented.encode()).digest()
    found: AdminKeyLike | None = None
    for admin in keys:
        if hmac.compare_digest(admin.digest(), digest):
            found = admin
    if found is None:
        raise AuthenticationFailed("Incorrect admin API key provided.", code="invalid_api_key")
    if write and found.role != "admin":
        raise PermissionDenied("This admin key may only read.", code="insufficient_permissions")
    return found.name

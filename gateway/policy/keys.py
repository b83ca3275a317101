"""Gateway key format and hashing.

A key created through the admin API looks like ``sk-gw_<kid>_<secret><crc>``:

- ``kid``: 12 lower-case base32 characters, the key's public id (logs, admin API, UI);
- ``secret``: 43 base62 characters (about 256 random bits);
- ``crc``: 6 base62 characters of CRC32 over everything before it, so junk is refused
  without touching Redis and secret scanners can recognise the format.

Only a digest is stored: HMAC-SHA256 with a server pepper when ``GATEWAY_KEY_PEPPER`` is set,
plain SHA-256 otherwise (the secret has enough entropy that a slow hash buys nothing, and this
one runs on every request).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import zlib

PREFIX = "sk-gw_"
_B62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_B32 = "abcdefghijklmnopqrstuvwxyz234567"
KID_LEN = 12
SECRET_LEN = 43
CRC_LEN = 6
KEY_LEN = len(PREFIX) + KID_LEN + 1 + SECRET_LEN + CRC_LEN


def _b62(value: int, width: int) -> str:
    out = []
    for _ in range(width):
        value, digit = divmod(value, 62)
        out.append(_B62[digit])
    return "".join(reversed(out))


def _crc(body: str) -> str:
    return _b62(zlib.crc32(body.encode()), CRC_LEN)


def new_kid() -> str:
    return "".join(secrets.choice(_B32) for _ in range(KID_LEN))


def new_key(kid: str) -> str:
    body = f"{PREFIX}{kid}_" + "".join(secrets.choice(_B62) for _ in range(SECRET_LEN))
    return body + _crc(body)


def kid_of(presented: str) -> str | None:
    """The key id embedded in a well-formed gateway key (checksum verified), else None."""
    if len(presented) != KEY_LEN or not presented.startswith(PREFIX):
        return None
    body, crc = presented[:-CRC_LEN], presented[-CRC_LEN:]
    if presented[len(PREFIX) + KID_LEN] != "_" or _crc(body) != crc:
        return None
    return presented[len(PREFIX) : len(PREFIX) + KID_LEN]


def masked(presented: str) -> str:
    return f"{presented[: len(PREFIX) + KID_LEN]}...{presented[-4:]}"


class KeyHasher:
    """Digest of a presented key; the pepper (if any) comes from the environment at start-up."""

    __slots__ = ("_pepper",)

    def __init__(self, pepper: str | None) -> None:
        self._pepper = pepper.encode() if pepper else None

    def digest(self, presented: str) -> bytes:
        if self._pepper is None:
            return hashlib.sha256(presented.encode()).digest()
        return hmac.new(self._pepper, presented.encode(), hashlib.sha256).digest()

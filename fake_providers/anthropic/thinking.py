"""Thinking blocks: the fake signs the thoughts it writes and checks the ones it is sent back.

Anthropic refuses a ``thinking`` block whose ``signature`` it did not issue for that text
("Invalid `signature` in `thinking` block"), which is what breaks when a proxy rewrites a
thought, or sends one that came from another provider. The fake's signature is a digest of the
text, so a test can tell a thought that came back intact from one that did not.
"""

from __future__ import annotations

import base64
import hashlib

import msgspec


class Extras(msgspec.Struct, frozen=True):
    """What a scripted reply adds to an Anthropic answer: a thought and cache usage."""

    thinking: str | None = None
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0


NO_EXTRAS = Extras()


def sign(thinking: str) -> str:
    digest = hashlib.sha256(b"fake-anthropic-thinking:" + thinking.encode()).digest()
    return "Eq" + base64.b64encode(digest).decode()


def valid_signature(block: dict[str, object]) -> bool:
    thinking, signature = block.get("thinking"), block.get("signature")
    return isinstance(thinking, str) and isinstance(signature, str) and signature == sign(thinking)

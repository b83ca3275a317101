"""Identifiers and `created` timestamps, random or (with a seed) deterministic."""

from __future__ import annotations

import hashlib
import random
import string
import time

ALNUM = string.ascii_letters + string.digits
HEX = "0123456789abcdef"

# With a seed, `created` counts up from this instant (2025-01-01T00:00:00Z), one second per answer.
SEEDED_EPOCH = 1735689600


class IdSource:
    """Makes every id a fake provider hands out; one per app, so a seed makes a whole run repeatable."""

    def __init__(self, seed: int | None) -> None:
        self._seeded = seed is not None
        self._random = random.Random(seed)
        self._answers = 0

    def reseed(self, seed: int | None) -> None:
        """Start over as if created with `seed` (None: random ids and the real clock from now on)."""
        self._seeded = seed is not None
        self._random = random.Random(seed)
        self._answers = 0

    def token(self, length: int, alphabet: str = ALNUM) -> str:
        return "".join(self._random.choices(alphabet, k=length))

    def prefixed(self, prefix: str, length: int, alphabet: str = ALNUM) -> str:
        """`prefix` followed by `length` random characters (new dialects' ids: `resp_`, `toolu_`, ...)."""
        return prefix + self.token(length, alphabet)

    def chat_completion_id(self) -> str:
        return self.prefixed("chatcmpl-", 29)

    def tool_call_id(self) -> str:
        return self.prefixed("call_", 24)

    def request_id(self) -> str:
        return self.prefixed("req_", 32, HEX)

    def now(self) -> float:
        """Unix seconds for headers that carry a time (rate-limit resets): fixed when seeded."""
        return float(SEEDED_EPOCH) if self._seeded else time.time()

    def created(self) -> int:
        """Unix seconds for a new answer: the clock, or a counter when seeded."""
        if self._seeded:
            self._answers += 1
            return SEEDED_EPOCH + self._answers - 1
        return int(time.time())


def system_fingerprint(model: str) -> str:
    """A stable `fp_…` per model, as a real deployment reports."""
    return "fp_" + hashlib.sha256(model.encode()).hexdigest()[:10]

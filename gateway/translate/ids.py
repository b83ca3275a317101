"""Id generation for translated objects, injectable so tests can be deterministic.

The prefixes are the ones the real APIs use, because clients (and some SDK helpers) look at them:
``resp_`` (Responses), ``msg_`` (output message items), ``fc_`` (function_call items),
``call_`` (tool-call ids), ``rs_`` (reasoning items) and ``chatcmpl-`` (Chat Completions).
"""

from __future__ import annotations

import secrets
from typing import Protocol


class Ids(Protocol):
    """Where translators get fresh ids from."""

    def response(self) -> str:
        """A Responses id, ``resp_...``."""
        ...

    def message(self) -> str:
        """An output message item id, ``msg_...``."""
        ...

    def function_call(self) -> str:
        """A function_call item id, ``fc_...``."""
        ...

    def call(self) -> str:
        """A tool-call id, ``call_...`` (used when an upstream sends none)."""
        ...

    def reasoning(self) -> str:
        """A reasoning item id, ``rs_...``."""
        ...

    def completion(self) -> str:
        """A Chat Completions id, ``chatcmpl-...``."""
        ...


class RandomIds:
    """Production ids: a prefix and random hex (48 digits, like OpenAI's item ids)."""

    __slots__ = ()

    def response(self) -> str:
        return "resp_" + secrets.token_hex(24)

    def message(self) -> str:
        return "msg_" + secrets.token_hex(24)

    def function_call(self) -> str:
        return "fc_" + secrets.token_hex(24)

    def call(self) -> str:
        return "call_" + secrets.token_hex(12)

    def reasoning(self) -> str:
        return "rs_" + secrets.token_hex(24)

    def completion(self) -> str:
        return "chatcmpl-" + secrets.token_hex(14)


class SequentialIds:
    """Deterministic ids for tests: ``<prefix><n>`` with one counter per prefix, from 1."""

    __slots__ = ("_counters",)

    def __init__(self) -> None:
        self._counters: dict[str, int] = {}

    def _next(self, prefix: str) -> str:
        n = self._counters.get(prefix, 0) + 1
        self._counters[prefix] = n
        return f"{prefix}{n}"

    def response(self) -> str:
        return self._next("resp_")

    def message(self) -> str:
        return self._next("msg_")

    def function_call(self) -> str:
        return self._next("fc_")

    def call(self) -> str:
        return self._next("call_")

    def reasoning(self) -> str:
        return self._next("rs_")

    def completion(self) -> str:
        return self._next("chatcmpl-")

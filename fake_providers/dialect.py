"""What a dialect (OpenAI Chat, Responses, Anthropic, ...) must provide for the shared fault machinery.

The core decides *which* fault happens and *when* (`fault_plans.py`); a dialect only says what its
errors, headers and in-band error events look like. Adding a dialect means implementing this
protocol plus its own request parsing and success rendering.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

from fake_providers.exchange import Exchange
from fake_providers.faults import ErrorKind


class ErrorAnswer(NamedTuple):
    status: int
    headers: list[tuple[str, str]]  # including content-type
    body: bytes


class Dialect(Protocol):
    # How many stream frames come before an in-band error (Chat: the role chunk; Responses:
    # `response.created` and `response.in_progress`; Anthropic: `message_start`).
    inband_head: int
    # The error used by `fault-inband` and `fault-200-error` when the fault names none.
    default_inband_error: ErrorKind
    default_200_error: ErrorKind

    def success_headers(self, exchange: Exchange, *, stream: bool) -> list[tuple[str, str]]:
        """Headers of a successful answer, content-type included."""
        ...

    def error_answer(self, error: ErrorKind, exchange: Exchange) -> ErrorAnswer:
        """The HTTP error the real provider sends for `error` (status, headers, body)."""
        ...

    def inband_frames(self, error: ErrorKind, exchange: Exchange, *, sent: int) -> list[bytes]:
        """The SSE frame(s) that carry `error` inside a stream and end it; `sent` stream frames came
        before them (Responses numbers its events)."""
        ...

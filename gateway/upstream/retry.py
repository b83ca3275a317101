"""The retry policy: exponential backoff without jitter, Retry-After as a minimum, a budget.

``delay(n)`` for the n-th retry (0-based) is ``min(initial_delay * multiplier**n,
max_delay)``, raised to the upstream's Retry-After when that is longer: with the defaults
1, 2, 4, 8, 16, 32, then 60 s. ``should_retry`` decides after a failed attempt whether to
wait and try the same deployment again, returning the delay, or to stop (``None``) so the
caller fails over or gives up. A delay that would overrun the time budget stops too: a
Retry-After longer than the time left is a reason to fail over, not to wait.
"""

from __future__ import annotations

import datetime
import math
from typing import Any

import msgspec

from gateway.errors import ClassifiedError, ErrorKind

# Statuses worth retrying: timeouts, rate limits, server errors, overload.
STATUS_CODE_RETRYABLE = frozenset({408, 429, 500, 502, 503, 504, 529})


def status_code_retryable(status_code: int) -> bool:
    return status_code in STATUS_CODE_RETRYABLE


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """How often and how long to retry one deployment.

    ``max_attempts`` counts every attempt, the first one included (the proxy default, 3,
    means two retries; the chat engine uses :data:`CHAT_RETRY_POLICY`, 25 attempts).
    ``budget_seconds`` caps the time from the first attempt's start to the next attempt's
    start; ``None`` means no cap.
    """

    initial_delay: float = 1.0
    max_delay: float = 60.0
    multiplier: float = 2.0
    max_attempts: int = 3
    budget_seconds: float | None = 120.0

    def __post_init__(self) -> None:
        if not (self.initial_delay >= 0 and math.isfinite(self.initial_delay)):
            raise ValueError("initial_delay must be a non-negative number of seconds (0: retry at once)")
        if not (self.max_delay >= self.initial_delay and math.isfinite(self.max_delay)):
            raise ValueError("max_delay must be at least initial_delay")
        if not (self.multiplier >= 1 and math.isfinite(self.multiplier)):
            raise ValueError("multiplier must be at least 1")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.budget_seconds is not None and not self.budget_seconds >= 0:
            raise ValueError("budget_seconds must be non-negative (or None for no budget)")

    def delay(self, attempt: int, retry_after: float = 0.0) -> float:
        """The wait before retry number ``attempt`` (0-based), at least ``retry_after``."""
        try:
            backoff = self.initial_delay * self.multiplier ** max(attempt, 0)
        except OverflowError:
            backoff = self.max_delay
        backoff = min(backoff, self.max_delay)
        if math.isfinite(retry_after) and retry_after > backoff:
            return retry_after
        return backoff

    def should_retry(self, error: ClassifiedError, attempt: int, elapsed: float) -> float | None:
        """After attempt number ``attempt`` (1-based) failed with ``error``, ``elapsed``
        seconds after the first attempt started: the delay before trying again, or ``None``
        when not to retry (not retryable, attempts spent, or the budget would be overrun)."""
        if not error.retryable or attempt >= self.max_attempts:
            return None
        wait = self.delay(attempt - 1, error.retry_after)
        if self.budget_seconds is not None and elapsed + wait > self.budget_seconds:
            return None
        return wait


# The stateful chat engine's policy: 25 attempts, about 25 minutes, no budget.
CHAT_RETRY_POLICY = RetryPolicy(max_attempts=25, budget_seconds=None)


def rfc3339(epoch_seconds: float) -> str:
    """``2026-04-21T10:00:01.500Z``: UTC with millisecond precision."""
    moment = datetime.datetime.fromtimestamp(epoch_seconds, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class RetryEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One scheduled retry, for logs and the chat API's ``retry`` stream event."""

    attempt: int  # 1-based number of the attempt that failed
    delay: float  # seconds until the next attempt
    kind: ErrorKind
    provider: str
    status_code: int
    retrying_at: float  # epoch seconds of the next attempt
    message: str  # the retry message of the failure

    @classmethod
    def scheduled(cls, error: ClassifiedError, *, attempt: int, delay: float, now: float) -> RetryEvent:
        """The event for a retry of ``error`` in ``delay`` seconds, ``now`` being epoch seconds."""
        return cls(
            attempt=attempt,
            delay=delay,
            kind=error.kind,
            provider=error.provider,
            status_code=error.status_code,
            retrying_at=now + delay,
            message=error.retry_message,
        )

    def payload(self) -> dict[str, Any]:
        """The chat API's ``retry`` event payload."""
        return {
            "attempt": self.attempt,
            "delay_ms": round(self.delay * 1000),
            "error": self.message,
            "kind": str(self.kind),
            "provider": self.provider,
            "status_code": self.status_code,
            "retrying_at": rfc3339(self.retrying_at),
        }

"""The retry policy (chatd-spec §3.1) and the retry event (§2.8)."""

from __future__ import annotations

import msgspec
import pytest

from gateway.errors import ErrorKind, build_error, classify_text, startup_timeout_error
from gateway.upstream.retry import (
    CHAT_RETRY_POLICY,
    STATUS_CODE_RETRYABLE,
    RetryEvent,
    RetryPolicy,
    status_code_retryable,
)


@pytest.mark.parametrize(
    ("attempt", "seconds"),
    [(0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (4, 16.0), (5, 32.0), (6, 60.0), (7, 60.0), (10, 60.0), (100, 60.0), (5000, 60.0), (-1, 1.0)],
)  # fmt: skip
def test_backoff_schedule(attempt: int, seconds: float) -> None:
    assert RetryPolicy().delay(attempt) == seconds


@pytest.mark.parametrize(
    ("attempt", "retry_after", "seconds"),
    [
        (0, 30.0, 30.0),
        (5, 30.0, 32.0),
        (6, 90.0, 90.0),
        (2, 0.5, 4.0),
        (0, -3.0, 1.0),
        (0, float("nan"), 1.0),
    ],
)
def test_retry_after_is_a_minimum(attempt: int, retry_after: float, seconds: float) -> None:
    assert RetryPolicy().delay(attempt, retry_after) == seconds


def test_custom_schedule() -> None:
    policy = RetryPolicy(initial_delay=0.5, max_delay=5.0, multiplier=3.0)
    assert [policy.delay(n) for n in range(4)] == [0.5, 1.5, 4.5, 5.0]


def test_defaults() -> None:
    policy = RetryPolicy()
    assert (
        policy.initial_delay,
        policy.max_delay,
        policy.multiplier,
        policy.max_attempts,
        policy.budget_seconds,
    ) == (
        1.0,
        60.0,
        2.0,
        3,
        120.0,
    )
    assert (CHAT_RETRY_POLICY.max_attempts, CHAT_RETRY_POLICY.budget_seconds) == (25, None)


RATE_LIMITED = build_error(ErrorKind.RATE_LIMIT, status_code=429, retryable=True)


def test_should_retry_walks_the_schedule_until_attempts_are_spent() -> None:
    policy = RetryPolicy(max_attempts=4)
    assert [policy.should_retry(RATE_LIMITED, attempt, 0.0) for attempt in (1, 2, 3, 4, 5)] == [
        1.0,
        2.0,
        4.0,
        None,
        None,
    ]


def test_chat_policy_allows_25_attempts() -> None:
    delays = [CHAT_RETRY_POLICY.should_retry(RATE_LIMITED, attempt, 10_000.0) for attempt in range(1, 26)]
    assert delays[:7] == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0]
    assert delays[23] == 60.0
    assert delays[24] is None


def test_non_retryable_errors_are_not_retried() -> None:
    final = classify_text("status 401 unauthorized")
    assert RetryPolicy().should_retry(final, 1, 0.0) is None


def test_retry_after_beyond_the_budget_means_fail_over() -> None:
    policy = RetryPolicy(budget_seconds=120.0)
    slow = build_error(ErrorKind.RATE_LIMIT, status_code=429, retryable=True, retry_after=90.0)
    assert policy.should_retry(slow, 1, 0.0) == 90.0
    assert policy.should_retry(slow, 1, 30.0) == 90.0
    assert policy.should_retry(slow, 1, 30.5) is None
    assert RetryPolicy(budget_seconds=None).should_retry(slow, 1, 10_000.0) == 90.0


def test_startup_timeouts_are_retried() -> None:
    assert RetryPolicy().should_retry(startup_timeout_error("openai"), 2, 61.0) == 2.0


def test_zero_initial_delay_retries_at_once() -> None:
    policy = RetryPolicy(initial_delay=0.0, max_delay=0.0)
    assert [policy.delay(n) for n in range(3)] == [0.0, 0.0, 0.0]
    assert policy.delay(0, retry_after=2.5) == 2.5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"initial_delay": -1.0}, "initial_delay must be a non-negative number of seconds"),
        ({"initial_delay": 2.0, "max_delay": 1.0}, "max_delay must be at least initial_delay"),
        ({"multiplier": 0.5}, "multiplier must be at least 1"),
        ({"max_attempts": 0}, "max_attempts must be at least 1"),
        ({"budget_seconds": -1.0}, "budget_seconds must be non-negative"),
    ],
)
def test_invalid_policies_are_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_policy_from_config_data() -> None:
    policy = msgspec.convert({"max_attempts": 5, "budget_seconds": 30}, RetryPolicy)
    assert (policy.max_attempts, policy.budget_seconds) == (5, 30.0)
    with pytest.raises(msgspec.ValidationError, match="max_attempts must be at least 1"):
        msgspec.convert({"max_attempts": 0}, RetryPolicy)


def test_retryable_statuses() -> None:
    assert frozenset({408, 429, 500, 502, 503, 504, 529}) == STATUS_CODE_RETRYABLE
    assert [status_code_retryable(s) for s in (429, 500, 502, 503, 529)] == [True] * 5
    assert [status_code_retryable(s) for s in (200, 400, 401, 403, 404)] == [False] * 5


def test_retry_event_payload() -> None:
    error = classify_text("status 429 too many requests", provider="anthropic")
    event = RetryEvent.scheduled(error, attempt=1, delay=1.5, now=1_800_000_000.0)
    assert event == RetryEvent(
        attempt=1,
        delay=1.5,
        kind=ErrorKind.RATE_LIMIT,
        provider="anthropic",
        status_code=429,
        retrying_at=1_800_000_001.5,
        message="Anthropic is rate limiting requests.",
    )
    assert event.payload() == {
        "attempt": 1,
        "delay_ms": 1500,
        "error": "Anthropic is rate limiting requests.",
        "kind": "rate_limit",
        "provider": "anthropic",
        "status_code": 429,
        "retrying_at": "2027-01-15T08:00:01.500Z",
    }
    assert msgspec.json.decode(msgspec.json.encode(event), type=RetryEvent) == event

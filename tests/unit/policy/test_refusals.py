"""The refusal table: each kind the admission script reports becomes one error, with OpenAI's
status, type, code, message and headers, and one denied policy decision in the metrics."""

from __future__ import annotations

import datetime as dt
from importlib import resources
from typing import Any

import pytest

from gateway.config import Budget
from gateway.policy.records import KeyRecord, TeamRecord
from gateway.policy.refusals import REFUSALS, denial, refusal
from gateway.telemetry.metrics import Metrics

KEY = KeyRecord(
    id="kid000000001",
    alias="svc",
    team_id="research",
    budgets=(Budget(window="total", limit_usd=2.0), Budget(window="day", limit_usd=0.5)),
)
TEAM = TeamRecord(id="research", name="Research", budgets=(Budget(window="month", limit_usd=1.0),))
NOW = dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.UTC).timestamp()

CASES: list[tuple[list[Any], int, dict[str, Any]]] = [
    (
        [0, b"rpm", b"key", 60, 60, 1500, 0],
        300,
        {
            "status": 429,
            "type": "requests",
            "code": "rate_limit_exceeded",
            "message": "Rate limit reached for requests per min (RPM) on key 'svc': Limit 60, Used 60, "
            "Requested 1. Please try again in 1.5s.",
            "headers": {
                "retry-after": "2",
                "retry-after-ms": "1500",
                "x-should-retry": "true",
                "x-ratelimit-limit-requests": "60",
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-requests": "1.5s",
            },
            "decision": ("rpm", "key"),
        },
    ),
    (
        [0, b"tpm", b"team", 1000, 900, 250, 0],
        300,
        {
            "status": 429,
            "type": "tokens",
            "code": "rate_limit_exceeded",
            "message": "Rate limit reached for tokens per min (TPM) on team 'Research': Limit 1000, Used 900, "
            "Requested 300. Please try again in 0.25s.",
            "headers": {
                "retry-after": "1",
                "retry-after-ms": "250",
                "x-should-retry": "true",
                "x-ratelimit-limit-tokens": "1000",
                "x-ratelimit-remaining-tokens": "0",
                "x-ratelimit-reset-tokens": "250ms",
            },
            "decision": ("tpm", "team"),
        },
    ),
    (
        [0, b"tpm_too_large", b"key", 100, 0, 0, 0],
        5000,
        {
            "status": 429,
            "type": "tokens",
            "code": "rate_limit_exceeded",
            "message": "Request too large for tokens per min (TPM) on key 'svc': Limit 100, Requested 5000. "
            "The input or output tokens must be reduced in order to run successfully.",
            "headers": {"x-should-retry": "false"},
            "decision": ("tpm", "key"),
        },
    ),
    (
        [0, b"concurrency", b"team", 2, 2, 1000, 0],
        300,
        {
            "status": 429,
            "type": "requests",
            "code": "concurrency_limit_exceeded",
            "message": "Too many concurrent requests on team 'Research': Limit 2. "
            "Please try again when one of them has finished.",
            "headers": {"retry-after": "1", "retry-after-ms": "1000", "x-should-retry": "true"},
            "decision": ("concurrency", "team"),
        },
    ),
    (
        # The team's first budget is the third one the script saw (after the key's two).
        [0, b"budget", b"team", 1_000_000_000, 1_234_567_890, 0, 3],
        300,
        {
            "status": 429,
            "type": "insufficient_quota",
            "code": "insufficient_quota",
            "message": "You exceeded your current quota: the team 'Research' budget of $1.00 per month is used "
            "up ($1.234568 spent or held); it resets at 2026-12-01T00:00:00Z.",
            "headers": {"x-should-retry": "false"},
            "decision": ("budget", "team"),
        },
    ),
    (
        [0, b"budget", b"key", 2_000_000_000, 2_000_000_001, 0, 1],
        300,
        {
            "status": 429,
            "type": "insufficient_quota",
            "code": "insufficient_quota",
            "message": "You exceeded your current quota: the key 'svc' budget of $2.00 in total is used up "
            "($2.000000 spent or held).",
            "headers": {"x-should-retry": "false"},
            "decision": ("budget", "key"),
        },
    ),
    (
        [0, b"budget", b"key", 500_000_000, 600_000_000, 0, 2],
        300,
        {
            "status": 429,
            "type": "insufficient_quota",
            "code": "insufficient_quota",
            "message": "You exceeded your current quota: the key 'svc' budget of $0.50 per day is used up "
            "($0.600000 spent or held); it resets at 2026-11-25T00:00:00Z.",
            "headers": {"x-should-retry": "false"},
            "decision": ("budget", "key"),
        },
    ),
]


@pytest.mark.parametrize(("result", "requested", "expected"), CASES)
def test_each_refusal_reads_as_openai_answers_it(
    result: list[Any], requested: int, expected: dict[str, Any]
) -> None:
    metrics = Metrics(["gpt-4o-mini"], ["openai"])
    error = refusal(denial(result, KEY, TEAM, requested=requested, now=NOW), metrics)
    assert error.status_code == expected["status"]
    assert error.error_type == expected["type"]
    assert error.code == expected["code"]
    assert error.message == expected["message"]
    assert error.param is None
    assert list(error.headers.items()) == list(expected["headers"].items())
    limit, scope = expected["decision"]
    sample = f'gw_policy_decisions_total{{limit="{limit}",result="denied",scope="{scope}"}} 1.0'
    assert sample.encode() in metrics.exposition()


def test_a_key_without_alias_or_team_name_is_named_by_id() -> None:
    key = KeyRecord(id="kid000000002", team_id="t1")
    team = TeamRecord(id="t1")
    metrics = Metrics([], [])
    by_key = refusal(
        denial([0, b"concurrency", b"key", 1, 1, 5, 0], key, team, requested=1, now=NOW), metrics
    )
    by_team = refusal(
        denial([0, b"concurrency", b"team", 1, 1, 5, 0], key, team, requested=1, now=NOW), metrics
    )
    assert "on key 'kid000000002':" in by_key.message
    assert "on team 't1':" in by_team.message


def test_the_table_covers_every_kind_the_admission_script_reports() -> None:
    script = resources.files("gateway.policy").joinpath("lua/admit.lua").read_text(encoding="utf-8")
    reported = {kind for kind in REFUSALS if f"'{kind}'" in script}
    assert reported == set(REFUSALS) == {"rpm", "tpm", "tpm_too_large", "concurrency", "budget"}

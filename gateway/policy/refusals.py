"""What the caller is told when admission refuses a request: one row per refusal kind.

The admission script answers a refusal as ``{0, kind, scope, limit, used, retry-after ms,
budget index}``. :data:`REFUSALS` maps the kind to the error it becomes: class (status and
type), code, message and headers. Messages are ``str.format`` templates over
:meth:`Denial.fields`; they follow OpenAI's wording, so clients that parse "Please try again in 1.5s"
keep working.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.errors.client import GatewayError, RateLimited
from gateway.policy import errors
from gateway.policy.errors import QuotaExceeded, TokensRateLimited
from gateway.policy.records import KeyRecord, TeamRecord
from gateway.policy.windows import window_reset
from gateway.telemetry.metrics import Metrics

log = logging.getLogger("gateway.policy")


@dataclass(frozen=True, slots=True)
class Refusal:
    """How one kind of refusal reads."""

    decision: str  # the `limit` label of gw_policy_decisions_total
    error: type[GatewayError]
    code: str
    message: str  # str.format template over Denial.fields()
    retry: bool = False  # retry-after, retry-after-ms and x-should-retry: true
    window: str | None = None  # "requests" or "tokens": the x-ratelimit-*-<window> trio
    fixed: Mapping[str, str] = field(default_factory=dict)  # headers set as they are


_NO_RETRY = {"x-should-retry": "false"}

REFUSALS: dict[str, Refusal] = {
    "rpm": Refusal(
        "rpm",
        RateLimited,
        "rate_limit_exceeded",
        "Rate limit reached for requests per min (RPM) on {who}: Limit {limit}, Used {used}, "
        "Requested 1. Please try again in {retry_s}s.",
        retry=True,
        window="requests",
    ),
    "tpm": Refusal(
        "tpm",
        TokensRateLimited,
        "rate_limit_exceeded",
        "Rate limit reached for tokens per min (TPM) on {who}: Limit {limit}, Used {used}, "
        "Requested {requested}. Please try again in {retry_s}s.",
        retry=True,
        window="tokens",
    ),
    "tpm_too_large": Refusal(
        "tpm",
        TokensRateLimited,
        "rate_limit_exceeded",
        "Request too large for tokens per min (TPM) on {who}: Limit {limit}, Requested {requested}. "
        "The input or output tokens must be reduced in order to run successfully.",
        fixed=_NO_RETRY,
    ),
    "concurrency": Refusal(
        "concurrency",
        RateLimited,
        "concurrency_limit_exceeded",
        "Too many concurrent requests on {who}: Limit {limit}. Please try again when one of them has finished.",
        retry=True,
    ),
    "budget": Refusal(
        "budget",
        QuotaExceeded,
        "insufficient_quota",
        "You exceeded your current quota: the {who} budget of ${limit_usd} {per} is used up "
        "(${used_usd} spent or held){resets}.",
        fixed=_NO_RETRY,
    ),
}


@dataclass(frozen=True, slots=True)
class Denial:
    """One refusal as the admission script reported it, with the values its message needs."""

    kind: str
    scope: str  # "key" or "team"
    who: str  # "key 'svc'", "team 'Research'"
    limit: int
    used: int
    requested: int  # the request's token estimate
    retry_ms: int
    window: str = "total"  # the budget's window
    resets_at: float | None = None  # when that window starts again

    def fields(self) -> dict[str, object]:
        """The values a message template may name."""
        resets = ""
        if self.resets_at:
            resets = f"; it resets at {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(self.resets_at))}"
        return {
            "who": self.who,
            "limit": self.limit,
            "used": self.used,
            "requested": self.requested,
            "retry_s": f"{self.retry_ms / 1000:g}",
            "limit_usd": f"{self.limit / 1e9:.2f}",
            "used_usd": f"{self.used / 1e9:.6f}",
            "per": "in total" if self.window == "total" else f"per {self.window}",
            "resets": resets,
        }


def describe(key: KeyRecord, team: TeamRecord | None, scope: str) -> str:
    """The limited party as messages name it."""
    if scope == "team" and team is not None:
        return f"team '{team.name or team.id}'"
    return f"key '{key.alias or key.id}'"


def denial(
    result: list[Any], key: KeyRecord, team: TeamRecord | None, *, requested: int, now: float
) -> Denial:
    """The admission script's refusal reply read into a :class:`Denial`."""
    kind, scope = bytes(result[1]).decode(), bytes(result[2]).decode()
    window, resets_at = "total", None
    if kind == "budget":
        # The script numbers budgets from 1 over the key's, then the team's.
        budgets = key.budgets if scope == "key" else (team.budgets if team is not None else ())
        index = int(result[6]) - 1 - (len(key.budgets) if scope == "team" else 0)
        window = budgets[index].window if 0 <= index < len(budgets) else "total"
        resets_at = window_reset(now, window)
    return Denial(
        kind=kind,
        scope=scope,
        who=describe(key, team, scope),
        limit=int(result[3]),
        used=int(result[4]),
        requested=requested,
        retry_ms=int(result[5]),
        window=window,
        resets_at=resets_at,
    )


def headers_of(row: Refusal, denial: Denial) -> dict[str, str]:
    out = errors.retry_headers(denial.retry_ms) if row.retry else {}
    if row.window is not None:
        out[f"x-ratelimit-limit-{row.window}"] = str(denial.limit)
        out[f"x-ratelimit-remaining-{row.window}"] = "0"
        out[f"x-ratelimit-reset-{row.window}"] = errors.go_duration(denial.retry_ms / 1000)
    out.update(row.fixed)
    return out


def refusal(denial: Denial, metrics: Metrics) -> GatewayError:
    """The error for ``denial``, counted in the policy decisions."""
    row = REFUSALS[denial.kind]
    metrics.decision(row.decision, denial.scope, "denied")
    return row.error(row.message.format(**denial.fields()), code=row.code, headers=headers_of(row, denial))


def store_failed(metrics: Metrics, on_store_error: str, exc: BaseException, op: str) -> GatewayError:
    """Count and log a store failure during ``op`` ("auth" or "admit"); the 503 to answer.
    Authentication always fails closed; admission as ``on_store_error`` says."""
    metrics.store_error(on_store_error if op == "admit" else "closed")
    log.error("policy store error during %s (%s): %s", op, on_store_error, exc)
    return errors.store_unavailable()

"""Signals in error text, the status code hidden in it, and the rule table that decides a kind.

Every literal is matched as a substring of lower-cased text. Each group starts with the
generic wordings; the ``_EXTRA`` groups add the wordings particular providers use that the
generic ones miss (each is named in a comment).
"""

from __future__ import annotations

import re
from typing import NamedTuple

from gateway.errors._messages import STREAM_TRUNCATED
from gateway.errors._model import ErrorKind

OVERLOADED = ("overloaded",)
RATE_LIMIT = ("rate limit", "rate_limit", "rate limited", "rate-limited", "too many requests")
TIMEOUT = (
    "timeout",
    "timed out",
    "service unavailable",
    "unavailable",
    "connection reset",
    "connection refused",
    "eof",
    "broken pipe",
    "bad gateway",
    "gateway timeout",
    # HTTP/2 transport failures.
    "client conn",
    "goaway",
    "http2: stream closed",
    "use of closed network connection",
)
STRONG_AUTH = (
    "authentication",
    "unauthorized",
    "invalid api key",
    "invalid_api_key",
    "quota",
    "billing",
    "insufficient_quota",
    "payment required",
)
WEAK_AUTH = ("forbidden",)
CONFIG_MODEL = ("invalid model", "model not found", "model_not_found", "unsupported model")
CONFIG_CONTEXT = ("context length exceeded", "context_exceeded", "maximum context length")
CONFIG_OTHER = ("malformed config", "malformed configuration")
GENERIC_RETRYABLE = ("server error", "internal server error")
INTERRUPTED = ("chat interrupted", "request interrupted", "operation interrupted")
CANCELED = ("context canceled",)
DEADLINE = ("context deadline exceeded",)

# Google's status for a 429 (also found inside 5xx bodies).
RATE_LIMIT_EXTRA = ("resource_exhausted", "resource exhausted")
# Anthropic's 403 type, and the common English for it.
WEAK_AUTH_EXTRA = ("permission_error", "permission denied")
# OpenAI's code, Anthropic's two overflow messages, OpenAI Responses' and Bedrock's wording.
CONFIG_CONTEXT_EXTRA = (
    "context_length_exceeded",
    "prompt is too long",
    "exceed context limit",
    "exceeds the context window",
    "input is too long",
)
# OpenAI's and Anthropic's 500 types, as they arrive in in-band errors without a status.
GENERIC_RETRYABLE_EXTRA = ("server_error", "api_error")
# A stream that ended before its terminal event (Anthropic's `message_stop`, a Responses
# terminal event), as the error text words it.
STREAM_CLOSED = ("stream closed before message_stop", "responses stream closed before terminal event")

_QUOTA = ("quota", "billing", "insufficient_quota", "payment required")

_ALL_RATE_LIMIT = RATE_LIMIT + RATE_LIMIT_EXTRA
_ALL_WEAK_AUTH = WEAK_AUTH + WEAK_AUTH_EXTRA
_ALL_CONTEXT = CONFIG_CONTEXT + CONFIG_CONTEXT_EXTRA
_ALL_CONFIG = CONFIG_MODEL + _ALL_CONTEXT + CONFIG_OTHER
_ALL_TIMEOUT = TIMEOUT + STREAM_CLOSED
_ALL_GENERIC_RETRYABLE = GENERIC_RETRYABLE + GENERIC_RETRYABLE_EXTRA
_CANCEL = CANCELED + INTERRUPTED

TIMEOUT_STATUSES = frozenset({408, 502, 503, 504})

# "status 429", "status code: 503", "http=500"; the three digits must end there.
_STATUS_PHRASE = re.compile(r"(?:status(?:\s+code)?|http)\s*[:=]?\s*(\d{3})(?!\d)")
# A bare well-known status. Not after ":" (host:port), "." (a decimal) or "stream id ".
_STATUS_TOKEN = re.compile(r"(?<![:.])(?<!stream id )\b(401|403|408|429|500|502|503|504|529)\b(?!\.\d)")
_PREVIOUS_RESPONSE = re.compile(r"previous response with id .* not found")


def extract_status_code(lower_text: str) -> int:
    """The HTTP status named in lower-cased error text, or 0."""
    phrase = _STATUS_PHRASE.search(lower_text)
    if phrase is not None:
        return int(phrase.group(1))
    token = _STATUS_TOKEN.search(lower_text)
    return int(token.group(1)) if token is not None else 0


def _has(text: str, needles: tuple[str, ...]) -> bool:
    return any(needle in text for needle in needles)


class Verdict(NamedTuple):
    kind: ErrorKind
    retryable: bool
    code: str | None = None


def decide(
    lower_text: str,
    status_code: int,
    *,
    transient_text: str | None = None,
    transport: bool = False,
    deadline: bool = False,
    cancel_signals: bool = True,
) -> Verdict:
    """Apply the rule table (first match wins) to lower-cased text and a status.

    ``transient_text`` narrows where the transient signals (overloaded, rate limit, timeout,
    server error) are looked for: an upstream 400 whose message mentions "timeout" is still
    a client error. ``transport`` marks a transport failure known from the exception type,
    ``deadline`` the caller's own deadline (a timeout, but not retryable).
    """
    text = lower_text
    transient = text if transient_text is None else transient_text
    if cancel_signals and _has(text, _CANCEL):
        return Verdict(ErrorKind.CANCELED, False)
    deadline = deadline or _has(text, DEADLINE)

    auth_hits = [needle for needle in STRONG_AUTH if needle in text]
    # A 429 whose only auth-looking word is "quota" is a rate limit (Google's per-minute
    # quotas); insufficient_quota, billing and payment stay auth: waiting does not fix them.
    quota_rate_limit = status_code == 429 and all(hit == "quota" for hit in auth_hits)
    strong_auth = status_code in (401, 402) or (bool(auth_hits) and not quota_rate_limit)
    weak_auth = status_code == 403 or _has(text, _ALL_WEAK_AUTH)
    config = _has(text, _ALL_CONFIG)
    rate_limit = status_code == 429 or _has(transient, _ALL_RATE_LIMIT)
    timeout = deadline or transport or status_code in TIMEOUT_STATUSES or _has(transient, _ALL_TIMEOUT)

    if status_code == 529 or _has(transient, OVERLOADED):
        return Verdict(ErrorKind.OVERLOADED, True)
    if strong_auth:
        quota = status_code == 402 or any(hit in _QUOTA for hit in auth_hits)
        return Verdict(ErrorKind.AUTH, False, "insufficient_quota" if quota else None)
    if weak_auth and not config:
        return Verdict(ErrorKind.AUTH, False)
    if rate_limit and not config:
        return Verdict(ErrorKind.RATE_LIMIT, True)
    if timeout and not config:
        return Verdict(
            ErrorKind.TIMEOUT, not deadline, STREAM_TRUNCATED if _has(text, STREAM_CLOSED) else None
        )
    if config:
        if _has(text, _ALL_CONTEXT):
            return Verdict(ErrorKind.CONFIG, False, "context_length_exceeded")
        if _has(text, CONFIG_MODEL):
            return Verdict(ErrorKind.CONFIG, False, "model_not_found")
        return Verdict(ErrorKind.CONFIG, False)
    previous = "previous_response_not_found" if _PREVIOUS_RESPONSE.search(text) else None
    if status_code == 500 or _has(transient, _ALL_GENERIC_RETRYABLE):
        return Verdict(ErrorKind.GENERIC, True, previous)
    return Verdict(ErrorKind.GENERIC, False, previous)


# Upstream 4xx statuses that mean "the request itself is wrong": everything in 4xx except
# credentials/billing (401, 402, 403, 407), a missing route or model on the upstream (404,
# 405, 410: the deployment is misconfigured), a timeout (408) and a rate limit (429).
_NOT_CLIENT_4XX = frozenset({401, 402, 403, 404, 405, 407, 408, 410, 429})


def client_caused(status_code: int, upstream_type: str | None) -> bool:
    """Whether an upstream answer blames the request (so another deployment won't help)."""
    if 400 <= status_code < 500:
        return status_code not in _NOT_CLIENT_4XX
    return status_code == 0 and upstream_type == "invalid_request_error"

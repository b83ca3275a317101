"""The classification entry points for text, HTTP answers and in-band stream errors."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import msgspec

from gateway.errors._body import ErrorFields, locate_error, parse_body, truncate_detail
from gateway.errors._messages import STREAM_IDLE_TIMEOUT, STREAM_TRUNCATED, retry_message, terminal_message
from gateway.errors._model import ClassifiedError, ErrorKind
from gateway.errors._providers import detect_provider, normalize_provider
from gateway.errors._retry_after import parse_retry_after
from gateway.errors._signals import Verdict, client_caused, decide, extract_status_code

# Error labels (``code``, then ``type``, then Google's ``status``) that settle the kind on
# their own, before any wording is looked at. They exist because messages mislead: OpenAI's
# free-tier rate-limit message links to the billing page, which the text rules read as a
# billing failure.
_LABELS: Mapping[str, Verdict] = {
    "insufficient_quota": Verdict(ErrorKind.AUTH, False, "insufficient_quota"),
    "billing_error": Verdict(ErrorKind.AUTH, False, "insufficient_quota"),
    "billing_hard_limit_reached": Verdict(ErrorKind.AUTH, False, "insufficient_quota"),
    "invalid_api_key": Verdict(ErrorKind.AUTH, False),
    "authentication_error": Verdict(ErrorKind.AUTH, False),
    "permission_error": Verdict(ErrorKind.AUTH, False),
    "rate_limit_exceeded": Verdict(ErrorKind.RATE_LIMIT, True),
    "rate_limit_error": Verdict(ErrorKind.RATE_LIMIT, True),
    "resource_exhausted": Verdict(ErrorKind.RATE_LIMIT, True),
    "requests": Verdict(ErrorKind.RATE_LIMIT, True),
    "tokens": Verdict(ErrorKind.RATE_LIMIT, True),
    "overloaded_error": Verdict(ErrorKind.OVERLOADED, True),
    "server_is_overloaded": Verdict(ErrorKind.OVERLOADED, True),
    "context_length_exceeded": Verdict(ErrorKind.CONFIG, False, "context_length_exceeded"),
    "model_not_found": Verdict(ErrorKind.CONFIG, False, "model_not_found"),
}

# The upstream has the model but does not serve it on the route asked: OpenAI's 404 for a chat
# model on /v1/completions ("This is a chat model and not supported in the v1/completions
# endpoint") and for a completions model on /v1/chat/completions ("... not supported in the
# v1/chat/completions endpoint"), its 403 for a model that is no embedding model on
# /v1/embeddings ("You are not allowed to generate embeddings from this model"). Neither a
# misconfigured deployment nor a credential problem: the request names a model of the wrong kind
# for its route. It is the client's error with the upstream's words (404 stays 404, 403 becomes
# 400: a 403 would read as the gateway key's), never retried, never failed over (the model's
# other deployments are the same model).
MODEL_NOT_FOR_ROUTE = "model_not_supported_on_route"
_NOT_FOR_ROUTE = re.compile(
    r"not supported in the v1/[a-z/_]+ endpoint|not allowed to generate embeddings from this model"
)


def may_fail_over(kind: ErrorKind, *, retryable: bool, status_code: int, upstream_type: str | None) -> bool:
    """Whether another deployment or fallback model may succeed where this one failed."""
    if kind is ErrorKind.CANCELED:
        return False
    if kind is ErrorKind.TIMEOUT and not retryable:  # the caller's own deadline ran out
        return False
    if kind is ErrorKind.GENERIC:
        return not client_caused(status_code, upstream_type)
    return True


def build_error(
    kind: ErrorKind,
    *,
    provider: str = "",
    status_code: int = 0,
    retryable: bool = False,
    retry_after: float = 0.0,
    detail: str = "",
    code: str | None = None,
    upstream_type: str | None = None,
    param: str | None = None,
    failover: bool | None = None,
) -> ClassifiedError:
    """Make a normalised :class:`ClassifiedError`; messages and ``failover`` are derived."""
    provider = normalize_provider(provider)
    if not math.isfinite(retry_after) or retry_after < 0:
        retry_after = 0.0
    if failover is None:
        failover = may_fail_over(
            kind, retryable=retryable, status_code=status_code, upstream_type=upstream_type
        )
    return ClassifiedError(
        kind=kind,
        provider=provider,
        status_code=max(status_code, 0),
        retryable=retryable,
        retry_after=retry_after,
        message=terminal_message(kind, provider, retryable=retryable, status_code=status_code, code=code),
        retry_message=retry_message(kind, provider, code=code),
        detail=truncate_detail(detail),
        failover=failover,
        code=code,
        upstream_type=upstream_type,
        param=param,
    )


def with_provider(error: ClassifiedError, provider: str) -> ClassifiedError:
    """Stamp an explicit provider over a detected one; the messages follow it.

    An empty hint, or the provider already set, returns ``error`` unchanged.
    """
    hint = normalize_provider(provider)
    if not hint or hint == error.provider:
        return error
    return msgspec.structs.replace(
        error,
        provider=hint,
        message=terminal_message(
            error.kind, hint, retryable=error.retryable, status_code=error.status_code, code=error.code
        ),
        retry_message=retry_message(error.kind, hint, code=error.code),
    )


def classify_lowered(
    lower_text: str,
    *,
    provider: str,
    status_code: int = 0,
    retry_after: float = 0.0,
    detail: str = "",
    transport: bool = False,
    deadline: bool = False,
) -> ClassifiedError:
    """:func:`classify_text` on already lower-cased text (shared with exceptions)."""
    status = status_code or extract_status_code(lower_text)
    if not lower_text and not status and not transport and not deadline:
        return build_error(ErrorKind.GENERIC, provider=provider, retry_after=retry_after, detail=detail)
    verdict = decide(lower_text, status, transport=transport, deadline=deadline)
    return build_error(
        verdict.kind,
        provider=normalize_provider(provider) or detect_provider(lower_text),
        status_code=status,
        retryable=verdict.retryable,
        retry_after=retry_after,
        detail=detail,
        code=verdict.code,
    )


def classify_text(
    text: str,
    *,
    provider: str = "",
    status_code: int = 0,
    headers: Mapping[str, str] | None = None,
    now: float = 0.0,
) -> ClassifiedError:
    """Classify an error described by text: its status code and the signals in it (the rule
    table of :mod:`gateway.errors._signals`) decide the kind and whether it is retryable.

    ``status_code`` (when known) beats any status found in the text; ``provider`` (when
    given) beats any provider named in it. ``headers`` supply Retry-After (see
    :func:`parse_retry_after`; ``now`` is needed for the HTTP-date form). The detail stays
    empty: text is not a provider's answer.
    """
    return classify_lowered(
        text.strip().lower(),
        provider=provider,
        status_code=status_code,
        retry_after=parse_retry_after(headers, now=now),
    )


def _label_verdict(fields: ErrorFields) -> Verdict | None:
    for label in (fields.code, fields.type, fields.status_name):
        if label:
            verdict = _LABELS.get(label.lower())
            if verdict is not None:
                return verdict
    # Anthropic's unknown model: 404 not_found_error, "model: <name>".
    if fields.type == "not_found_error" and fields.message.lower().startswith("model:"):
        return _LABELS["model_not_found"]
    return None


def _from_fields(
    fields: ErrorFields | None,
    text: str,
    *,
    status_code: int,
    provider: str,
    retry_after: float,
    detail: str,
) -> ClassifiedError:
    upstream_type = None
    if fields is not None:
        upstream_type = fields.type or fields.status_name
    status = status_code or extract_status_code(text)
    if status in (403, 404) and _NOT_FOR_ROUTE.search(text):
        return build_error(
            ErrorKind.GENERIC,
            provider=normalize_provider(provider) or detect_provider(text),
            status_code=status,
            detail=detail,
            code=MODEL_NOT_FOR_ROUTE,
            upstream_type=upstream_type or "invalid_request_error",
            param=(fields.param if fields is not None else None) or "model",
            failover=False,
        )
    verdict = _label_verdict(fields) if fields is not None else None
    if verdict is None:
        # On an answer that blames the request, only the labels may call it transient:
        # a 400 about a parameter named "timeout" is not a timeout.
        narrow = None
        if client_caused(status, upstream_type):
            narrow = fields.label_text() if fields is not None else ""
        verdict = decide(text, status, transient_text=narrow, cancel_signals=False)
    return build_error(
        verdict.kind,
        provider=normalize_provider(provider) or detect_provider(text),
        status_code=status,
        retryable=verdict.retryable,
        retry_after=retry_after,
        detail=detail,
        code=(fields.code if fields is not None else None) or verdict.code,
        upstream_type=upstream_type,
        param=fields.param if fields is not None else None,
    )


def classify_response(
    status: int, headers: Mapping[str, str], body: bytes, *, provider: str, now: float
) -> ClassifiedError:
    """Classify an upstream HTTP answer that is an error (any status, including a 200
    whose JSON body is an error object).

    A status carried inside the body counts when the HTTP status cannot be trusted: any
    embedded 4xx/5xx under a 2xx, and an embedded 429 under a 5xx (gateways that wrap a
    rate limit in a 500/503). ``now`` (epoch seconds) resolves an HTTP-date Retry-After.
    """
    parsed = parse_body(body)
    effective = status
    embedded = parsed.fields.embedded_status if parsed.fields is not None else 0
    if 200 <= status < 300:
        effective = embedded
    elif status >= 500 and embedded == 429:
        effective = 429
    return _from_fields(
        parsed.fields,
        parsed.text,
        status_code=effective,
        provider=provider,
        retry_after=parse_retry_after(headers, now=now),
        detail=parsed.detail,
    )


def classify_stream_error(
    payload: Mapping[str, Any], *, provider: str, status_code: int = 0
) -> ClassifiedError:
    """Classify an in-band error event (Chat ``{"error": ...}``, Responses ``error`` in its
    flat and nested forms, Responses ``response.failed``, Anthropic ``event: error``).

    ``status_code`` is the HTTP status of the stream; a 2xx says nothing about the error and
    is ignored in favour of a ``status`` in the event.
    """
    fields = locate_error(payload) or ErrorFields()
    status = status_code if status_code >= 300 else 0
    detail = fields.message or fields.code or fields.type or fields.status_name or ""
    return _from_fields(
        fields,
        fields.signal_text(),
        status_code=status or fields.embedded_status,
        provider=provider,
        retry_after=0.0,
        detail=detail,
    )


def startup_timeout_error(provider: str) -> ClassifiedError:
    """No meaningful upstream event arrived within the startup guard (retryable)."""
    return build_error(ErrorKind.STARTUP_TIMEOUT, provider=provider, retryable=True)


def stream_idle_timeout_error(provider: str, *, idle_seconds: float = 0.0) -> ClassifiedError:
    """A committed stream went silent past the idle timeout (kind timeout, retryable)."""
    detail = f"No stream data for {idle_seconds:g} s." if idle_seconds > 0 else ""
    return build_error(
        ErrorKind.TIMEOUT, provider=provider, retryable=True, code=STREAM_IDLE_TIMEOUT, detail=detail
    )


def stream_truncated_error(provider: str) -> ClassifiedError:
    """A stream ended without its terminal event (kind timeout, retryable)."""
    return build_error(ErrorKind.TIMEOUT, provider=provider, retryable=True, code=STREAM_TRUNCATED)


def circuit_open_error(provider: str, *, retry_after: float) -> ClassifiedError:
    """Every deployment left to try has its circuit breaker open (kind overloaded, retryable
    after ``retry_after`` seconds, when the first of them lets a probe through)."""
    return build_error(
        ErrorKind.OVERLOADED,
        provider=provider,
        retryable=True,
        retry_after=retry_after,
        code="circuit_open",
        detail="Recent requests to every deployment of this model failed; they are paused for a while.",
    )

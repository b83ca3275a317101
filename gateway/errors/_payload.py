"""What the client receives: OpenAI's error shape with the classification inside ``error``.

The HTTP status is chosen for the OpenAI SDK's retry rules (it retries 408, 409, 429 and
>= 500 unless ``x-should-retry: false``, and waits ``retry-after-ms`` / ``retry-after``).
The table is in ``STATUS_MAPPING.md`` next to this file.
"""

from __future__ import annotations

import math
from typing import Any, Literal, NamedTuple

import msgspec

from gateway.errors._classify import MODEL_NOT_FOR_ROUTE
from gateway.errors._messages import STREAM_IDLE_TIMEOUT, STREAM_TRUNCATED
from gateway.errors._model import ClassifiedError, ErrorKind
from gateway.errors._scrub import scrub
from gateway.errors._signals import client_caused

Api = Literal["chat", "responses"]

_ENCODER = msgspec.json.Encoder()
_CONTEXT_MESSAGE = "The input exceeds the context window of this model."
_RATE_LIMIT_TYPES = frozenset({"requests", "tokens"})


class _Answer(NamedTuple):
    status: int
    type: str
    code: str | None
    param: str | None = None
    message: str | None = None  # None: the classification's terminal message


def _answer(error: ClassifiedError, api: Api) -> _Answer:
    kind = error.kind
    if kind is ErrorKind.RATE_LIMIT:
        limited = error.upstream_type if error.upstream_type in _RATE_LIMIT_TYPES else None
        return _Answer(429, limited or "requests", "rate_limit_exceeded")
    if kind is ErrorKind.AUTH:
        if error.code == "insufficient_quota":
            return _Answer(429, "insufficient_quota", "insufficient_quota")
        return _Answer(502, "server_error", "upstream_authentication_failed")
    if kind is ErrorKind.OVERLOADED:
        return _Answer(503, "service_unavailable_error", "server_is_overloaded")
    if kind is ErrorKind.TIMEOUT:
        if error.code in (STREAM_TRUNCATED, STREAM_IDLE_TIMEOUT):
            return _Answer(504, "server_error", error.code)
        if error.status_code in (502, 503):  # the upstream said it is unavailable
            return _Answer(503, "service_unavailable_error", "upstream_unavailable")
        return _Answer(504, "server_error", "upstream_timeout")
    if kind is ErrorKind.STARTUP_TIMEOUT:
        return _Answer(504, "server_error", "upstream_startup_timeout")
    if kind is ErrorKind.CONFIG:
        if error.code == "context_length_exceeded":
            param = error.param or ("input" if api == "responses" else "messages")
            return _Answer(400, "invalid_request_error", error.code, param, error.detail or _CONTEXT_MESSAGE)
        if error.code == "model_not_found":
            return _Answer(502, "server_error", "upstream_model_not_found")
        return _Answer(502, "server_error", "upstream_configuration_error")
    if kind is ErrorKind.CANCELED:
        return _Answer(499, "server_error", "request_canceled")
    if error.code == MODEL_NOT_FOR_ROUTE:  # the client's model of the wrong kind for the route
        status = 404 if error.status_code == 404 else 400
        return _Answer(
            status, error.upstream_type or "invalid_request_error", error.code, error.param, error.detail
        )
    if client_caused(error.status_code, error.upstream_type):
        status = error.status_code if 400 <= error.status_code < 500 else 400
        return _Answer(
            status,
            error.upstream_type or "invalid_request_error",
            error.code,
            error.param,
            error.detail or error.message,
        )
    return _Answer(502, "server_error", "upstream_error")


def error_object(error: ClassifiedError, *, api: Api = "chat") -> dict[str, Any]:
    """The inner ``error`` object: OpenAI's four keys, then the classification.

    ``api`` picks the ``param`` of a context-length error the upstream did not name
    (``messages`` for Chat Completions, ``input`` for Responses).
    """
    answer = _answer(error, api)
    # Upstream text reaches the client without credentials or addresses (the logs keep it).
    return {
        "message": scrub(answer.message if answer.message is not None else error.message),
        "type": answer.type,
        "param": answer.param,
        "code": answer.code,
        "kind": str(error.kind),
        "provider": error.provider or None,
        "retryable": error.retryable,
        "status_code": error.status_code or None,
        "detail": scrub(error.detail) or None,
    }


def error_response(error: ClassifiedError, *, api: Api = "chat") -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of the HTTP answer for ``error``.

    Headers: ``content-type``; ``x-should-retry`` ("true" exactly when the error is
    retryable, so the SDK never retries what the gateway knows is final); and, for a
    retryable error with a known delay, ``retry-after`` (whole seconds, rounded up) and
    ``retry-after-ms``.
    """
    obj = error_object(error, api=api)
    headers = {
        "content-type": "application/json",
        "x-should-retry": "true" if error.retryable else "false",
    }
    if error.retryable and error.retry_after > 0:
        headers["retry-after"] = str(math.ceil(error.retry_after))
        headers["retry-after-ms"] = str(math.ceil(error.retry_after * 1000))
    return _answer(error, api).status, headers, _ENCODER.encode({"error": obj})


def chat_stream_error_frame(error: ClassifiedError) -> bytes:
    """The in-band Chat Completions error: ``data: {"error": {...}}`` and a blank line."""
    return b"data: " + _ENCODER.encode({"error": error_object(error, api="chat")}) + b"\n\n"


def chat_event_error(error: ClassifiedError) -> dict[str, Any]:
    """The stateful chat API's ``error`` event payload (its ``ChatStreamError`` shape):
    ``message``, ``kind``, ``retryable`` always; ``detail``, ``provider``, ``status_code``
    only when set."""
    payload: dict[str, Any] = {"message": scrub(error.message)}
    if error.detail:
        payload["detail"] = scrub(error.detail)
    payload["kind"] = str(error.kind)
    if error.provider:
        payload["provider"] = error.provider
    payload["retryable"] = error.retryable
    if error.status_code:
        payload["status_code"] = error.status_code
    return payload

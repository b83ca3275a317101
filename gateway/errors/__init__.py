"""Upstream failures, classified once and spoken in one language.

Every upstream failure (an HTTP error answer, an in-band stream error, an exception, the
gateway's own timers) becomes a :class:`ClassifiedError`; :func:`error_response`,
:func:`error_object` and :func:`chat_stream_error_frame` turn one into what the client
receives. The gateway's own refusals (bad request, unknown model, wrong key) live in
:mod:`gateway.errors.client`.
"""

from __future__ import annotations

from gateway.errors._classify import (
    build_error,
    circuit_open_error,
    classify_response,
    classify_stream_error,
    classify_text,
    startup_timeout_error,
    stream_idle_timeout_error,
    stream_truncated_error,
    with_provider,
)
from gateway.errors._exceptions import classify_exception
from gateway.errors._model import AttemptFailed, ClassifiedError, ErrorKind, UpstreamError
from gateway.errors._payload import chat_event_error, chat_stream_error_frame, error_object, error_response
from gateway.errors._providers import display_name, normalize_provider
from gateway.errors._retry_after import parse_retry_after

__all__ = [
    "AttemptFailed",
    "ClassifiedError",
    "ErrorKind",
    "UpstreamError",
    "build_error",
    "chat_event_error",
    "chat_stream_error_frame",
    "circuit_open_error",
    "classify_exception",
    "classify_response",
    "classify_stream_error",
    "classify_text",
    "display_name",
    "error_object",
    "error_response",
    "normalize_provider",
    "parse_retry_after",
    "startup_timeout_error",
    "stream_idle_timeout_error",
    "stream_truncated_error",
    "with_provider",
]

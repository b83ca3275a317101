"""User-facing texts: the terminal message and the shorter retry message.

Both are pure functions of the classification, so replacing the provider regenerates them.
The terminal message names the upstream HTTP status, " (HTTP N)" before the final period,
for the transient kinds when a status is known.
"""

from __future__ import annotations

from gateway.errors._model import ErrorKind
from gateway.errors._providers import display_name, subject

CANCELED_MESSAGE = "The request was canceled before it completed."
DEADLINE_MESSAGE = "The request timed out before it completed."
UNEXPECTED_MESSAGE = "The chat request failed unexpectedly."

# Gateway codes for the two ways a committed stream can fail without an upstream error.
STREAM_TRUNCATED = "stream_truncated"
STREAM_IDLE_TIMEOUT = "stream_idle_timeout"


def _with_status(sentence: str, status_code: int) -> str:
    if status_code <= 0:
        return sentence
    return f"{sentence[:-1]} (HTTP {status_code})."


def _first_sentence(kind: ErrorKind, provider: str, code: str | None) -> str:
    """The factual sentence shared by both templates (no status, no guidance)."""
    who = subject(provider)
    if kind is ErrorKind.OVERLOADED:
        return f"{who} is temporarily overloaded."
    if kind is ErrorKind.RATE_LIMIT:
        return f"{who} is rate limiting requests."
    if kind is ErrorKind.TIMEOUT:
        if code == STREAM_TRUNCATED:
            return f"{who} stream closed unexpectedly before the response completed."
        if code == STREAM_IDLE_TIMEOUT:
            return f"{who} stopped sending data before the response completed."
        return f"{who} is temporarily unavailable."
    if kind is ErrorKind.STARTUP_TIMEOUT:
        return f"{who} did not start responding in time."
    if kind is ErrorKind.AUTH:
        return f"Authentication with {display_name(provider) or 'the AI provider'} failed."
    if kind is ErrorKind.CONFIG:
        return f"{who} rejected the model configuration."
    if kind is ErrorKind.CANCELED:
        return CANCELED_MESSAGE
    return f"{who} returned an unexpected error."


def terminal_message(
    kind: ErrorKind, provider: str, *, retryable: bool, status_code: int, code: str | None = None
) -> str:
    """The message shown when the failure is final (persisted, sent to clients)."""
    sentence = _first_sentence(kind, provider, code)
    if kind is ErrorKind.AUTH:
        return f"{sentence} Check the API key, permissions, and billing settings."
    if kind is ErrorKind.CONFIG:
        return f"{sentence} Check the selected model and provider settings."
    if kind is ErrorKind.TIMEOUT and code not in (STREAM_TRUNCATED, STREAM_IDLE_TIMEOUT):
        if not retryable and status_code <= 0:
            return DEADLINE_MESSAGE
        return _with_status(sentence, status_code)
    if kind is ErrorKind.GENERIC:
        if not retryable and status_code <= 0:
            return UNEXPECTED_MESSAGE
        return _with_status(sentence, status_code)
    if kind in (ErrorKind.OVERLOADED, ErrorKind.RATE_LIMIT):
        return _with_status(sentence, status_code)
    return sentence


def retry_message(kind: ErrorKind, provider: str, *, code: str | None = None) -> str:
    """The message shown next to a retry countdown: facts only, no status, no guidance."""
    return _first_sentence(kind, provider, code)

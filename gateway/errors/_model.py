"""The classified error record and its kinds."""

from __future__ import annotations

import enum

import msgspec


class ErrorKind(enum.StrEnum):
    """What went wrong, in the vocabulary shared by logs, clients and the retry policy."""

    OVERLOADED = "overloaded"
    RATE_LIMIT = "rate_limit"
    TIMEOUT = "timeout"
    STARTUP_TIMEOUT = "startup_timeout"
    AUTH = "auth"
    CONFIG = "config"
    GENERIC = "generic"
    CANCELED = "canceled"


class ClassifiedError(msgspec.Struct, frozen=True, kw_only=True):
    """One upstream failure, classified once.

    ``message`` is the terminal text for users and ``retry_message`` the shorter text shown
    while a retry is pending; both are derived from the other fields (see ``with_provider``).
    ``detail`` is the provider's own words (at most 500 characters). ``failover`` says
    whether another deployment or a fallback model may succeed where this one failed;
    it is false for failures the client caused and for cancellations.

    ``code`` is the upstream's error code when it sent one, otherwise a code inferred from
    a recognised signal (``context_length_exceeded``, ``model_not_found``,
    ``insufficient_quota``, ``previous_response_not_found``) or one of the gateway's own
    (``stream_truncated``, ``stream_idle_timeout``). ``upstream_type`` and ``param`` are the
    upstream's ``error.type`` and ``error.param`` when it sent them.
    """

    kind: ErrorKind
    provider: str = ""
    status_code: int = 0
    retryable: bool = False
    retry_after: float = 0.0
    message: str = ""
    retry_message: str = ""
    detail: str = ""
    failover: bool = False
    code: str | None = None
    upstream_type: str | None = None
    param: str | None = None


class UpstreamError(Exception):
    """An exception that already carries its classification.

    ``classify_exception`` returns the carried classification unchanged (apart from an
    explicit provider hint), wherever the exception sits in the ``__cause__`` /
    ``__context__`` chain.
    """

    def __init__(self, error: ClassifiedError) -> None:
        super().__init__(error.message)
        self.error = error


class AttemptFailed(Exception):
    """One upstream attempt failed; ``classified`` says how. The failover loop decides what
    comes next (retry, the next deployment, or the answer to the client)."""

    def __init__(self, classified: ClassifiedError) -> None:
        super().__init__(classified.message)
        self.classified = classified

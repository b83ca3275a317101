"""What a request came to, gathered on its exit paths and handed to its ticket in one call."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from gateway.pricing import Usage


class _Attempt(Protocol):
    @property
    def provider(self) -> str: ...
    @property
    def upstream_model(self) -> str: ...


class _Trace(Protocol):
    @property
    def attempts(self) -> Sequence[_Attempt]: ...
    @property
    def upstream_s(self) -> float: ...
    @property
    def backoff_s(self) -> float: ...


class Outcome:
    """Filled in as the request ends (500 ``internal`` until told otherwise)."""

    __slots__ = ("error_type", "status", "usage")

    def __init__(self) -> None:
        self.status = 500
        self.error_type = "internal"
        self.usage: Usage | None = None

    def ok(self, usage: Usage | None = None) -> None:
        self.status, self.error_type = 200, ""
        if usage is not None:
            self.usage = usage

    def failed(self, status: int, error_type: str) -> None:
        self.status, self.error_type = status, error_type

    def settle(self, ticket: Any, trace: _Trace) -> None:
        """Settle ``ticket`` (None: nothing was admitted) with this outcome and the trace."""
        if ticket is None:
            return
        last = trace.attempts[-1] if trace.attempts else None
        ticket.settle(
            status=self.status,
            usage=self.usage,
            error_type=self.error_type or None,
            provider=last.provider if last else None,
            upstream_model=last.upstream_model if last else None,
            attempts=len(trace.attempts),
            upstream_s=trace.upstream_s + trace.backoff_s,
        )

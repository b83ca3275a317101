"""How a relay says a committed stream failed, and the rule for malformed events after the commit.

:class:`StreamFailure` (an in-band failure, already classified) and :class:`StreamTruncated` (the
upstream ended before its terminal event) are raised by relays, translators and readers and
turned into error frames by the post-commit guard (:func:`gateway.upstream.committed.run_committed`).

A malformed event (its data is not JSON) before the commit point fails the attempt, which may
then be retried: nothing has reached the client. After the commit point it is dropped, counted
and logged (its raw bytes cut to :data:`RAW_LOG_LIMIT`) when a valid event may still follow:
``limit`` malformed events in a row end the stream as broken, so a stream of nothing but
garbage still fails. Dropping assumes the event was noise; an event that carried content
loses that content (the gateway cannot tell the two apart).
"""

from __future__ import annotations

import logging
from typing import Protocol

import msgspec

from gateway.errors import ClassifiedError, classify_text

log = logging.getLogger("gateway.upstream.stream")

RAW_LOG_LIMIT = 200


class StreamFailure(Exception):
    """Raised by a relay or translator for an in-band failure (already classified)."""

    def __init__(self, classified: ClassifiedError) -> None:
        super().__init__(classified.message)
        self.classified = classified


class StreamTruncated(Exception):
    """Raised when the upstream ended before its terminal event."""


def malformed_event(provider: str) -> ClassifiedError:
    """An upstream stream event that is not valid JSON (generic, retryable before the commit)."""
    classified = classify_text("upstream server error: malformed stream event", provider=provider)
    return msgspec.structs.replace(classified, detail="An upstream stream event was not valid JSON.")


class MalformedSink(Protocol):
    """Where dropped events are counted (the router's stream metrics)."""

    def malformed(self, provider: str) -> None: ...


class NoSink:
    def malformed(self, provider: str) -> None:
        return None


class MalformedGuard:
    """Counts malformed events of one committed stream; raises at ``limit`` in a row."""

    __slots__ = ("_limit", "_name", "_provider", "_sink", "dropped", "run")

    def __init__(self, *, provider: str, name: str, limit: int, sink: MalformedSink) -> None:
        self._provider = provider  # the classifier's key (error messages)
        self._name = name  # the configured provider name (logs, metrics)
        self._limit = limit
        self._sink = sink
        self.run = 0
        self.dropped = 0

    def bad(self, raw: bytes | str) -> None:
        """A malformed event: dropped, or the end of the stream (raises StreamFailure)."""
        self.run += 1
        shown = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
        if self.run >= self._limit:
            log.warning(
                "malformed stream event, the %dth in a row ends the stream: provider=%s raw=%r",
                self.run,
                self._name,
                shown[:RAW_LOG_LIMIT],
            )
            raise StreamFailure(malformed_event(self._provider))
        self.dropped += 1
        self._sink.malformed(self._name)
        log.warning("malformed stream event dropped: provider=%s raw=%r", self._name, shown[:RAW_LOG_LIMIT])

    def good(self) -> None:
        self.run = 0

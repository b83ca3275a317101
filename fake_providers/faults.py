"""The fault catalogue: names, what each one means, and parsing them from model names and scripts.

A fault is named by a model (`fault-429`) or by a scripted step (`{"fault": "429"}`); the `fault-`
prefix is optional in scripts. What a fault looks like on the wire (body, headers, in-band frames)
is up to each dialect; this module only says which fault it is.
"""

from __future__ import annotations

import enum
import re

import msgspec

from fake_providers.durations import parse_duration

FAULT_PREFIX = "fault-"


class ErrorKind(enum.Enum):
    """Errors a provider answers with; each dialect renders its own body for each."""

    RATE_LIMIT = "429"
    QUOTA = "429-quota"
    AUTH = "401"
    FORBIDDEN = "403"
    MODEL_NOT_FOUND = "404"
    CONTEXT_LENGTH = "context-length"
    SERVER_ERROR = "500"
    BAD_GATEWAY = "502"
    UNAVAILABLE = "503"
    OVERLOADED = "529"
    HIDDEN_RATE_LIMIT = "hidden-429"


# The HTTP status of each error when it is answered as an HTTP error.
ERROR_STATUS: dict[ErrorKind, int] = {
    ErrorKind.RATE_LIMIT: 429,
    ErrorKind.QUOTA: 429,
    ErrorKind.AUTH: 401,
    ErrorKind.FORBIDDEN: 403,
    ErrorKind.MODEL_NOT_FOUND: 404,
    ErrorKind.CONTEXT_LENGTH: 400,
    ErrorKind.SERVER_ERROR: 500,
    ErrorKind.BAD_GATEWAY: 502,
    ErrorKind.UNAVAILABLE: 503,
    ErrorKind.OVERLOADED: 529,
    ErrorKind.HIDDEN_RATE_LIMIT: 500,
}

_ERRORS_BY_NAME = {kind.value: kind for kind in ErrorKind}


class FaultKind(enum.Enum):
    HTTP_ERROR = "http-error"  # an HTTP error status with the dialect's error body
    ERROR_200 = "200-error"  # status 200 whose JSON body is an error
    RESET = "reset"  # TCP reset before any response header
    SILENCE = "silence"  # headers, then nothing until the client goes away
    STALL = "stall"  # a few chunks, then nothing until the client goes away
    CUT = "cut"  # a few chunks, then the connection closes mid-body
    MALFORMED = "malformed"  # one chunk (or the JSON body) is not valid JSON
    INBAND = "inband"  # harmless first event(s), then an in-band error ends the stream
    SLOW = "slow"  # latency before the first chunk and between chunks
    GARBAGE = "garbage"  # one malformed event inserted before a chunk; every chunk still follows
    NO_DONE = "no-done"  # the whole stream but its `[DONE]` marker, then a clean end


DEFAULT_SLOW_FIRST = 0.2
DEFAULT_SLOW_GAP = 0.02
DEFAULT_CHUNKS_BEFORE_FAULT = 2


class Fault(msgspec.Struct, frozen=True, kw_only=True):
    kind: FaultKind
    error: ErrorKind | None = None  # HTTP_ERROR, ERROR_200, INBAND (None: the dialect's usual one)
    # STALL, CUT, MALFORMED, GARBAGE, INBAND: stream chunks sent before the fault strikes
    # (None: 2 for STALL, CUT, MALFORMED and GARBAGE; the dialect's harmless head for INBAND).
    after: int | None = None
    first_delay: float = 0.0  # SLOW
    gap: float = 0.0  # SLOW


class UnknownFault(ValueError):
    pass


def _error_suffix(rest: str, name: str) -> ErrorKind | None:
    if not rest:
        return None
    kind = _ERRORS_BY_NAME.get(rest)
    if kind is None:
        raise UnknownFault(f"unknown error {rest!r} in fault {name!r}")
    return kind


_AFTER = re.compile(r"^(?:(?P<rest>.*?)-)?after-(?P<count>\d+)$")


def _split_after(rest: str) -> tuple[str, int | None]:
    """`429-after-3` -> (`429`, 3); `after-3` -> (``, 3); `429` -> (`429`, None)."""
    match = _AFTER.match(rest)
    if match is None:
        return rest, None
    return match.group("rest") or "", int(match.group("count"))


def _count_suffix(rest: str, name: str) -> int | None:
    """`3` or `after-3` -> 3; empty -> None (the default)."""
    rest, count = _split_after(rest)
    if not rest:
        return count
    if count is not None or not rest.isdigit():
        raise UnknownFault(f"expected a chunk count after the fault name in {name!r}")
    return int(rest)


def _slow(rest: str, name: str) -> Fault:
    if not rest:
        return Fault(kind=FaultKind.SLOW, first_delay=DEFAULT_SLOW_FIRST, gap=DEFAULT_SLOW_GAP)
    parts = rest.split("-")
    delays = [parse_duration(part) for part in parts]
    if len(parts) > 2 or any(delay is None for delay in delays):
        raise UnknownFault(f"expected fault-slow-<duration>[-<duration>] like fault-slow-200ms, got {name!r}")
    first = delays[0] or 0.0
    gap = delays[1] if len(delays) == 2 and delays[1] is not None else first
    return Fault(kind=FaultKind.SLOW, first_delay=first, gap=gap)


def parse_fault(name: str) -> Fault:
    """Parse a fault name, with or without the `fault-` prefix. Raises UnknownFault."""
    bare = name.removeprefix(FAULT_PREFIX)
    if bare in _ERRORS_BY_NAME:
        return Fault(kind=FaultKind.HTTP_ERROR, error=_ERRORS_BY_NAME[bare])
    head, _, rest = bare.partition("-")
    if bare == "200-error" or bare.startswith("200-error-"):
        rest = bare.removeprefix("200-error").removeprefix("-")
        return Fault(kind=FaultKind.ERROR_200, error=_error_suffix(rest, name))
    if head == "inband":
        error, after = _split_after(rest)
        return Fault(kind=FaultKind.INBAND, error=_error_suffix(error, name), after=after)
    if head in ("reset", "silence") and not rest:
        return Fault(kind=FaultKind(head))
    if bare == "no-done":
        return Fault(kind=FaultKind.NO_DONE)
    if head in ("stall", "cut", "malformed", "garbage"):
        return Fault(kind=FaultKind(head), after=_count_suffix(rest, name))
    if head == "slow":
        return _slow(rest, name)
    raise UnknownFault(f"unknown fault {name!r}")


def fault_for_model(model: str) -> Fault | None:
    """The fault a model name asks for; None for ordinary models. Raises UnknownFault."""
    if not model.startswith(FAULT_PREFIX):
        return None
    return parse_fault(model)

"""Server-directed retry delays: ``retry-after-ms`` and ``retry-after``."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC
from email.utils import parsedate_to_datetime


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup that works for plain dicts as well as ``httpx.Headers``."""
    value = headers.get(name)
    if value is not None:
        return value
    for key, candidate in headers.items():
        if key.lower() == name:
            return candidate
    return None


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def parse_retry_after(headers: Mapping[str, str] | None, *, now: float) -> float:
    """The delay, in seconds, the upstream asked for; 0.0 when none or unparseable.

    ``retry-after-ms`` (float milliseconds) wins when it holds a positive number. Otherwise
    ``retry-after`` is float seconds or an HTTP-date, whose delay is the date minus ``now``
    (epoch seconds). ``now <= 0`` means "unknown": an HTTP-date is then ignored rather than
    turned into a delay of decades. Non-positive results are 0.0.
    """
    if not headers:
        return 0.0
    millis = _header(headers, "retry-after-ms")
    if millis is not None:
        value = _number(millis.strip())
        if value is not None and value > 0:
            return value / 1000.0
    raw = _header(headers, "retry-after")
    if raw is None:
        return 0.0
    raw = raw.strip()
    seconds = _number(raw)
    if seconds is not None:
        return max(seconds, 0.0)
    if now <= 0:
        return 0.0
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return 0.0
    if when.tzinfo is None:  # asctime and "-0000" forms carry no zone; HTTP-dates are GMT
        when = when.replace(tzinfo=UTC)
    return max(when.timestamp() - now, 0.0)

"""Durations: Go's `time.Duration.String()` format (OpenAI rate-limit headers) and a small parser."""

from __future__ import annotations

import re

_NS_PER_US = 1_000
_NS_PER_MS = 1_000_000
_NS_PER_S = 1_000_000_000

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s)$")


def _fraction(value: int, unit: int) -> str:
    whole, rest = divmod(value, unit)
    if rest == 0:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}.{rest:0{digits}d}".rstrip("0")


def go_duration(seconds: float) -> str:
    """Format like Go: `0s`, `12ms`, `1.5s`, `6m0s`, `1h2m3s`."""
    ns = round(seconds * _NS_PER_S)
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < _NS_PER_US:
        return f"{sign}{ns}ns"
    if ns < _NS_PER_MS:
        return f"{sign}{_fraction(ns, _NS_PER_US)}µs"
    if ns < _NS_PER_S:
        return f"{sign}{_fraction(ns, _NS_PER_MS)}ms"
    hours, ns = divmod(ns, 3600 * _NS_PER_S)
    minutes, ns = divmod(ns, 60 * _NS_PER_S)
    text = _fraction(ns, _NS_PER_S) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{text}"
    if minutes:
        return f"{sign}{minutes}m{text}"
    return sign + text


def parse_duration(text: str) -> float | None:
    """`200ms` -> 0.2, `1.5s` -> 1.5; None when the text is not such a duration."""
    match = _DURATION.match(text)
    if match is None:
        return None
    value = float(match.group(1))
    return value / 1000 if match.group(2) == "ms" else value

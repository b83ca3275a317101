"""Budget windows: ``day``, ``week`` (ISO, from Monday), ``month`` and ``total``, all in UTC.

A spend counter is named after its window (``d20261124``, ``w2026W48``, ``m202611``, ``total``)
and lives until its window ends plus 35 days.
"""

from __future__ import annotations

import datetime as dt

WINDOWS = ("day", "week", "month", "total")
_GRACE_DAYS = 35


def window_ids(ts: float) -> dict[str, tuple[str, int]]:
    """Window id and counter TTL (seconds, 0 = none) of each budget window at ``ts`` (UTC)."""
    now = dt.datetime.fromtimestamp(ts, dt.UTC)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    week = day - dt.timedelta(days=day.weekday())
    month = day.replace(day=1)
    next_month = (month + dt.timedelta(days=32)).replace(day=1)
    iso = now.isocalendar()

    def ttl(end: dt.datetime) -> int:
        return int((end - now).total_seconds()) + _GRACE_DAYS * 86400

    return {
        "day": (f"d{now:%Y%m%d}", ttl(day + dt.timedelta(days=1))),
        "week": (f"w{iso.year}W{iso.week:02d}", ttl(week + dt.timedelta(days=7))),
        "month": (f"m{now:%Y%m}", ttl(next_month)),
        "total": ("total", 0),
    }


def window_reset(ts: float, window: str) -> float | None:
    """When ``window`` starts again after ``ts`` (None: ``total`` never does)."""
    now = dt.datetime.fromtimestamp(ts, dt.UTC)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if window == "day":
        return (day + dt.timedelta(days=1)).timestamp()
    if window == "week":
        return (day + dt.timedelta(days=7 - day.weekday())).timestamp()
    if window == "month":
        return (day.replace(day=1) + dt.timedelta(days=32)).replace(day=1).timestamp()
    return None


class WindowCache:
    """:func:`window_ids`, computed once per minute: windows start on minute boundaries, and
    counter TTLs (window end + 35 days) need no finer precision."""

    __slots__ = ("_ids", "_minute")

    def __init__(self) -> None:
        self._minute = -1
        self._ids: dict[str, tuple[str, int]] = {}

    def at(self, now: float) -> dict[str, tuple[str, int]]:
        minute = int(now // 60)
        if self._minute != minute:
            self._minute, self._ids = minute, window_ids(minute * 60.0)
        return self._ids

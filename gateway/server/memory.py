"""A worker's memory: the allocator it runs on, and what it gives back when it goes idle.

A burst of concurrent streams leaves a process with its objects freed but its memory kept.
Measured with ``python -m benchmarks.soak`` (200 concurrent streams, one worker): with Python's
own small-object allocator the resident set stayed near its peak afterwards (idle 64 MB, 120 to
150 MB after), because an arena of it goes back to the system only once every object in it is
freed, and the few long-lived objects created under load (pooled connections, metric series)
keep most arenas of the burst. On the C library's allocator, ``malloc_trim`` returns every
free page, wherever it lies: the same soak ends within 30 % of idle, at about the same CPU per
request (within the noise of ``make bench``). So:

- :func:`use_system_allocator`: ``gateway serve`` runs on the C allocator
  (``PYTHONMALLOC=malloc``): the process starts itself again with it, once, before it has
  done anything. An operator who sets ``PYTHONMALLOC`` (e.g. ``pymalloc``) keeps that choice.
- :class:`IdleTrim`: once a worker has had no request in flight for :data:`IDLE_SECONDS`
  after serving some, it collects garbage (the reference cycles of finished requests wait for
  a full collection otherwise) and gives the free memory back (``malloc_trim(0)``); again every
  :data:`REPEAT_SECONDS` while it stays quiet, :data:`REPEATS` times in all (what finishes after
  the last request, such as the settlements queued under load, is returned too), never under
  load.
"""

from __future__ import annotations

import ctypes
import gc
import os
import sys
from collections.abc import Callable

IDLE_SECONDS = 2.0
REPEAT_SECONDS = 5.0
REPEATS = 6
ALLOCATOR_VARIABLE = "PYTHONMALLOC"


def use_system_allocator() -> None:
    """Start this process again on the C allocator unless ``PYTHONMALLOC`` is set (Linux
    only: elsewhere the allocators differ and nothing is done). Keeps the pid, the arguments
    and the open standard streams; returns only when nothing was to be done."""
    if not sys.platform.startswith("linux") or ALLOCATOR_VARIABLE in os.environ:
        return
    argv = [sys.executable, *sys.orig_argv[1:]]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, argv, {**os.environ, ALLOCATOR_VARIABLE: "malloc"})


def _malloc_trim() -> Callable[[], None] | None:
    """glibc's ``malloc_trim(0)`` (None where there is none)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int

    def call() -> None:
        trim(0)

    return call


class IdleTrim:
    """Collects garbage and returns free memory when the worker goes quiet (see the module
    docstring). :meth:`tick` is called a few times a second with the number of requests in
    flight and the loop's time."""

    __slots__ = ("_due", "_left", "_repeats", "_trim", "idle_seconds", "repeat_seconds", "trims")

    def __init__(
        self,
        idle_seconds: float = IDLE_SECONDS,
        repeat_seconds: float = REPEAT_SECONDS,
        repeats: int = REPEATS,
    ) -> None:
        self.idle_seconds = idle_seconds
        self.repeat_seconds = repeat_seconds
        self._trim = _malloc_trim()
        self._due: float | None = None  # when the next trim is due (None: not since the last busy tick)
        self._left = 0  # trims left in this quiet spell
        self.trims = 0
        self._repeats = repeats

    def tick(self, in_flight: int, now: float) -> bool:
        """True when it collected and trimmed just now."""
        if in_flight:
            self._due = None
            self._left = self._repeats
            return False
        if self._left == 0:
            return False
        if self._due is None:
            self._due = now + self.idle_seconds
            return False
        if now < self._due:
            return False
        self._left -= 1
        self._due = now + self.repeat_seconds
        gc.collect()
        if self._trim is not None:
            self._trim()
        self.trims += 1
        return True

"""N worker processes on one port, restarted when they die, drained on a signal.

The parent starts the embedded Redis and binds one socket per worker, all on the same address
with ``SO_REUSEPORT``, before it forks the workers: the kernel spreads new connections evenly
over the sockets. (One socket shared by every worker leaves the spreading to whichever worker
wakes first: a burst of keep-alive connections tends to land on one of them, and measured with
32 connections the second worker stayed idle.) The parent keeps each worker's socket, so a
worker that dies at once replaced loses no connection waiting in its queue: its replacement
inherits the socket. One that is restarted only after a backoff has its socket closed meanwhile
(the kernel then sends new connections to the others) and gets a new one.

- A worker that dies is started again: at once when it had run for a while, else after a
  backoff that doubles with each quick death (0.5 s up to 30 s), so a crash loop does not spin.
- A worker that dies before any worker ever became ready is a startup failure: the others are
  stopped and :meth:`Supervisor.run` returns the worker's exit status.
- On SIGTERM or SIGINT the parent sends SIGTERM to every worker, which stops accepting and lets
  its answers in flight finish (``server.drain_seconds``), then shuts its app down. Workers
  still alive ``drain_seconds`` plus a margin later are killed; a second signal kills them at
  once. Workers ignore SIGINT (a terminal's Ctrl-C reaches the whole process group): the
  parent decides.
- Workers are killed (SIGKILL, on Linux) when the parent dies without stopping them: a killed
  gateway is gone as a whole, as one process was (its embedded Redis gets SIGTERM and writes its
  append-only file).
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import socket
import struct
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType

from gateway.redis.embedded import parent_death_signal

log = logging.getLogger("gateway")

STABLE_SECONDS = 10.0  # a worker that ran this long is restarted at once
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0
SHUTDOWN_MARGIN = 15.0  # after the drain: the app's own shutdown (its last writes)
_STOPS = (signal.SIGTERM, signal.SIGINT)
_PID = struct.Struct("=i")


def _noted(signum: int, frame: FrameType | None) -> None:
    """The parent's handler: the wake-up pipe carries the signal; nothing else to do here."""


def restart_delay(failures: int) -> float:
    """Seconds before a worker's restart after ``failures`` quick deaths in a row (1: at once)."""
    if failures <= 1:
        return 0.0
    return float(min(BACKOFF_MAX, BACKOFF_FIRST * 2.0 ** (failures - 2)))


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


@dataclass
class _Slot:
    index: int
    pid: int | None = None
    started: float = 0.0
    ready: bool = False
    failures: int = 0
    restart_at: float | None = None
    sock: socket.socket | None = None


@dataclass(frozen=True)
class Ended:
    """How the workers ended: by ``signal`` (SIGTERM or SIGINT), else a startup failure."""

    signal: int | None
    status: int = 0


class Supervisor:
    """Runs ``target(index, sock, ready)`` in ``count`` forked workers, each on its own socket
    made by ``listen()``; ``ready()`` tells the parent that the worker serves. ``close_in_child``
    are descriptors a worker must not keep (the embedded Redis's lock)."""

    def __init__(
        self,
        count: int,
        target: Callable[[int, socket.socket, Callable[[], None]], None],
        *,
        listen: Callable[[], socket.socket],
        drain_seconds: float,
        close_in_child: Sequence[int] = (),
    ) -> None:
        self._slots = [_Slot(i) for i in range(count)]
        self._target = target
        self._listen = listen
        self._drain = drain_seconds
        self._close_in_child = tuple(close_in_child)
        self._parent = os.getpid()
        self._wake = (-1, -1)
        self._ready = (-1, -1)
        self._any_ready = False
        self.restarts = 0

    # -- the parent's loop -------------------------------------------------------------------
    def run(self) -> Ended:
        self._wake = os.pipe()
        self._ready = os.pipe()
        for fd in (*self._wake, self._ready[0]):
            os.set_blocking(fd, False)
        previous_fd = signal.set_wakeup_fd(self._wake[1], warn_on_full_buffer=False)
        previous = {sig: signal.signal(sig, _noted) for sig in (signal.SIGCHLD, *_STOPS)}
        try:
            return self._supervise()
        finally:
            self._close_sockets()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            signal.set_wakeup_fd(previous_fd)
            for fd in (*self._wake, *self._ready):
                os.close(fd)

    def _supervise(self) -> Ended:
        for slot in self._slots:
            self._spawn(slot)
        while True:
            signals = self._wait(self._next_restart())
            stop = next((s for s in signals if s in _STOPS), None)
            if stop is not None:
                self._shutdown(stop)
                return Ended(stop)
            failed = self._reap()
            if failed is not None:
                self._shutdown(None)
                return Ended(None, failed)
            now = time.monotonic()
            for slot in self._slots:
                if slot.restart_at is not None and slot.restart_at <= now:
                    self.restarts += 1
                    self._spawn(slot)

    def _next_restart(self) -> float | None:
        due = [s.restart_at for s in self._slots if s.restart_at is not None]
        return max(0.0, min(due) - time.monotonic()) if due else None

    def _wait(self, timeout: float | None) -> list[int]:
        """Until a signal, a ready worker or ``timeout``: the signals received."""
        select.select([self._wake[0], self._ready[0]], [], [], timeout)
        signals: list[int] = []
        with contextlib.suppress(BlockingIOError):
            while chunk := os.read(self._wake[0], 64):
                signals.extend(chunk)
        with contextlib.suppress(BlockingIOError):
            while chunk := os.read(self._ready[0], _PID.size * 64):
                for (pid,) in _PID.iter_unpack(chunk):
                    for slot in self._slots:
                        if slot.pid == pid:
                            slot.ready = self._any_ready = True
        return signals

    def _reap(self) -> int | None:
        """Collect dead workers and schedule their restart; an exit status for a startup failure."""
        now = time.monotonic()
        for slot in self._slots:
            if slot.pid is None:
                continue
            code = self._poll(slot.pid)
            if code is None:
                continue
            pid, slot.pid = slot.pid, None
            if not slot.ready and not self._any_ready:
                log.error("worker %d (pid %d) %s before it could serve", slot.index, pid, describe_exit(code))
                return code if code > 0 else 1
            slot.failures = 1 if now - slot.started >= STABLE_SECONDS else slot.failures + 1
            delay = restart_delay(slot.failures)
            slot.restart_at = now + delay
            if delay > 0 and slot.sock is not None:  # meanwhile its connections go to the others
                slot.sock.close()
                slot.sock = None
            log.warning(
                "worker %d (pid %d) %s; starting it again in %.1f s",
                slot.index,
                pid,
                describe_exit(code),
                delay,
            )
        return None

    @staticmethod
    def _poll(pid: int) -> int | None:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return -int(signal.SIGKILL)
        return os.waitstatus_to_exitcode(status) if done else None

    def _shutdown(self, stop: int | None) -> None:
        """SIGTERM to every worker; wait for them up to the drain plus a margin (a second
        signal: at once), then kill what is left."""
        live = [s for s in self._slots if s.pid is not None]
        for slot in self._slots:
            slot.restart_at = None
        # Once a worker stops accepting, its socket is gone: new connections are refused.
        self._close_sockets()
        if stop is not None:
            log.info(
                "%s: draining %d worker(s) for up to %g s", signal.Signals(stop).name, len(live), self._drain
            )
        for slot in live:
            self._signal(slot, signal.SIGTERM)
        deadline = time.monotonic() + self._drain + SHUTDOWN_MARGIN
        while any(s.pid is not None for s in self._slots):
            left = deadline - time.monotonic()
            if left <= 0:
                log.error("workers still running after the drain: killing them")
                break
            if any(s in _STOPS for s in self._wait(min(left, 1.0))):
                log.warning("second signal: killing the workers")
                break
            for slot in self._slots:
                if slot.pid is not None and self._poll(slot.pid) is not None:
                    slot.pid = None
        for slot in self._slots:
            if slot.pid is not None:
                self._signal(slot, signal.SIGKILL)
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(slot.pid, 0)
                slot.pid = None

    def _close_sockets(self) -> None:
        for slot in self._slots:
            if slot.sock is not None:
                slot.sock.close()
                slot.sock = None

    @staticmethod
    def _signal(slot: _Slot, sig: int) -> None:
        if slot.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(slot.pid, sig)

    # -- a worker ---------------------------------------------------------------------------
    def _spawn(self, slot: _Slot) -> None:
        slot.restart_at = None
        slot.ready = False
        slot.started = time.monotonic()
        if slot.sock is None:
            try:
                slot.sock = self._listen()
            except (OSError, RuntimeError) as exc:
                slot.failures += 1
                delay = restart_delay(max(2, slot.failures))
                slot.restart_at = slot.started + delay
                log.error("worker %d: %s; trying again in %.1f s", slot.index, exc, delay)
                return
        sock = slot.sock
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid:
            slot.pid = pid
            return
        code = 1
        try:
            self._become_worker(slot)
            self._target(slot.index, sock, self._notify_ready)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        except BaseException:
            traceback.print_exc()
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)

    def _become_worker(self, mine: _Slot) -> None:
        """In the forked child: its own signal dispositions, none of the parent's pipes, none of
        the other workers' sockets (a copy kept here would keep a closed one in the kernel's
        rotation)."""
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # until the server takes it: a drain
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent's to decide
        for fd in (*self._wake, self._ready[0], *self._close_in_child):
            with contextlib.suppress(OSError):
                os.close(fd)
        for slot in self._slots:
            if slot is not mine and slot.sock is not None:
                slot.sock.close()
        arm = parent_death_signal(signal.SIGKILL)
        if arm is not None:
            arm()
        if os.getppid() != self._parent:  # the parent died before the signal was armed
            os._exit(1)

    def _notify_ready(self) -> None:
        os.write(self._ready[1], _PID.pack(os.getpid()))

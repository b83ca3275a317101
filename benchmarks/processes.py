"""The harness's child processes: each leads its own process group and is stopped by id."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO, Any

from benchmarks.common import REPO, BenchError

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM if the harness dies without cleaning up."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    stop_signal: signal.Signals
    grace: float


class Children:
    """Every process the harness starts; each leads its own process group, stopped by id."""

    def __init__(self) -> None:
        self._children: list[Child] = []

    def spawn(
        self,
        name: str,
        argv: list[str],
        *,
        stdin: int | None = subprocess.DEVNULL,
        stdout: int | IO[bytes] | None = None,
        stderr: int | IO[bytes] | None = None,
        env: dict[str, str] | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
        grace: float = 5.0,
    ) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            argv,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            env=env,
            cwd=REPO,
            # Own session: a Ctrl-C in the terminal reaches only the harness, which then stops
            # the children in order (the gateway first, so it can stop its redis-server).
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self._children.append(Child(name, proc, stop_signal, grace))
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        for child in list(self._children):
            if child.proc is proc:
                self._stop(child)
                self._children.remove(child)

    def stop_all(self) -> None:
        while self._children:
            self._stop(self._children.pop())

    @staticmethod
    def _stop(child: Child) -> None:
        proc = child.proc
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(child.stop_signal)
            try:
                proc.wait(child.grace)
            except subprocess.TimeoutExpired:
                print(f"  {child.name} (pid {proc.pid}) did not stop in {child.grace:.0f}s: killing it")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(5)
        _sweep_group(proc.pid, child.name)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _sweep_group(pgid: int, name: str) -> None:
    """Whatever the child left behind in its process group (e.g. a redis-server): TERM, then KILL."""
    if not _group_alive(pgid):
        return
    print(f"  leftover processes in {name}'s group {pgid}: stopping them")
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline and _group_alive(pgid):
        time.sleep(0.02)
    if _group_alive(pgid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)


def _read_line(proc: subprocess.Popen[bytes], deadline: float) -> str:
    """One line from the child's stdout, without blocking past ``deadline``."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    data = b""
    while b"\n" not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BenchError("timed out waiting for the child to report its port")
        ready, _, _ = select.select([fd], [], [], min(remaining, 0.2))
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                raise BenchError(f"the child exited (status {proc.wait(1)}) before reporting its port")
            data += chunk
    return data.split(b"\n", 1)[0].decode()


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGINT/SIGTERM/SIGHUP unwind as KeyboardInterrupt, so the ``finally`` blocks stop the children."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous: dict[signal.Signals, Callable[[int, FrameType | None], Any] | int | None] = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        previous[sig] = signal.signal(sig, handler)
    # Also when started in the background by a shell, which leaves SIGINT ignored.
    previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def start_listener(
    children: Children, name: str, module: str, log: IO[bytes]
) -> tuple[subprocess.Popen[bytes], int]:
    """A harness server (upstream, OTLP sink) that prints ``listening host:port`` once bound."""
    proc = children.spawn(
        name,
        [sys.executable, "-m", module, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=log,
    )
    line = _read_line(proc, time.monotonic() + 15)
    if not line.startswith("listening "):
        raise BenchError(f"unexpected {name} banner: {line!r}")
    return proc, int(line.rsplit(":", 1)[1])


def run_client(
    children: Children, name: str, module: str, spec: dict[str, Any], timeout: float
) -> dict[str, Any]:
    """A harness client run as its own process (``python -m module``): the JSON ``spec`` on its
    stdin, one JSON result on its stdout; stopped when it fails or takes longer than ``timeout``."""
    proc = children.spawn(
        name,
        [sys.executable, "-m", module],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        grace=3.0,
    )
    try:
        out, err = proc.communicate(json.dumps(spec).encode(), timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError(f"the {name} did not finish in time") from None
    finally:
        children.stop(proc)
    if proc.returncode != 0:
        raise BenchError(f"the {name} failed ({proc.returncode}):\n{err.decode(errors='replace')}")
    result: dict[str, Any] = json.loads(out)
    return result

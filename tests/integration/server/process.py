"""`gateway serve` as a real process for the server tests: its stderr read line by line, its
workers found through /proc, and which process holds a client's connection."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from gateway.testing import free_port, poll_until

ROOT = Path(__file__).resolve().parents[3]
DEADLINE = 60.0


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def write_config(path: Path, data_dir: Path, **server: Any) -> Path:
    lines = ["[server]", *(f"{k} = {toml_value(v)}" for k, v in server.items()), "", "[redis]"]
    lines.append(f"data_dir = {toml_value(str(data_dir))}")
    path.write_text("\n".join(lines) + "\n")
    return path


def children(pid: int) -> set[int]:
    """The live child processes of ``pid`` (Linux)."""
    found: set[int] = set()
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return found
    for task in tasks:
        try:
            text = Path(f"/proc/{pid}/task/{task}/children").read_text()
        except OSError:
            continue
        found.update(int(p) for p in text.split())
    return found


def command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    """Running, and not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _socket_inodes(pid: int) -> set[str]:
    inodes: set[str] = set()
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(f"{fd_dir}/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def _server_side_inode(server_port: int, client_port: int) -> str | None:
    """The inode of the accepted socket of the connection 127.0.0.1:client_port ->
    127.0.0.1:server_port (from /proc/net/tcp)."""
    local = f"0100007F:{server_port:04X}"
    remote = f"0100007F:{client_port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == local and fields[2] == remote:
            return fields[9]
    return None


def holder(server_port: int, client: socket.socket, candidates: set[int]) -> int | None:
    """Which of ``candidates`` holds the server side of ``client``'s connection."""
    inode = _server_side_inode(server_port, client.getsockname()[1])
    if inode is None:
        return None
    for pid in candidates:
        try:
            if inode in _socket_inodes(pid):
                return pid
        except FileNotFoundError:
            continue
    return None


def http_get(port: int, path: str = "/healthz", *, timeout: float = 10.0) -> tuple[int, bytes]:
    """One request on a fresh connection: (status, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\nhost: gw\r\nconnection: close\r\n\r\n".encode())
        return read_answer(conn)


def read_answer(conn: socket.socket) -> tuple[int, bytes]:
    """Read one answer that ends with the connection (or carries content-length): (status, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before an answer: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while length is None or len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, body


class Gateway:
    """A `gateway serve` process on a free port; ``lines`` collects its stderr."""

    def __init__(self, config: Path, *, port: int | None = None, env: dict[str, str] | None = None) -> None:
        self.port = port or free_port()
        self.data_dir: Path | None = None
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--config", str(config)],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {}), "GATEWAY_PORT": str(self.port), "PYTHONUNBUFFERED": "1"},
        )
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self._done: queue.Queue[None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._lock:
                self.lines.append(line.rstrip("\n"))
        self._done.put(None)

    def log(self) -> str:
        with self._lock:
            return "\n".join(self.lines)

    def count(self, text: str) -> int:
        with self._lock:
            return sum(text in line for line in self.lines)

    def wait_for(self, text: str, times: int = 1, *, deadline: float = DEADLINE) -> None:
        def seen() -> bool:
            if self.proc.poll() is not None and self.count(text) < times:
                raise AssertionError(f"exited {self.proc.returncode} before {text!r}:\n{self.log()}")
            return self.count(text) >= times

        poll_until(seen, deadline=deadline, what=f"{times}x {text!r} in the gateway's log")

    def workers(self) -> set[int]:
        return {pid for pid in children(self.proc.pid) if "redis-server" not in command(pid)}

    def wait_workers(self, count: int) -> set[int]:
        """The worker pids, once there are ``count`` of them."""

        def found() -> set[int] | None:
            workers = self.workers()
            return workers if len(workers) == count else None

        return poll_until(found, deadline=DEADLINE, what=f"{count} workers")

    def redis_pids(self) -> set[int]:
        return {pid for pid in children(self.proc.pid) if "redis-server" in command(pid)}

    def stderr_closed(self, timeout: float = DEADLINE) -> str:
        """The whole log, once every process holding the gateway's stderr has exited."""
        self._done.get(timeout=timeout)
        return self.log()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(DEADLINE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> Gateway:
        return self

    def __exit__(self, *exc: object) -> None:
        left = self.workers() | self.redis_pids()
        self.stop()
        for pid in left:  # a test that failed half-way leaves nothing behind
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def wait_closed(conn: socket.socket, *, deadline: float = 10.0) -> tuple[bytes, float]:
    """Read until the server closes ``conn``: (what it sent, seconds it took)."""
    start = time.monotonic()
    conn.settimeout(deadline)
    data = b""
    while True:
        try:
            chunk = conn.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data, time.monotonic() - start

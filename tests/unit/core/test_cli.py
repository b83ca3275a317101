"""`gateway serve` and `gateway healthcheck` as processes: where they listen (flags, then
GATEWAY_HOST/GATEWAY_PORT, then [server]), and an embedded Redis that cannot start is one line
on stderr and exit status 2, like a configuration mistake."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis

from gateway.cli import _probe_host, listen_address
from gateway.config import settings_from_mapping
from tests.conftest import free_port, poll_until

ROOT = Path(__file__).resolve().parents[3]
DEADLINE = 60.0


class Running:
    """A `gateway serve` process whose stderr is read line by line in a thread."""

    def __init__(self, config: Path, port: int, *, new_group: bool = False) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--config", str(config)],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "GATEWAY_PORT": str(port), "PYTHONUNBUFFERED": "1"},
            process_group=0 if new_group else None,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, text: str) -> None:
        """Until a stderr line contains `text` (the process ending first fails the test)."""
        end = time.monotonic() + DEADLINE
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, end - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {text!r} within {DEADLINE}s:\n" + "\n".join(self.seen)) from None
            if line is None:
                raise AssertionError(f"exited {self.proc.wait()} before {text!r}:\n" + "\n".join(self.seen))
            self.seen.append(line)
            if text in line:
                return

    def rest(self) -> str:
        """The stderr lines up to its end (once the process and any child holding it are gone)."""
        end = time.monotonic() + DEADLINE
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, end - time.monotonic()))
            except queue.Empty:
                raise AssertionError("stderr still open (a child process lives on?)") from None
            if line is None:
                return "\n".join(self.seen)
            self.seen.append(line)


def run(*args: str, port: int | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GATEWAY_PORT", "GATEWAY_HOST")}
    if port is not None:
        env["GATEWAY_PORT"] = str(port)
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=DEADLINE,
        env=env,
    )


def test_a_second_gateway_on_the_same_data_dir_exits_2_with_one_line(tmp_path: Path) -> None:
    data_dir = tmp_path / "redis"
    config = tmp_path / "gw.toml"
    config.write_text(f'[redis]\ndata_dir = "{data_dir}"\n')
    port = free_port()
    first = Running(config, port)
    try:
        first.wait_for("Application startup complete")
        # The healthcheck finds the port the gateway was given through GATEWAY_PORT.
        ok = run("healthcheck", "--config", str(config), port=port)
        assert (ok.returncode, ok.stdout.strip()) == (0, f"healthy: http://127.0.0.1:{port}/healthz"), (
            ok.stderr
        )

        second = run("serve", "--config", str(config), port=free_port())
        assert second.returncode == 2, second.stderr
        assert second.stderr.strip() == (
            f"redis error: another gateway process runs the embedded Redis in {data_dir}: give this one "
            "its own redis.data_dir, or set redis.url so that both share one Redis"
        )
        assert second.stdout == ""

        assert run("healthcheck", "--config", str(config), port=port).returncode == 0  # the first lives on
        first.proc.send_signal(signal.SIGTERM)
        assert first.proc.wait(DEADLINE) == -signal.SIGTERM  # ends by the signal, as a supervisor expects
        assert "embedded redis-server stopped" in first.rest()
    finally:
        if first.proc.poll() is None:
            first.proc.kill()
            first.proc.wait()
    with pytest.raises(redis.ConnectionError):  # its redis-server is gone too
        redis.Redis(unix_socket_path=str(data_dir / "redis.sock"), socket_timeout=5).ping()
    down = run("healthcheck", "--config", str(config), port=port)
    assert down.returncode == 1
    assert down.stderr.startswith(f"unhealthy: http://127.0.0.1:{port}/healthz: "), down.stderr


def test_serve_and_healthcheck_refuse_a_bad_gateway_port(tmp_path: Path) -> None:
    config = tmp_path / "gw.toml"
    config.write_text(f'[redis]\ndata_dir = "{tmp_path / "redis"}"\n')
    for command, status in (("serve", 2), ("healthcheck", 1)):  # Docker reserves 2 in health checks
        bad = subprocess.run(
            [sys.executable, "-m", "gateway", command, "--config", str(config)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
            timeout=DEADLINE,
            env={**os.environ, "GATEWAY_PORT": "80a"},
        )
        assert bad.returncode == status
        assert bad.stderr.strip() == "config error: GATEWAY_PORT: must be a port number (0-65535), got '80a'"
    assert not (tmp_path / "redis").exists()  # refused before the embedded Redis started


def test_listen_address_flags_then_environment_then_config(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from_mapping({"server": {"host": "10.0.0.5", "port": 9001}}, env={})
    monkeypatch.delenv("GATEWAY_HOST", raising=False)
    monkeypatch.delenv("GATEWAY_PORT", raising=False)
    assert listen_address(settings) == ("10.0.0.5", 9001)
    monkeypatch.setenv("GATEWAY_HOST", "0.0.0.0")
    monkeypatch.setenv("GATEWAY_PORT", "9100")
    assert listen_address(settings) == ("0.0.0.0", 9100)
    assert listen_address(settings, "127.0.0.1", 9200) == ("127.0.0.1", 9200)
    monkeypatch.setenv("GATEWAY_PORT", " ")
    assert listen_address(settings) == ("0.0.0.0", 9001)


@pytest.mark.parametrize(
    ("host", "probe"),
    [
        ("0.0.0.0", "127.0.0.1"),
        ("", "127.0.0.1"),
        ("::", "[::1]"),
        ("::1", "[::1]"),
        ("10.1.2.3", "10.1.2.3"),
    ],
)
def test_the_healthcheck_reaches_a_wildcard_address_on_loopback(host: str, probe: str) -> None:
    assert _probe_host(host) == probe


def test_the_image_health_check_follows_the_configured_port() -> None:
    """The Dockerfile asks `gateway healthcheck` (same config and environment as `serve`) and
    pins no port on the command line, where the health check could not see it."""
    text = (ROOT / "Dockerfile").read_text()
    instructions = re.sub(r"\\\n", " ", text).splitlines()
    [health] = [line for line in instructions if line.startswith("HEALTHCHECK")]
    assert 'CMD ["gateway", "healthcheck"' in health
    assert "8080" not in health
    [entry] = [line for line in instructions if line.startswith("ENTRYPOINT")]
    assert entry == 'ENTRYPOINT ["gateway", "serve"]'
    assert not [line for line in instructions if line.startswith("CMD") and "--port" in line]


def _redis_log(data_dir: Path) -> str:
    return (data_dir / "redis.log").read_text(errors="replace")


def test_ctrl_c_reaches_the_gateway_which_then_stops_its_redis(tmp_path: Path) -> None:
    """A terminal's Ctrl-C signals the whole foreground process group: the embedded redis-server
    must not get it (it would stop under the gateway's last writes); the gateway stops it."""
    data_dir = tmp_path / "redis"
    config = tmp_path / "gw.toml"
    config.write_text(f'[redis]\ndata_dir = "{data_dir}"\n')
    gateway = Running(config, free_port(), new_group=True)
    try:
        gateway.wait_for("Application startup complete")
        os.killpg(gateway.proc.pid, signal.SIGINT)  # what the terminal does
        gateway.proc.wait(DEADLINE)
        assert "embedded redis-server stopped" in gateway.rest()
    finally:
        if gateway.proc.poll() is None:
            os.killpg(gateway.proc.pid, signal.SIGKILL)
            gateway.proc.wait()
    log = _redis_log(data_dir)
    assert "Received SIGTERM" in log, log
    assert "Received SIGINT" not in log, log


def test_a_killed_gateway_takes_its_redis_with_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "redis"
    config = tmp_path / "gw.toml"
    config.write_text(f'[redis]\ndata_dir = "{data_dir}"\n')
    gateway = Running(config, free_port())
    try:
        gateway.wait_for("Application startup complete")
        client = redis.Redis(unix_socket_path=str(data_dir / "redis.sock"), socket_timeout=5)
        assert client.ping()
        gateway.proc.kill()
        gateway.proc.wait(DEADLINE)

        def gone() -> bool:
            try:
                client.ping()
            except redis.ConnectionError:
                return True
            return False

        poll_until(
            gone,
            deadline=DEADLINE,
            interval=0.05,
            what="the embedded redis-server to go with its killed gateway",
        )
    finally:
        if gateway.proc.poll() is None:
            gateway.proc.kill()
            gateway.proc.wait()
    assert "Received SIGTERM" in _redis_log(data_dir)


def test_a_taken_port_ends_the_gateway_and_its_redis(tmp_path: Path) -> None:
    """uvicorn fails to bind after the app started: the shutdown must not hang (the chat job
    reader's blocking read used to keep it waiting forever) and the embedded Redis stops."""
    import socket

    data_dir = tmp_path / "redis"
    config = tmp_path / "gw.toml"
    config.write_text(f'[redis]\ndata_dir = "{data_dir}"\n')
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("serve", "--config", str(config), "--port", str(port))
    assert result.returncode != 0
    assert "address already in use" in result.stderr
    assert "embedded redis-server stopped" in result.stderr
    with pytest.raises(redis.ConnectionError):
        redis.Redis(unix_socket_path=str(data_dir / "redis.sock"), socket_timeout=5).ping()

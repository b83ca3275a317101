"""``gateway serve | check-config | healthcheck | dev``.

Configuration mistakes exit with status 2 and one line naming the file, the key and the reason;
so does an embedded Redis that cannot start (for example another gateway owns its data_dir).

Where ``serve`` listens: ``--host``/``--port``, else ``GATEWAY_HOST``/``GATEWAY_PORT``, else
``[server]`` in the config. ``healthcheck`` resolves the address the same way, so a container's
``HEALTHCHECK`` follows whatever port the gateway was given. An address that cannot be listened
on is one line and exit status 2 too.

``serve`` runs ``--workers`` (else ``server.workers``, else one per available core) worker
processes on one socket under a supervisor (see :mod:`gateway.server.supervisor`); with one
worker the app runs in the ``serve`` process itself. ``dev`` always runs one.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from types import FrameType
from typing import NoReturn

import msgspec

from gateway.config import ConfigError, Settings, load_settings
from gateway.redis.embedded import EmbeddedRedis, EmbeddedRedisError
from gateway.server.http import HttpLimits
from gateway.server.listen import (
    ListenError,
    bind,
    connection_limit,
    open_file_limit,
    reserve_port,
    worker_count,
)
from gateway.server.memory import use_system_allocator
from gateway.server.supervisor import Supervisor
from gateway.server.worker import serve_worker

EXIT_CONFIG = 2
EXIT_UNHEALTHY = 1

log = logging.getLogger("gateway")


class _Terminated(BaseException):
    """SIGTERM (or Ctrl-C): unwind (the embedded Redis and the fake providers stop), then die of
    the signal."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__(signum)
        self.signum = signum


def _on_sigterm(signum: int, frame: FrameType | None) -> NoReturn:
    raise _Terminated(signum)


def _load(path: str) -> Settings:
    try:
        return load_settings(path)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None


def _fail(kind: str, message: str) -> NoReturn:
    print(f"{kind} error: {message}", file=sys.stderr)
    raise SystemExit(EXIT_CONFIG)


def listen_address(settings: Settings, host: str | None = None, port: int | None = None) -> tuple[str, int]:
    """Flags first, then ``GATEWAY_HOST``/``GATEWAY_PORT``, then ``[server]``."""
    host = host or os.environ.get("GATEWAY_HOST") or settings.server.host
    if port is None:
        raw = os.environ.get("GATEWAY_PORT", "").strip()
        if raw:
            if not raw.isdigit() or int(raw) > 65535:
                _fail("config", f"GATEWAY_PORT: must be a port number (0-65535), got {raw!r}")
            port = int(raw)
        else:
            port = settings.server.port
    if not 0 <= port <= 65535:
        _fail("config", f"--port: must be between 0 and 65535, got {port}")
    return host, port


def start_embedded_redis(settings: Settings) -> tuple[Settings, EmbeddedRedis | None]:
    """Without ``redis.url``: start the embedded server before serving, so that a refusal (another
    gateway owns the data directory, no redis-server, a damaged AOF) is one line and exit status 2
    rather than an ASGI startup traceback. The settings returned point at it."""
    if not settings.redis.embedded:
        return settings, None
    embedded = EmbeddedRedis(settings.redis.data_dir)
    try:
        embedded.start()
    except EmbeddedRedisError as exc:
        _fail("redis", str(exc))
    log.info("embedded redis-server started with data in %s", embedded.data_dir)
    redis = msgspec.structs.replace(settings.redis, url=embedded.url)
    return msgspec.structs.replace(settings, redis=redis), embedded


def serve(
    settings: Settings, *, host: str | None = None, port: int | None = None, workers: int | None = None
) -> None:
    """Serve until SIGTERM or Ctrl-C: the embedded Redis (without ``redis.url``), the listening
    socket, then ``workers`` (default ``server.workers``, else one per available core) worker
    processes under a supervisor, or with one worker the app in this process."""
    host, port = listen_address(settings, host, port)
    count = workers or worker_count(settings)
    limits = HttpLimits.from_settings(
        settings.server, max_connections=connection_limit(settings, open_file_limit())
    )
    settings, embedded = start_embedded_redis(settings)
    try:
        try:
            sock = bind(host, port) if count == 1 else None
            port = sock.getsockname()[1] if sock is not None else reserve_port(host, port)
        except ListenError as exc:
            _fail("server", str(exc))
        log.info("listening on http://%s:%d with %d worker process(es)", _probe_host(host), port, count)
        if sock is not None:
            with sock:
                serve_worker(settings, sock, limits)
        else:
            _supervise(settings, (host, port), limits, count, embedded)
    finally:
        if embedded is not None:
            embedded.stop()  # after the app's shutdown: its last writes are in the AOF
            log.info("embedded redis-server stopped")


def _supervise(
    settings: Settings,
    address: tuple[str, int],
    limits: HttpLimits,
    count: int,
    embedded: EmbeddedRedis | None,
) -> None:
    import gateway.app  # noqa: F401  - imported once here, shared by the forked workers

    gc.collect()
    gc.freeze()  # what the workers inherit stays shared instead of copied by the collector

    def worker(index: int, sock: socket.socket, ready: Callable[[], None]) -> None:
        serve_worker(settings, sock, limits, on_ready=ready, ignore_sigint=True)

    def listen() -> socket.socket:
        return bind(*address, reuse_port=True)

    lock = embedded.lock_fd if embedded is not None else None
    supervisor = Supervisor(
        count,
        worker,
        listen=listen,
        drain_seconds=settings.server.drain_seconds,
        close_in_child=() if lock is None else (lock,),
    )
    ended = supervisor.run()
    if ended.signal is not None:
        raise _Terminated(ended.signal)
    raise SystemExit(ended.status)


def _probe_host(host: str) -> str:
    """Where to reach a server listening on ``host`` from the same machine."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def healthcheck(
    settings: Settings, *, host: str | None = None, port: int | None = None, timeout: float = 2.0
) -> int:
    """``GET /healthz`` on the gateway this configuration (and environment) describes: 0 when it
    answers 200, else 1 with one line on stderr. For a container's ``HEALTHCHECK``."""
    host, port = listen_address(settings, host, port)
    url = f"http://{_probe_host(host)}:{port}/healthz"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    try:
        with opener.open(url, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        print(f"unhealthy: {url}: {reason}", file=sys.stderr)
        return EXIT_UNHEALTHY
    if status != 200:
        print(f"unhealthy: {url}: status {status}", file=sys.stderr)
        return EXIT_UNHEALTHY
    print(f"healthy: {url}")
    return 0


def _wait_port(host: str, port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the fake providers exited with status {proc.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"the fake providers did not listen on {host}:{port} within {timeout}s")


def dev(settings: Settings, fake_port: int) -> None:
    """The fake providers (child process) and the gateway (this process), for trying it out."""
    fake = subprocess.Popen(
        [sys.executable, "-m", "fake_providers", "--host", "127.0.0.1", "--port", str(fake_port)],
        stdin=subprocess.DEVNULL,
    )
    try:
        _wait_port("127.0.0.1", fake_port, fake)
        key = next((k.key for k in settings.auth.keys if k.key), "<your gateway key>")
        host, port = listen_address(settings)
        base = f"http://{_probe_host(host)}:{port}/v1"
        model = settings.models[0].name if settings.models else "<model>"
        print(
            f"""
  fake providers: http://127.0.0.1:{fake_port}   (faults: model names like fault-429, see README)
  gateway:        {base}
  gateway key:    {key}

  from openai import OpenAI
  client = OpenAI(base_url="{base}", api_key="{key}")
  print(client.chat.completions.create(model="{model}",
        messages=[{{"role": "user", "content": "Hello!"}}]).choices[0].message.content)

  Ctrl-C stops everything.
""",
            flush=True,
        )
        serve(settings, host=host, port=port, workers=1)
    finally:
        if fake.poll() is None:
            fake.send_signal(signal.SIGINT)
            try:
                fake.wait(10)
            except subprocess.TimeoutExpired:
                fake.kill()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="gateway", description="An OpenAI-compatible LLM gateway.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_serve = sub.add_parser("serve", help="run the gateway")
    p_serve.add_argument("--config", default=os.environ.get("GATEWAY_CONFIG", "config.toml"))
    p_serve.add_argument("--host", help="default: $GATEWAY_HOST, else server.host")
    p_serve.add_argument("--port", type=int, help="default: $GATEWAY_PORT, else server.port")
    p_serve.add_argument(
        "--workers", type=int, help="worker processes (default: server.workers, else one per available core)"
    )
    p_check = sub.add_parser("check-config", help="validate a configuration file and exit")
    p_check.add_argument("path")
    p_health = sub.add_parser(
        "healthcheck", help="exit 0 when the gateway `serve` would run with the same config answers /healthz"
    )
    p_health.add_argument("--config", default=os.environ.get("GATEWAY_CONFIG", "config.toml"))
    p_health.add_argument("--host", help="default: $GATEWAY_HOST, else server.host")
    p_health.add_argument("--port", type=int, help="default: $GATEWAY_PORT, else server.port")
    p_health.add_argument("--timeout", type=float, default=2.0, help="seconds (default 2)")
    p_dev = sub.add_parser("dev", help="run the fake providers and the gateway together")
    p_dev.add_argument("--config", default="config.example.toml")
    p_dev.add_argument("--fake-port", type=int, default=int(os.environ.get("FAKE_PROVIDERS_PORT", "9100")))
    args = parser.parse_args(argv)
    if args.command == "serve" and argv is None:
        use_system_allocator()  # may start this process again, on the C allocator
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per upstream request is too costly

    if args.command == "check-config":
        settings = _load(args.path)
        print(
            f"{args.path}: ok ({len(settings.providers)} providers, {len(settings.models)} model deployments, "
            f"{len(settings.auth.keys)} keys)"
        )
        return
    if args.command == "healthcheck":
        # Docker reserves exit status 2: a health check exits 0 or 1, whatever went wrong.
        try:
            code = healthcheck(_load(args.config), host=args.host, port=args.port, timeout=args.timeout)
        except SystemExit as exc:
            code = EXIT_UNHEALTHY if exc.code else 0
        raise SystemExit(code)
    settings = _load(args.config)
    # SIGTERM unwinds like Ctrl-C (the embedded Redis and the fakes stop), then ends the process
    # by the signal as before. uvicorn restores this handler when it re-raises the signal.
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        if args.command == "serve":
            if args.workers is not None and args.workers < 1:
                _fail("config", f"--workers: must be at least 1, got {args.workers}")
            serve(settings, host=args.host, port=args.port, workers=args.workers)
        else:
            dev(settings, args.fake_port)
    except (_Terminated, KeyboardInterrupt) as exc:
        signum = exc.signum if isinstance(exc, _Terminated) else signal.SIGINT
        atexit._run_exitfuncs()  # what a normal exit runs: queued log records are written
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)
    finally:
        signal.signal(signal.SIGTERM, previous)

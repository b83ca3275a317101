"""``gateway serve | check-config | dev``.

Configuration mistakes exit with status 2 and one line naming the file, the key and the reason.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence

from gateway.config import ConfigError, Settings, load_settings

EXIT_CONFIG = 2


def _load(path: str) -> Settings:
    try:
        return load_settings(path)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None


def serve(settings: Settings, *, host: str | None = None, port: int | None = None) -> None:
    import uvicorn

    from gateway.app import create_app

    # The app's long-lived objects (modules, settings, routes) need no cycle collection: freeze
    # them, and collect young garbage less often (fewer stop-the-world pauses under load).
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)
    uvicorn.run(
        create_app(settings),
        host=host or settings.server.host,
        port=port if port is not None else settings.server.port,
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="info",
        timeout_graceful_shutdown=10,
    )


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
        base = f"http://{settings.server.host}:{settings.server.port}/v1"
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
        serve(settings)
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
    p_serve.add_argument("--host")
    p_serve.add_argument("--port", type=int)
    p_check = sub.add_parser("check-config", help="validate a configuration file and exit")
    p_check.add_argument("path")
    p_dev = sub.add_parser("dev", help="run the fake providers and the gateway together")
    p_dev.add_argument("--config", default="config.example.toml")
    p_dev.add_argument("--fake-port", type=int, default=int(os.environ.get("FAKE_PROVIDERS_PORT", "9100")))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per upstream request is too costly

    if args.command == "check-config":
        settings = _load(args.path)
        print(
            f"{args.path}: ok ({len(settings.providers)} providers, {len(settings.models)} model deployments, "
            f"{len(settings.auth.keys)} keys)"
        )
        return
    settings = _load(args.config)
    if args.command == "serve":
        serve(settings, host=args.host, port=args.port)
    else:
        dev(settings, args.fake_port)

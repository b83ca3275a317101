"""`serve` runs any ASGI app on a real socket; `FakeProviders` wraps the fakes; the CLI serves them too."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from fake_providers import FakeOptions
from fake_providers.connection import CONNECTION_EXTENSION
from fake_providers.testing import FakeProviders, ServedApp, serve
from gateway.testing import poll_until


async def tiny_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    controlled = CONNECTION_EXTENSION in (scope.get("extensions") or {})
    body = f"{scope['path']} controlled={controlled}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


def refuses_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return False
    except OSError:
        return True


def test_serve_runs_any_asgi_app_and_stops() -> None:
    with serve(tiny_app) as served:
        assert isinstance(served, ServedApp)
        assert served.base_url == f"http://127.0.0.1:{served.port}"
        assert httpx.get(served.base_url + "/hello").text == "/hello controlled=True"
        port = served.port
    assert refuses_connections(port)


async def test_serve_works_from_async_code() -> None:
    async with serve(tiny_app) as served, httpx.AsyncClient(base_url=served.base_url) as http:
        assert (await http.get("/async")).text == "/async controlled=True"


def test_serve_on_a_chosen_port() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with serve(tiny_app, port=port) as served:
        assert served.port == port
        assert httpx.get(f"http://127.0.0.1:{port}/x").status_code == 200


def test_stopping_ends_hanging_answers() -> None:
    providers = FakeProviders()
    providers.start()
    with httpx.Client(base_url=providers.base_url, timeout=httpx.Timeout(10.0)) as http:
        chat = {"model": "fault-silence", "messages": [{"role": "user", "content": "x"}], "stream": True}
        with http.stream("POST", "/openai/v1/chat/completions", json=chat) as response:
            assert response.status_code == 200
            started = time.monotonic()
            providers.stop()
            assert time.monotonic() - started < 5
            with pytest.raises(httpx.HTTPError):
                response.read()


def test_fake_providers_urls() -> None:
    with FakeProviders(FakeOptions(seed=1)) as providers:
        assert providers.openai_base_url == providers.base_url + "/openai/v1"
        assert providers.anthropic_base_url == providers.base_url + "/anthropic"
        assert providers.url("/vllm/v1/models") == providers.base_url + "/vllm/v1/models"
        assert providers.app.state["fake_providers"].options.seed == 1
        assert providers.status() == {
            "active_replies": 0,
            "journal_size": 0,
            "last_seq": 0,
            "queued_steps": 0,
        }


def test_the_command_line_serves_the_fakes(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        sys.executable,
        "-m",
        "fake_providers",
        "--port",
        str(port),
        "--seed",
        "5",
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(command, cwd=tmp_path, env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:

        def accepting() -> bool:
            assert process.poll() is None, "the server exited"
            return not refuses_connections(port)

        poll_until(accepting, deadline=20, interval=0.05, what="the server to start")
        response = httpx.post(
            f"http://127.0.0.1:{port}/openai/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "cli"}]},
        )
        assert response.json()["choices"][0]["message"]["content"] == "You said: cli"
        assert response.json()["created"] == 1735689600
        with pytest.raises(httpx.TransportError):
            httpx.post(
                f"http://127.0.0.1:{port}/openai/v1/chat/completions",
                json={"model": "fault-reset", "messages": [{"role": "user", "content": "x"}]},
            )
    finally:
        process.terminate()
        process.wait(timeout=10)

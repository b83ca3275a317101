"""SIGTERM with 20 streams open on a real gateway process (``drain_seconds = 2``).

Sixteen streams hang after their first chunks (the fake's ``stall`` fault: nothing more until
the client goes away), far longer than the drain; four are paced by the fakes' manual clock,
which the test lets run once the signal is sent, so they finish within the drain. Chat
Completions, Responses (stored) and Anthropic Messages clients, all streaming.

Every client gets either its whole stream or, at the end of the drain, its dialect's in-band
error and a proper end (and a request whose answer had not started, a 503) (Chat: ``data: {"error": ...}``; Responses: ``error`` then
``response.failed``; Messages: ``event: error``) — never a bare cut. Every Responses id a client
saw is retrievable afterwards, from a new gateway process on the same Redis: completed for a
whole stream, failed (with the text produced before the end) for one the drain ended.
"""

from __future__ import annotations

import json
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from fake_providers.clock import FIRST_PART, GAP
from fake_providers.testing import FakeProviders
from gateway.clock import ManualClock
from gateway.services import SHUTDOWN_MESSAGE
from gateway.testing import GATEWAY_KEY, AutoAdvance, base_config, poll_until
from tests.integration.chats.test_replicas import Replica, start, to_toml, wait_healthy

DRAIN = 2.0
STALL = "fault-stall-2"  # two chunks, then nothing until the client goes away
SLOW = "fault-slow-100ms-100ms"  # every part waits on the fakes' clock
MSG = [{"role": "user", "content": "tell me a story"}]


@dataclass
class Client:
    """One streaming client, read on its own thread."""

    api: str  # chat, responses, messages
    model: str
    root: str
    first: threading.Event = field(default_factory=threading.Event)
    body: bytes = b""
    error: str = ""  # how the read ended, if not cleanly
    thread: threading.Thread | None = None

    def request(self) -> tuple[str, dict[str, Any]]:
        if self.api == "chat":
            return "/v1/chat/completions", {"model": self.model, "messages": MSG, "stream": True}
        if self.api == "responses":
            return "/v1/responses", {
                "model": self.model,
                "input": "tell me a story",
                "stream": True,
                "store": True,
            }
        return "/v1/messages", {"model": self.model, "messages": MSG, "max_tokens": 100, "stream": True}

    def run(self) -> None:
        path, payload = self.request()
        headers = {"authorization": f"Bearer {GATEWAY_KEY}", "anthropic-version": "2023-06-01"}
        try:
            with (
                httpx.Client(base_url=self.root, timeout=60) as http,
                http.stream("POST", path, json=payload, headers=headers) as answer,
            ):
                assert answer.status_code == 200, answer.read()
                for chunk in answer.iter_raw():
                    self.body += chunk
                    self.first.set()
        except Exception as exc:  # a cut: the connection closed before the chunked body's end
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.first.set()

    def start(self) -> None:
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def events(self) -> list[dict[str, Any]]:
        """The JSON payloads of the stream's ``data:`` lines (``[DONE]`` left out)."""
        out = []
        for line in self.body.decode().splitlines():
            if line.startswith("data: ") and line != "data: [DONE]":
                out.append(json.loads(line[6:]))
        return out

    def response_id(self) -> str | None:
        for event in self.events():
            if event.get("type") == "response.created":
                return str(event["response"]["id"])
        return None


def ended_in_band(client: Client) -> bool:
    """The dialect's in-band error for the shutdown, then the stream's proper end."""
    events = client.events()
    text = client.body.decode()
    if client.api == "chat":
        errors = [e for e in events if "error" in e]
        return (
            len(errors) == 1
            and errors[0]["error"]["message"] == SHUTDOWN_MESSAGE
            and errors[0]["error"]["retryable"] is True
            and text.endswith("\n\n")
        )
    if client.api == "responses":
        kinds = [e.get("type") for e in events]
        return (
            kinds[-2:] == ["error", "response.failed"]
            and events[-2]["message"] == SHUTDOWN_MESSAGE
            and events[-1]["response"]["status"] == "failed"
        )
    errors = [e for e in events if e.get("type") == "error"]
    return "event: error" in text and len(errors) == 1 and SHUTDOWN_MESSAGE in json.dumps(errors[0])


def whole(client: Client) -> bool:
    events = client.events()
    if client.api == "chat":
        return client.body.decode().rstrip().endswith("data: [DONE]") and not any(
            "error" in e for e in events
        )
    if client.api == "responses":
        return bool(events) and events[-1].get("type") == "response.completed"
    return bool(events) and events[-1].get("type") == "message_stop"


@pytest.fixture
def config_path(fake: FakeProviders, redis_url: str, tmp_path: Path) -> Path:
    config = base_config(fake, redis_url)
    config["models"] = [
        *config["models"],
        {"name": "stall", "provider": "fake-openai", "upstream_model": STALL},
        {"name": "slow", "provider": "fake-openai", "upstream_model": SLOW},
        {"name": "silent", "provider": "fake-openai", "upstream_model": "fault-silence"},
    ]
    config["server"] = {"models_refresh_seconds": 3600, "workers": 1, "drain_seconds": DRAIN}
    path = tmp_path / "gateway.toml"
    path.write_text(to_toml(config), encoding="utf-8")
    return path


def test_sigterm_ends_every_stream_whole_or_in_band_and_records_every_response(
    config_path: Path, fake: FakeProviders, fake_clock: ManualClock, tmp_path: Path
) -> None:
    gw = start("drained", config_path, tmp_path)
    replica: Replica | None = None
    try:
        wait_healthy(gw, deadline=30)
        stalled = [
            Client(api, "stall", gw.root) for api in ["chat"] * 6 + ["responses"] * 6 + ["messages"] * 4
        ]
        slow = [Client(api, "slow", gw.root) for api in ("chat", "chat", "responses", "responses")]
        for client in stalled + slow:
            client.start()
        for client in stalled:  # committed: the first chunks are through
            assert client.first.wait(30), client.api
        # Two answers not started yet: their upstream sent headers and nothing more.
        waiting: list[httpx.Response] = []

        def unstarted() -> None:
            with httpx.Client(base_url=gw.root, timeout=60) as http:
                waiting.append(
                    http.post(
                        "/v1/chat/completions",
                        json={"model": "silent", "messages": MSG},
                        headers={"authorization": f"Bearer {GATEWAY_KEY}"},
                    )
                )

        plain = [threading.Thread(target=unstarted, daemon=True) for _ in range(2)]
        for thread in plain:
            thread.start()

        def silent_upstream() -> bool:
            sent = fake.requests(path="/openai/v1/chat/completions")
            return sum(1 for r in sent if r.body.get("model") == "fault-silence") == 2

        poll_until(silent_upstream, what="both answers waiting on their upstream")
        poll_until(lambda: len(fake_clock.pending(FIRST_PART)) == len(slow), what="the slow answers waiting")

        gw.proc.send_signal(signal.SIGTERM)
        with AutoAdvance(fake_clock, FIRST_PART, GAP):  # the slow ones finish within the drain
            for client in stalled + slow:
                assert client.thread is not None
                client.thread.join(DRAIN + 30)
                assert not client.thread.is_alive(), client.api
        for thread in plain:
            thread.join(DRAIN + 30)
        assert gw.proc.wait(30) is not None
        assert [r.status_code for r in waiting] == [503, 503]
        for answer in waiting:
            assert answer.json()["error"]["message"] == SHUTDOWN_MESSAGE
            assert answer.headers["retry-after"] == "1"

        for client in slow:
            assert not client.error, (client.api, client.error, client.body[-300:])
            assert whole(client), (client.api, client.body[-300:])
        for client in stalled:
            assert not client.error, (client.api, client.error, client.body[-300:])
            assert ended_in_band(client), (client.api, client.body[-400:])

        # Every Responses id a client saw is stored: a new process on the same Redis reads it.
        seen = {c.response_id(): c for c in stalled + slow if c.api == "responses"}
        assert None not in seen and len(seen) == 8
        replica = start("after", config_path, tmp_path)
        wait_healthy(replica, deadline=30)
        with httpx.Client(
            base_url=replica.root, headers={"authorization": f"Bearer {GATEWAY_KEY}"}, timeout=10
        ) as http:
            for response_id, client in seen.items():
                stored = http.get(f"/v1/responses/{response_id}")
                assert stored.status_code == 200, (response_id, stored.text)
                record = stored.json()
                if client.model == "slow":
                    assert record["status"] == "completed"
                else:
                    assert record["status"] == "failed"
                    assert record["error"]["message"] == SHUTDOWN_MESSAGE
                    # with what the stream had produced before the drain ended it
                    text = [p["text"] for item in record["output"] for p in item.get("content", [])]
                    assert "".join(text).startswith("You"), record["output"]
    except BaseException:
        print(gw.tails(80))
        raise
    finally:
        for process in (gw, replica):
            if process is not None and process.proc.poll() is None:
                process.proc.kill()
                process.proc.wait(5)

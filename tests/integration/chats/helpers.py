"""Helpers for the chat API tests: an HTTP client with the gateway key, SSE reading, polling."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

from gateway.testing import GATEWAY_KEY, RunningGateway, poll_until

T = TypeVar("T")
DEADLINE = 10.0


def client(gw: RunningGateway[Any], key: str = GATEWAY_KEY) -> httpx.Client:
    return httpx.Client(
        base_url=gw.root_url + "/api/v1/chats", headers={"authorization": f"Bearer {key}"}, timeout=10
    )


def poll(check: Callable[[], T | None], *, what: str, deadline: float = DEADLINE) -> T:
    """``check()``'s first value other than None or False, within ``deadline`` real seconds."""
    return poll_until(check, what=what, deadline=deadline)


def wait_status(c: httpx.Client, chat_id: str, status: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        chat: dict[str, Any] = c.get(f"/{chat_id}").json()
        return chat if chat["status"] == status else None

    return poll(check, what=f"status {status}")


def read_events(
    c: httpx.Client,
    chat_id: str,
    until: Callable[[list[dict[str, Any]]], bool],
    last_event_id: str | None = None,
) -> list[dict[str, Any]]:
    """Read the chat's SSE stream until ``until(events)``; each event has ``id``, ``event``, ``data``."""
    headers = {"last-event-id": last_event_id} if last_event_id else {}
    events: list[dict[str, Any]] = []
    end = time.monotonic() + DEADLINE
    with c.stream("GET", f"/{chat_id}/stream", headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        block: dict[str, Any] = {}
        for line in response.iter_lines():
            if time.monotonic() > end:
                raise AssertionError(f"timed out; events so far: {[e['event'] for e in events]}")
            if not line:
                if "data" in block:
                    block["data"] = json.loads(block["data"])
                    events.append(block)
                    if until(events):
                        return events
                block = {}
                continue
            if line.startswith(":"):
                continue
            field, _, value = line.partition(": ")
            block[field] = value
    raise AssertionError("stream ended")

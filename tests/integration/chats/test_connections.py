"""Open chat streams hold no Redis connection of the request path; shutdown closes them all.

A gateway with a command pool of 3 connections serves more open ``/stream`` followers than that
(and running turns' watchers): every stream is followed by the process's one shared event reader
on the blocking client, so chat completions (with policy admission), the Responses store and the
chat API itself are still answered, and every stream still receives its chat's events.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import httpx
import redis

from gateway.clock import ManualClock
from gateway.config import settings_from_mapping
from gateway.testing import redis_server, serve_gateway
from tests.conftest import GATEWAY_KEY, GatewayFactory, RunningGateway, base_config
from tests.integration.chats.helpers import DEADLINE, client, poll, wait_status

POOL = 3
STREAMS = 8  # more than the pool


def gateway_connections(r: redis.Redis) -> dict[str, int]:
    """Open connections by client name (the gateway names its two pools)."""
    counts: dict[str, int] = {}
    for c in r.client_list():
        counts[c["name"]] = counts.get(c["name"], 0) + 1
    return counts


class SseReader:
    """One open chat stream: frames as the client receives them, read on demand."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.aiter_lines()
        self.frames: list[dict[str, Any]] = []

    async def until(self, done: Any) -> dict[str, Any]:
        block: dict[str, str] = {}
        async with asyncio.timeout(DEADLINE):
            async for line in self.lines:
                if line.startswith(":"):
                    continue
                if line:
                    field, _, value = line.partition(": ")
                    block[field] = value
                    continue
                if "data" in block:
                    frame = {
                        "id": block.get("id"),
                        "event": block["event"],
                        "data": json.loads(block["data"]),
                    }
                    self.frames.append(frame)
                    if done(frame):
                        return frame
                block = {}
        raise AssertionError(f"stream ended; frames: {[f['event'] for f in self.frames]}")


def test_more_open_streams_than_redis_connections_leave_every_request_answered(
    gateway_factory: GatewayFactory, fake: Any, redis_url: str, redis_sync: redis.Redis
) -> None:
    config = base_config(fake, redis_url)
    config["redis"] |= {"max_connections": POOL, "pool_timeout_seconds": 5.0}
    config["auth"]["keys"][0]["limits"] = {"rpm": 10_000}
    gw: RunningGateway = gateway_factory(config)
    chat_ids = []
    with client(gw) as c:
        for i in range(STREAMS):
            created = c.post("", json={"model": "gpt-4o-mini", "message": f"Hello {i}"})
            assert created.status_code == 201, created.text
            chat_ids.append(created.json()["id"])
        for chat_id in chat_ids:
            wait_status(c, chat_id, "waiting")

    headers = {"authorization": f"Bearer {GATEWAY_KEY}"}

    async def run() -> None:
        async with contextlib.AsyncExitStack() as stack:
            http = await stack.enter_async_context(
                httpx.AsyncClient(base_url=gw.root_url, headers=headers, timeout=DEADLINE)
            )
            streams: dict[str, SseReader] = {}
            for chat_id in chat_ids:
                response = await stack.enter_async_context(
                    http.stream("GET", f"/api/v1/chats/{chat_id}/stream")
                )
                assert response.status_code == 200
                streams[chat_id] = SseReader(response)
            # Every stream is live (its snapshot read) and waiting for events.
            for reader in streams.values():
                await reader.until(lambda f: f["event"] == "queue_update")
            assert len(streams) > POOL

            # The request path still has its connections: a chat completion through policy
            # admission (rate-limit headers), a stored Response read back, the chat API.
            completion = await http.post(
                "/v1/chat/completions",
                json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]},
            )
            assert completion.status_code == 200, completion.text
            assert completion.json()["choices"][0]["message"]["content"]
            assert completion.headers["x-ratelimit-limit-requests"] == "10000"
            created = await http.post("/v1/responses", json={"model": "gpt-4o-mini", "input": "Hi"})
            assert created.status_code == 200, created.text
            stored = await http.get(f"/v1/responses/{created.json()['id']}")
            assert stored.status_code == 200, stored.text
            assert stored.json()["id"] == created.json()["id"]
            listed = await http.get("/api/v1/chats")
            assert listed.status_code == 200
            assert {c["id"] for c in listed.json()["chats"]} >= set(chat_ids)

            # Every stream receives its own chat's next turn, while all stay open.
            for i, chat_id in enumerate(chat_ids):
                sent = await http.post(f"/api/v1/chats/{chat_id}/messages", json={"message": f"Again {i}"})
                assert sent.status_code == 200, sent.text
            for chat_id, reader in streams.items():
                user = await reader.until(
                    lambda f: f["event"] == "message" and f["data"]["message"]["role"] == "user"
                )
                assert user["data"]["chat_id"] == chat_id
                assert user["id"] is not None
                answer = await reader.until(
                    lambda f: f["event"] == "message" and f["data"]["message"]["role"] == "assistant"
                )
                assert answer["data"]["chat_id"] == chat_id
                assert all(f["data"]["chat_id"] == chat_id for f in reader.frames)
                await reader.until(
                    lambda f: f["event"] == "status" and f["data"]["status"]["status"] == "waiting"
                )

            # The gateway never had more connections than its two pools allow.
            named = gateway_connections(redis_sync)
            assert named.get("gateway", 0) <= POOL
            assert 1 <= named.get("gateway-blocking", 0) <= 2

    asyncio.run(run())

    # The streams are closed: the reader follows nothing and the requests still work.
    with client(gw) as c:
        assert c.get(f"/{chat_ids[0]}").status_code == 200
        poll(lambda: gw_streams_idle(redis_sync), what="the shared reader to stop reading streams")


def gw_streams_idle(r: redis.Redis) -> bool:
    """The blocking connection is no longer in an XREAD over chat streams (it has none to read)."""
    return not any(
        c["name"] == "gateway-blocking" and c["cmd"] == "xread" and "b" in c["flags"] for c in r.client_list()
    )


def test_shutdown_with_streams_open_closes_every_redis_connection(
    fake: Any, redis_url: str, redis_sync: redis.Redis
) -> None:
    settings = settings_from_mapping(base_config(fake, redis_url), source="<test>")
    newest: Any = max(c["id"] for c in redis_sync.client_list())

    def ours() -> list[dict[str, Any]]:
        """The gateway's connections (named by its two pools) opened since it started."""
        return [
            c
            for c in redis_sync.client_list()
            if int(c["id"]) > int(newest) and c["name"] in ("gateway", "gateway-blocking")
        ]

    server = serve_gateway(settings, clock=ManualClock(), graceful_shutdown=0)
    try:
        gw = server.start()
        with client(gw) as c:
            chat_ids = [
                c.post("", json={"model": "gpt-4o-mini", "message": f"Hi {i}"}).json()["id"] for i in range(3)
            ]
            for chat_id in chat_ids:
                wait_status(c, chat_id, "waiting")
            with contextlib.ExitStack() as stack:
                for chat_id in chat_ids:
                    response = stack.enter_context(c.stream("GET", f"/{chat_id}/stream"))
                    lines = response.iter_lines()
                    poll(
                        lambda lines=lines: next(lines).startswith("event: queue_update"), what="the snapshot"
                    )
                wake: Any = [k for k in redis_sync.keys(f"{settings.redis.key_prefix}chats:wake:*")]
                assert {c["name"] for c in ours()} == {"gateway", "gateway-blocking"}
                server.stop()
        # The event reader, the job reader and the command pool are all closed, and the
        # reader's wake stream (if it was ever needed) is gone.
        poll(lambda: ours() == [], what="the gateway's connections to close")
        assert all(redis_sync.exists(k) == 0 for k in wake)
    finally:
        server.stop()


def test_a_stream_refused_while_redis_is_down_is_a_json_503_before_any_event(
    gateway_factory: GatewayFactory, fake: Any, tmp_path: Any
) -> None:
    with redis_server(str(tmp_path / "redis")) as server:
        gw = gateway_factory(base_config(fake, server.url))
        with client(gw) as c:
            chat_id = c.post("", json={"model": "gpt-4o-mini", "message": "Hi"}).json()["id"]
            wait_status(c, chat_id, "waiting")
            server.stop()
            response = c.get(f"/{chat_id}/stream")
            assert response.status_code == 503
            assert response.headers["content-type"].startswith("application/json")
            assert response.json() == {"message": "Chat storage is unavailable."}

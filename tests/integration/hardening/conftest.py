"""One gateway for the hardening tests, as hostile clients meet it: the policy on (an admin-created
key with request, token and concurrency limits and a budget, so an admission writes to Redis),
the admin API, a Claude model (requests translated to Anthropic's API), a model with a small
context window, the Anthropic Messages ingress and every other route the app serves.

:class:`Hardened` holds what the tests check after each request: the answer is no 5xx and in the
route's own error shape, no traceback reached the logs, and a refused request left Redis as it
was (every key under the gateway's prefix, byte for byte).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import redis

from fake_providers.clock import RealClock as FakeRealClock
from fake_providers.testing import FakeProviders
from gateway.api.hot_routes import GatewayApp
from gateway.clock import ManualClock
from gateway.testing import GATEWAY_KEY, RunningGateway, add_anthropic, base_config, poll_until, serve_gateway

ADMIN = "admin-key-hardening-0123456789"
TINY_WINDOW = 200  # tokens: a prompt of a few kilobytes does not fit
PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")


def hardened_config(fake: FakeProviders, redis_url: str) -> dict[str, Any]:
    config = add_anthropic(base_config(fake, redis_url), fake)
    config["models"].append({"name": "tiny", "provider": "fake-openai", "context_window": TINY_WINDOW})
    config["admin"] = {"keys": [{"name": "ops", "key": ADMIN}]}
    config["policy"] = {"time_source": "clock"}
    return config


@dataclass
class Hardened:
    gw: RunningGateway[ManualClock]
    fake: FakeProviders
    redis: redis.Redis
    key: str  # an admin-created key with limits and a budget
    kid: str
    prefix: str
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.gw.root_url, timeout=30.0)

    @property
    def app(self) -> GatewayApp:
        return self.gw.app

    # -- Redis -------------------------------------------------------------------------------
    def snapshot(self) -> dict[bytes, bytes | None]:
        """Every key under the gateway's prefix and its serialized value (TTLs aside)."""
        keys = sorted(self.redis.scan_iter(match=self.prefix + "*", count=1000))
        pipe = self.redis.pipeline(transaction=False)
        for key in keys:
            pipe.dump(key)
        return dict(zip(keys, pipe.execute(), strict=True))

    def usage_events(self) -> int:
        return int(self.redis.xlen(self.prefix + "usage"))

    def settled(self, expected: int) -> None:
        """Wait until the settler has written ``expected`` usage events in all (and no more)."""
        poll_until(lambda: self.usage_events() >= expected or None, deadline=10)
        assert self.usage_events() == expected

    def upstream_calls(self) -> int:
        """Requests the fake got, but the model catalog's reads (made in the background)."""
        return sum(1 for entry in self.fake.requests() if not entry.path.endswith("/models"))

    # -- requests ------------------------------------------------------------------------------
    def send(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        key: str | None = "",
        headers: dict[str, str] | None = None,
        params: Any = None,
    ) -> httpx.Response:
        """One request with the limited key (``key=None``: none), as raw as given."""
        sent = dict(headers or {})
        if key is not None:
            sent.setdefault("authorization", f"Bearer {key or self.key}")
        if content is not None:
            sent.setdefault("content-type", "application/json")
        return self.http.request(method, path, content=content, headers=raw_headers(sent), params=params)


def raw_headers(headers: dict[str, str]) -> dict[str, bytes]:
    """Header values as UTF-8 bytes: a hostile client sends what it likes, not only ASCII."""
    return {name: value.encode() for name, value in headers.items()}


def concrete(path: str, value: str = "x0") -> str:
    """A route's path with every parameter filled in."""
    return PARAM.sub(value, path)


def served_routes(app: GatewayApp) -> list[tuple[str, tuple[str, ...]]]:
    """Every (path template, methods) the app serves: the hot routes (POST) and Litestar's routes
    (an ASGI route declares no methods: every usual one is tried)."""
    routes: dict[str, set[str]] = {path: {"POST"} for path in app._routes}
    for route in app.litestar.routes:
        methods = {m for m in getattr(route, "methods", ()) if m not in ("OPTIONS", "HEAD")}
        routes.setdefault(route.path, set()).update(methods or {"GET", "POST", "DELETE"})
    return sorted((path, tuple(sorted(methods))) for path, methods in routes.items())


def error_shape(path: str, response: httpx.Response) -> str | None:
    """What is wrong with an error answer's shape for its route (None: nothing)."""
    if response.status_code < 400 or (response.status_code == 404 and path == "/metrics"):
        return None
    try:
        body = response.json()
    except ValueError:
        return f"not JSON: {response.text[:200]!r}"
    if not isinstance(body, dict):
        return f"not an object: {body!r}"
    if path.startswith("/api/v1/chats"):
        return None if isinstance(body.get("message"), str) else f"no chat error message: {body}"
    if path.startswith("/v1/messages"):
        error = body.get("error")
        ok = body.get("type") == "error" and isinstance(error, dict) and isinstance(error.get("message"), str)
        return None if ok else f"not Anthropic's error shape: {body}"
    error = body.get("error")
    if not isinstance(error, dict) or not {"message", "type", "param", "code"} <= set(error):
        return f"not OpenAI's error shape: {body}"
    return None


def tracebacks(records: list[logging.LogRecord]) -> list[str]:
    """Log records that carry a traceback or report an unhandled error."""
    return [
        f"{r.name}: {r.getMessage()}"
        for r in records
        if r.exc_info or r.exc_text or "Traceback" in r.getMessage() or "unhandled" in r.getMessage()
    ]


@pytest.fixture(scope="module")
def hardened(fake_session: FakeProviders, redis_url: str) -> Iterator[Hardened]:
    fake_session.reset()
    fake_session.clock = FakeRealClock()
    config = hardened_config(fake_session, redis_url)
    with serve_gateway(config, clock=ManualClock()) as gw:
        created = httpx.post(
            gw.root_url + "/admin/v1/keys",
            headers={"authorization": f"Bearer {ADMIN}"},
            json={
                "alias": "hostile",
                "limits": {"rpm": 100_000, "tpm": 100_000_000, "max_concurrency": 100},
                "budgets": [{"window": "day", "limit_usd": 1000}],
            },
        )
        assert created.status_code == 201, created.text
        client = redis.Redis.from_url(redis_url)
        try:
            yield Hardened(
                gw=gw,
                fake=fake_session,
                redis=client,
                key=created.json()["key"],
                kid=created.json()["id"],
                prefix=config["redis"]["key_prefix"],
            )
        finally:
            client.close()


__all__ = [
    "ADMIN",
    "GATEWAY_KEY",
    "Hardened",
    "concrete",
    "error_shape",
    "raw_headers",
    "served_routes",
    "tracebacks",
]

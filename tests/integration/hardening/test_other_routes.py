"""Bad input on every route Litestar serves (listings, Responses reads, chats, admin, health,
metrics, and the other methods of the proxy paths): odd path parameters, query values of the
wrong kind, malformed bodies, hostile headers. Never a 5xx, never a traceback, errors in the
route's own shape, and a refused write leaves Redis as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import pytest

from gateway.testing import base_config, poll_until, redis_server, serve_gateway
from tests.integration.hardening.conftest import (
    ADMIN,
    Hardened,
    concrete,
    error_shape,
    raw_headers,
    served_routes,
    tracebacks,
)

_ENC = msgspec.json.Encoder()
PATH_VALUES = ["x0", "%00", "%FF", "%C2%B2", "a" * 3000, "..%2F..%2Fadmin", "%E2%80%AE", "resp_" + "0" * 60]
ODD = ["\u00b2", "9" * 5000, "-1", "\x00", "[]", "\u202e"]
QUERY_NAMES = [
    "limit",
    "after",
    "order",
    "after_id",
    "before_id",
    "cursor",
    "stream",
    "from",
    "to",
    "group_by",
]
BODIES: list[tuple[str, bytes]] = [
    ("truncated", b'{"model": '),
    ("array", b"[]"),
    ("number", b"1"),
    ("invalid utf-8", b'{"a": "\xff"}'),
    ("nested 1,000", b"[" * 1000 + b"]" * 1000),
    ("nested 5,000 in a field", b'{"message": ' + b"[" * 5000 + b"]" * 5000 + b"}"),
    ("integer of 5,000 digits", b'{"limit": ' + b"9" * 5000 + b"}"),
    ("float overflow", b'{"grace_seconds": 1e400}'),
    ("wrong types", b'{"model": 1, "message": [], "results": "x", "alias": {}, "id": null}'),
]


# Every request on these routes that is not refused is admitted and settled (a usage event, the
# key's counters): a write even when its method is GET.
METERED = ("/v1/files", "/v1/batches")


def settled(hardened: Hardened, path: str, count: int) -> None:
    """Wait until the ``count`` settlements of ``path`` (written after the answer) are in Redis."""
    endpoint = path.replace(":str", "")
    stream = hardened.prefix + "usage"

    def written() -> bool:
        events = [msgspec.json.decode(f[b"e"]) for _, f in hardened.redis.xrange(stream)]
        return sum(1 for e in events if e["endpoint"] == endpoint) >= count

    poll_until(written, what=f"{count} usage events of {endpoint}")
    # The rate limiters' keys (one arrival time each) expire once their window has passed.
    poll_until(
        lambda: not any(b":rl:" in k for k in hardened.snapshot()), what="the limiters' keys to expire"
    )


def key_for(path: str) -> str:
    if path.startswith("/admin/v1") and not path.startswith("/admin/v1/self"):
        return ADMIN
    return ""  # the limited key


def cases(path: str, method: str) -> Iterator[dict[str, Any]]:
    """The hostile requests for one route and method."""
    for value in PATH_VALUES:
        yield {"path": concrete(path, value)}
    url = concrete(path)
    for name in QUERY_NAMES:
        for value in ODD:
            yield {"path": url, "params": {name: value}}
    if method in ("POST", "PATCH", "PUT"):
        for _, body in BODIES:
            yield {"path": url, "content": body}
        yield {"path": url, "content": b'{"a": 1}', "headers": {"content-type": "text/plain"}}
    yield {"path": url, "key": None}  # no key
    yield {"path": url, "key": "sk-\u00e9\u00e8"}  # a key outside ASCII
    yield {"path": url, "headers": {"authorization": "Bearer " + "x" * 4000}}


def send(hardened: Hardened, method: str, case: dict[str, Any], path: str) -> httpx.Response:
    key = case.get("key", key_for(path))
    headers = dict(case.get("headers", {}))
    if key is not None and "authorization" not in headers:
        headers["authorization"] = f"Bearer {key or hardened.key}"
    return hardened.http.request(
        method,
        case["path"],
        params=case.get("params"),
        content=case.get("content"),
        headers=raw_headers(headers),
    )


def test_every_route_refuses_hostile_requests_cleanly(
    hardened: Hardened, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    failures: list[str] = []
    count = 0
    routes = served_routes(hardened.app)
    assert len(routes) >= 30
    for path, methods in routes:
        for method in methods:
            if path in hardened.app._routes and method == "POST":
                continue  # the hot routes' own battery
            before = hardened.snapshot()
            wrote = False
            metered = 0
            for case in cases(path, method):
                if path.endswith("/stream") and "params" not in case and "key" not in case:
                    continue  # an open event stream (see the Last-Event-ID test)
                count += 1
                response = send(hardened, method, case, path)
                label = f"{method} {case['path'][:60]} {case.get('params') or ''} {case.get('content', b'')[:30]!r}"
                if response.status_code >= 500:
                    failures.append(f"{label}: {response.status_code} {response.text[:200]}")
                elif (problem := error_shape(path, response)) is not None:
                    failures.append(f"{label}: {problem}")
                wrote = wrote or (method != "GET" and response.status_code < 400)
                if path.startswith(METERED) and response.status_code < 400:
                    wrote, metered = True, metered + 1
            if metered:
                settled(hardened, path, metered)
            if not wrote:
                after = hardened.snapshot()
                changed = [k for k in before.keys() | after.keys() if before.get(k) != after.get(k)]
                if changed:
                    failures.append(f"{path} {method}: refused requests changed {sorted(changed)[:5]}")
    assert count > 1000
    assert not failures, f"{len(failures)} of {count}:\n" + "\n".join(failures[:40])
    assert not tracebacks(caplog.records), tracebacks(caplog.records)[:10]


def test_a_resume_point_that_is_no_stream_id_is_a_400(hardened: Hardened) -> None:
    created = hardened.send(
        "POST", "/api/v1/chats", content=_ENC.encode({"model": "gpt-4o-mini", "message": "hi"})
    )
    assert created.status_code == 201, created.text
    chat = created.json()["id"]

    def settled() -> bool:
        status = hardened.send("GET", f"/api/v1/chats/{chat}").json()["status"]
        return status not in ("pending", "running")

    poll_until(lambda: settled() or None, deadline=10)  # its turn ran: nothing more is written
    for last in (
        "99999999999999999999-0",
        "18446744073709551615-18446744073709551615",
        "\u00b2-0",
        "\u0663-0",  # an Arabic-Indic digit: a digit to regular expressions, not to Redis
        "1-2-3",
        "-1-0",
        "abc",
    ):
        response = hardened.send("GET", f"/api/v1/chats/{chat}/stream", headers={"last-event-id": last})
        assert response.status_code == 400, (last, response.text)
        assert response.json()["message"] == "Invalid Last-Event-ID."


@pytest.mark.parametrize(
    ("method", "path", "body", "param"),
    [
        ("POST", "/admin/v1/keys", {"limits": {"rpm": 10**13}}, "limits.rpm"),
        ("POST", "/admin/v1/keys", {"limits": {"max_concurrency": 10**15}}, "limits.max_concurrency"),
        (
            "POST",
            "/admin/v1/keys",
            {"budgets": [{"window": "day", "limit_usd": 1e308}]},
            "budgets[0].limit_usd",
        ),
        ("POST", "/admin/v1/keys", {"expires_at": 1e308}, "expires_at"),
        ("POST", "/admin/v1/keys", {"metadata": {f"k{i}": "v" for i in range(65)}}, "metadata"),
        ("POST", "/admin/v1/teams", {"id": "t-bounds", "limits": {"tpm": 10**13}}, "limits.tpm"),
        ("POST", "/admin/v1/keys/{kid}/rotate", {"grace_seconds": 1e308}, "grace_seconds"),
        ("PATCH", "/admin/v1/keys/{kid}", {"limits": {"rpm": 10**13}}, "limits.rpm"),
        (
            "PATCH",
            "/admin/v1/keys/{kid}",
            {"budgets": [{"window": "day", "limit_usd": 1e300}]},
            "budgets[0].limit_usd",
        ),
    ],
)
def test_admin_numbers_have_upper_bounds(
    hardened: Hardened, method: str, path: str, body: dict[str, Any], param: str
) -> None:
    before = hardened.snapshot()
    response = hardened.send(method, path.format(kid=hardened.kid), content=_ENC.encode(body), key=ADMIN)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
    assert hardened.snapshot() == before


def test_store_outages_say_when_to_retry(fake_session: Any) -> None:
    """A 503 from the Responses store or the chat storage carries retry-after beside
    x-should-retry (the gateway's Redis is stopped under it; a config key needs no Redis)."""
    with (
        redis_server() as server,
        serve_gateway(base_config(fake_session, server.url)) as gw,
        gw.http() as client,
    ):
        assert client.get("/api/v1/chats").status_code == 200
        server.stop()
        answers = [client.get("/v1/responses/resp_0123456789abcdef"), client.get("/api/v1/chats")]
    for answer in answers:
        assert answer.status_code == 503, answer.text
        assert answer.headers["retry-after"] == "1"
        assert answer.headers["x-should-retry"] == "true"

"""Circuit breakers on the manual clock: a primary that is down for 60 s (the breaker opens, one
probe per cooldown, traffic returns after the recovery), two gateway replicas on one Redis (a
deployment that failed on replica A is skipped by replica B within a second; after the cooldown
exactly one request of the whole fleet probes it), a model whose every deployment is open (a
fast 503 with the time to the probe), and an active health check that ends a cooldown."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import redis

from fake_providers.testing import FakeProviders
from gateway.clock import ManualClock
from gateway.testing import serve_gateway
from gateway.upstream.breaker import Verdict
from tests.conftest import GatewayFactory, RunningGateway, poll_until
from tests.integration.failover.support import (
    FALLBACK,
    OPENAI_CHAT,
    PRIMARY,
    TEXT,
    VLLM_CHAT,
    config,
    metric,
    sent,
    stream,
    words,
)

ALL = words(1, 60)


def view_state(gw: RunningGateway) -> str | None:
    """The breaker's state in the gateway's per-process view."""
    view = gw.services.router.breakers.view("fake-openai", PRIMARY)
    return view.state if view is not None else None


def state(gw: RunningGateway) -> str | None:
    """The breaker's state in the gateway's view, once Redis holds the same state: a failure
    changes the view at once and is written in the background, stamped with the clock's time
    when the write runs, so a test moves the clock only after the write landed."""
    view = gw.services.router.breakers.view("fake-openai", PRIMARY)
    if view is None:
        return None
    key = f"{gw.settings.redis.key_prefix}breaker:{{cb:fake-openai/{PRIMARY}}}"
    with redis.Redis.from_url(str(gw.settings.redis.url)) as client:
        stored = client.hget(key, "state")
    return view.state if stored is not None and stored.decode() == view.state else "writing"


def primary_attempts(fake: FakeProviders) -> int:
    return len(sent(fake, OPENAI_CHAT))


def test_an_outage_opens_the_breaker_one_probe_per_cooldown_then_traffic_returns(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(config(fake, redis_url, breaker={"failures": 3, "cooldown_seconds": 30.0}))
    clock = gw.clock
    fake.script([{"fault": "503", "times": None}], model=PRIMARY)
    fake.script([{"reply": ALL, "times": None}], model=FALLBACK)
    seen: list[int] = []

    def request_at(t: float) -> str:
        clock.advance(t - clock.monotonic())
        before = primary_attempts(fake)
        answer = stream(gw)
        assert answer.status == 200 and answer.error is None, answer.body
        assert answer.text == TEXT
        seen.append(primary_attempts(fake) - before)
        return str(answer.chunks[0]["model"])

    # The outage: the first request fails three times on the primary and opens the breaker.
    assert request_at(0.0) == FALLBACK
    poll_until(lambda: state(gw) == "open")
    # While it is open, requests go straight to the fallback.
    assert request_at(4.0) == FALLBACK
    assert request_at(8.0) == FALLBACK
    # After the cooldown one request probes (one attempt); still down: open again.
    assert request_at(30.0) == FALLBACK
    poll_until(lambda: state(gw) == "open")
    assert request_at(34.0) == FALLBACK
    # The primary recovers at 60 s; the next probe (at the end of the second cooldown) closes it.
    fake.clear_script()
    fake.script([{"reply": ALL, "times": None}], model=PRIMARY)
    fake.script([{"reply": ALL, "times": None}], model=FALLBACK)
    assert request_at(62.0) == PRIMARY
    poll_until(lambda: state(gw) == "closed")
    assert request_at(66.0) == PRIMARY
    assert seen == [3, 0, 0, 1, 0, 1, 1]
    assert len(sent(fake, VLLM_CHAT)) == 5
    labels = {"provider": "fake-openai", "model": PRIMARY}
    assert metric(gw, "gw_breaker_opens_total", **labels) == 2.0
    assert metric(gw, "gw_breaker_probes_total", **labels, result="started") == 2.0
    assert metric(gw, "gw_breaker_probes_total", **labels, result="failure") == 1.0
    assert metric(gw, "gw_breaker_probes_total", **labels, result="success") == 1.0
    assert metric(gw, "gw_breaker_state", **labels) == 0.0


def test_replicas_share_the_breaker_and_exactly_one_probes(fake: FakeProviders, redis_url: str) -> None:
    cfg = config(fake, redis_url, breaker={"failures": 2, "cooldown_seconds": 30.0})
    cfg["providers"][0]["retry"] = {"max_attempts": 2, "initial_delay": 0.0, "max_delay": 0.0}
    clock = ManualClock()  # one clock for the fleet (replicas' clocks agree)
    fake.script([{"fault": "503", "times": None}], model=PRIMARY)
    fake.script([{"reply": ALL, "times": None}], model=FALLBACK)
    with ExitStack() as stack:
        a = stack.enter_context(serve_gateway(cfg, clock=clock))
        b = stack.enter_context(serve_gateway(cfg, clock=clock))
        assert stream(a).text == TEXT  # two failures on A: open
        assert primary_attempts(fake) == 2
        poll_until(lambda: state(a) == "open")
        assert view_state(b) == "closed"  # B has not read Redis since
        clock.advance(1.0)  # B's view is at most a second old
        poll_until(lambda: state(b) == "open")
        answer = stream(b)
        assert answer.text == TEXT
        assert primary_attempts(fake) == 2  # B never tried the primary

        clock.advance(30.0)  # the cooldown is over: both see a breaker ready for a probe
        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(stream, [a, b, a, b, a, b]))
        assert [x.text for x in answers] == [TEXT] * 6
        assert primary_attempts(fake) == 3  # exactly one probe in the fleet
        assert (
            metric(a, "gw_breaker_probes_total", provider="fake-openai", model=PRIMARY, result="started")
            + metric(b, "gw_breaker_probes_total", provider="fake-openai", model=PRIMARY, result="started")
            == 1.0
        )


def test_with_every_deployment_open_the_request_fails_at_once(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    cfg = config(fake, redis_url, breaker={"failures": 3, "cooldown_seconds": 30.0})
    cfg["models"][0]["fallbacks"] = []
    gw = gateway_factory(cfg)
    fake.script([{"fault": "503", "times": None}], model=PRIMARY)
    assert stream(gw).status == 503  # three attempts: open
    poll_until(lambda: state(gw) == "open")
    gw.clock.advance(10.0)
    answer = stream(gw)
    assert answer.status == 503
    assert answer.error is not None
    assert (answer.error["code"], answer.error["retryable"]) == ("server_is_overloaded", True)
    assert answer.headers["retry-after"] == "20"  # until the probe
    assert answer.headers["x-gateway-attempts"] == "0"
    assert primary_attempts(fake) == 3
    assert metric(gw, "gw_breaker_skips_total", provider="fake-openai", model=PRIMARY) == 1.0


def test_an_answered_health_check_ends_the_cooldown(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    breaker = {"failures": 3, "cooldown_seconds": 30.0, "health_check_seconds": 5.0}
    gw = gateway_factory(config(fake, redis_url, breaker=breaker))
    fake.script([{"fault": "503", "times": 3}], model=PRIMARY)
    fake.script([{"reply": ALL, "times": None}], model=FALLBACK)
    assert stream(gw).chunks[0]["model"] == FALLBACK  # open
    poll_until(lambda: state(gw) == "open")
    fake.script([{"reply": ALL, "times": None}], model=PRIMARY)
    gw.clock.advance(1.0)  # the next refresh checks the provider's model listing
    poll_until(lambda: any(e.path == "/openai/v1/models" for e in fake.requests()))
    breakers = gw.services.router.breakers
    poll_until(lambda: breakers.verdict("fake-openai", PRIMARY) is Verdict.PROBE)
    answer = stream(gw)  # 1 s after the breaker opened, not 30
    assert answer.chunks[0]["model"] == PRIMARY and answer.text == TEXT
    poll_until(lambda: state(gw) == "closed")

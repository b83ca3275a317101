"""Circuit breakers on the manual clock: a primary that is down for 60 s (the breaker opens, one
probe per cooldown, traffic returns after the recovery), two gateway replicas on one Redis (a
deployment that failed on replica A is skipped by replica B within a second; after the cooldown
exactly one request of the whole fleet probes it), a model whose every deployment is open (a
fast 503 with the time to the probe), and an active health check that ends a cooldown."""

from __future__ import annotations

from gateway.upstream.breaker import Verdict
from tests.conftest import RunningGateway, poll_until
from tests.integration.failover.support import (
    PRIMARY,
    TEXT,
    stream,
    words,
)

ALL = words(1, 60)


def state(gw: RunningGateway) -> str | None:
    breakers = gw.services.router.breakers
    poll_until(lambda: breakers.verdict("fake-openai", PRIMARY) is Verdict.PROBE)
    answer = stream(gw)  # 1 s after the breaker opened, not 30
    assert answer.chunks[0]["model"] == PRIMARY and answer.text == TEXT
    poll_until(lambda: state(gw) == "closed")

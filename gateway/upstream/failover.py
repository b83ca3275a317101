"""Attempts, retries and failover: one place that decides whether to try again and where.

A request walks its plan (the model's deployments, then its fallback models' deployments).
Each deployment gets up to ``max_attempts`` attempts of its retry policy (the provider's
settings for the proxy, :data:`CHAT_RETRY_POLICY` for stateful chats) with exponential backoff
on the injected clock (Retry-After as a minimum); retryable kinds only. When a deployment is
spent, or the failure says another deployment may do better (``failover``), the next one is
tried. Errors the client caused end the request at once. A prompt too long for the model's
context window is never sent to the same model again: the other deployments of that model are
skipped and only its fallback models are tried.

A deployment that stayed silent (a startup timeout: nothing meaningful within the startup guard,
or no response headers within a non-streaming call's request timeout) is not tried again for
the request while the plan has another deployment left: the next one is tried at once (the
provider's ``retry.retry_startup_timeout`` turns this off). The last deployment of a plan keeps
its retries: there is nowhere else to go.

Circuit breakers (:mod:`gateway.upstream.breaker`): a deployment whose breaker is open is skipped
without being tried; after its cooldown one request fleet-wide claims the probe and gets one
attempt. Every attempt's outcome is reported to the breaker. When the breakers leave nothing to
try, the request fails at once with a retryable ``circuit_open`` error whose Retry-After is the
time until the first of them lets a probe through.

Callers hook in without copying the loop: ``on_retry`` hears of every scheduled retry (chats
publish it as a ``retry`` event), and ``replay`` may ask for one failed attempt to be run again
at once, uncounted and with :attr:`Attempt.replay` set (a native chain the upstream forgot is
asked again with the full history).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import msgspec

from gateway.clock import Clock
from gateway.errors import AttemptFailed, ClassifiedError, ErrorKind, circuit_open_error
from gateway.upstream.breaker import Verdict
from gateway.upstream.health import NoMetrics
from gateway.upstream.provider import Upstream
from gateway.upstream.retry import RetryEvent, RetryPolicy
from gateway.upstream.router import Deployment, Router

log = logging.getLogger("gateway.upstream.retry")

T = TypeVar("T")

RETRY_BACKOFF = "retry_backoff"


class AttemptRecord(msgspec.Struct):
    provider: str
    deployment: int
    upstream_model: str
    number: int
    upstream_ms: float = 0.0
    kind: str | None = None
    status_code: int = 0


class Trace:
    """What happened to one request across its attempts (timing headers, logs, usage)."""

    __slots__ = ("attempts", "backoff_s", "upstream_s")

    def __init__(self) -> None:
        self.attempts: list[AttemptRecord] = []
        self.upstream_s = 0.0
        self.backoff_s = 0.0

    def headers(self, total_s: float) -> list[tuple[str, str]]:
        overhead_ms = max(0.0, (total_s - self.upstream_s - self.backoff_s) * 1000)
        out = [
            ("x-gateway-overhead-ms", f"{overhead_ms:.2f}"),
            ("x-gateway-attempts", str(len(self.attempts))),
        ]
        if self.attempts:
            out.append(("x-gateway-upstream-ms", ",".join(f"{a.upstream_ms:.1f}" for a in self.attempts)))
            last = self.attempts[-1]
            out.append(("x-gateway-provider", last.provider))
        return out


class Attempt(msgspec.Struct):
    deployment: Deployment
    upstream: Upstream
    number: int  # 1-based, per deployment
    record: AttemptRecord
    replay: bool = False  # run again by the ``replay`` hook (e.g. without the native chain)
    health: NoMetrics = NoMetrics()  # where its stream's dropped events are counted


def policy_for(upstream: Upstream) -> RetryPolicy:
    r = upstream.settings.retry
    return RetryPolicy(
        initial_delay=r.initial_delay,
        max_delay=r.max_delay,
        max_attempts=r.max_attempts,
        budget_seconds=r.budget_seconds,
    )


class Failover(Generic[T]):
    """Runs ``try_once`` over a plan until one attempt succeeds or nothing is left to try."""

    def __init__(
        self,
        router: Router,
        clock: Clock,
        trace: Trace,
        *,
        policy: Callable[[Upstream], RetryPolicy] = policy_for,
        on_retry: Callable[[RetryEvent], Awaitable[None]] | None = None,
        replay: Callable[[Attempt, ClassifiedError], bool] | None = None,
    ) -> None:
        self._router = router
        self._clock = clock
        self._trace = trace
        self._policy = policy
        self._on_retry = on_retry
        self._replay = replay

    async def run(self, plan: list[Deployment], try_once: Callable[[Attempt], Awaitable[T]]) -> T:
        assert plan, "a plan has at least one deployment"
        started = self._clock.monotonic()
        breakers = self._router.breakers
        last: ClassifiedError | None = None
        too_long: set[str] = set()  # public models whose context window the prompt overflowed
        skipped: list[Deployment] = []  # routed around: breaker open
        for position, deployment in enumerate(plan):
            if deployment.public_model in too_long:
                continue  # the same model elsewhere has the same window: only a fallback can help
            verdict = breakers.verdict(deployment.provider, deployment.upstream_model)
            if verdict is Verdict.PROBE and not await breakers.claim(
                deployment.provider, deployment.upstream_model
            ):
                verdict = Verdict.SKIP
            if verdict is Verdict.SKIP:
                breakers.skipped(deployment.provider, deployment.upstream_model)
                skipped.append(deployment)
                continue
            upstream = self._router.upstream(deployment)
            policy = self._policy(upstream)
            number = 0
            while True:
                number += 1
                record = AttemptRecord(
                    provider=upstream.name,
                    deployment=deployment.index,
                    upstream_model=deployment.upstream_model,
                    number=number,
                )
                self._trace.attempts.append(record)
                attempt = Attempt(deployment, upstream, number, record, health=self._router.health)
                try:
                    result = await self._attempt(try_once, attempt)
                except AttemptFailed as failed:
                    last = failed.classified
                    record.kind = str(last.kind)
                    record.status_code = last.status_code
                    breakers.failed(deployment.provider, deployment.upstream_model, last)
                else:
                    breakers.succeeded(deployment.provider, deployment.upstream_model)
                    return result
                elapsed = self._clock.monotonic() - started
                delay = policy.should_retry(last, number, elapsed)
                if delay is not None and verdict is Verdict.PROBE:
                    delay = None  # a probe gets one attempt
                if (
                    delay is not None
                    and self._silent(last, upstream)
                    and self._more(plan, position, too_long)
                ):
                    delay = None  # a silent deployment: the next one, at once
                if delay is None:
                    log.warning(
                        "attempt failed, not retrying: provider=%s model=%s attempt=%d kind=%s status=%s failover=%s",
                        upstream.name,
                        deployment.upstream_model,
                        number,
                        last.kind,
                        last.status_code,
                        last.failover,
                    )
                    break
                log.warning(
                    "attempt failed, retrying: provider=%s model=%s attempt=%d delay=%.2fs kind=%s status=%s",
                    upstream.name,
                    deployment.upstream_model,
                    number,
                    delay,
                    last.kind,
                    last.status_code,
                )
                if self._on_retry is not None:
                    await self._on_retry(
                        RetryEvent.scheduled(last, attempt=number, delay=delay, now=self._clock.now())
                    )
                waited = time.perf_counter()
                await self._clock.sleep(delay, name=RETRY_BACKOFF)
                self._trace.backoff_s += time.perf_counter() - waited
            if not last.failover:
                break
            if last.code == "context_length_exceeded":
                too_long.add(deployment.public_model)
        if last is None:
            wait = breakers.retry_in([(d.provider, d.upstream_model) for d in skipped])
            provider = self._router.upstream(skipped[0]).classifier_key if skipped else ""
            raise AttemptFailed(circuit_open_error(provider, retry_after=wait))
        raise AttemptFailed(last)

    @staticmethod
    def _silent(error: ClassifiedError, upstream: Upstream) -> bool:
        return error.kind is ErrorKind.STARTUP_TIMEOUT and not upstream.settings.retry.retry_startup_timeout

    def _more(self, plan: list[Deployment], position: int, too_long: set[str]) -> bool:
        """Whether a deployment after ``position`` may still be tried."""
        breakers = self._router.breakers
        return any(
            d.public_model not in too_long
            and breakers.verdict(d.provider, d.upstream_model) is not Verdict.SKIP
            for d in plan[position + 1 :]
        )

    async def _attempt(self, try_once: Callable[[Attempt], Awaitable[T]], attempt: Attempt) -> T:
        """One attempt, run once more (uncounted, ``replay`` set) when the hook asks for it."""
        try:
            return await try_once(attempt)
        except AttemptFailed as failed:
            if self._replay is None or attempt.replay or not self._replay(attempt, failed.classified):
                raise
        attempt.replay = True
        return await try_once(attempt)

"""Circuit breakers per deployment, shared by every replica through Redis.

A deployment (a provider and an upstream model) has one breaker, one Redis hash
``<prefix>breaker:{cb:<provider>/<model>}`` changed only by :data:`SCRIPT`, one script per change:

* **closed**: requests go through. A retryable failure counts; ``failures`` of them in a row,
  each within ``window_seconds`` of the first, open it. A success resets the count.
* **open**: routing skips the deployment for ``cooldown_seconds`` (or the failure's Retry-After,
  when longer).
* **half-open**: after the cooldown, the first request anywhere in the fleet that claims the
  probe (the script lets exactly one through) is the only one sent; its success closes the
  breaker, its failure opens it again for another cooldown. A probe that never reports lets
  another request claim it after one more cooldown.

Routing never waits on Redis: it reads a per-process view, refreshed in the background every
:data:`REFRESH_SECONDS` on the injected clock (timer ``breaker_refresh``), and updated at once by
this process's own writes (one on each failure, fire and forget; a refresh read before one of
them, or while one is on its way, leaves that breaker's view as the write made it). Only the claim of a probe
asks Redis, once per cooldown. Times are the injected clock's epoch seconds, so replicas agree.

Redis unreachable: the same state machine runs on the per-process view alone (a warning on the
way into that mode and an info line on the way out, the ``gw_breaker_degraded`` gauge and the
``gw_breaker_store_errors`` counter); a request never fails because of it.

Active health checks (``health_check_seconds``): while a breaker is open, this process reads the
provider's ``models_path`` that often; an answer ends the cooldown, so the next request probes.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from redis.exceptions import NoScriptError, RedisError

from gateway.clock import Clock, RealClock
from gateway.config import BreakerSettings, Settings
from gateway.errors import ClassifiedError
from gateway.upstream.health import NoMetrics
from gateway.upstream.provider import Upstream

log = logging.getLogger("gateway.upstream.breaker")

REFRESH_SECONDS = 1.0
BREAKER_REFRESH = "breaker_refresh"
STORE_ERRORS = (RedisError, OSError)

# KEYS[1]: the breaker hash. ARGV: op ("fail", "ok", "probe", "heal"), now, threshold, window,
# cooldown, probe lease. Returns {state, failures, first_at, open_until, probe_until, event}
# (times as strings: Lua numbers would be cut to integers).
SCRIPT = """
local key = KEYS[1]
local op = ARGV[1]
local now = tonumber(ARGV[2])
local h = redis.call('HMGET', key, 'state', 'failures', 'first_at', 'open_until', 'probe_until')
local state = h[1] or 'closed'
local failures = tonumber(h[2]) or 0
local first_at = tonumber(h[3]) or 0
local open_until = tonumber(h[4]) or 0
local probe_until = tonumber(h[5]) or 0
local event = ''
if op == 'fail' then
  local threshold = tonumber(ARGV[3])
  local window = tonumber(ARGV[4])
  local cooldown = tonumber(ARGV[5])
  if state == 'half_open' then
    state = 'open'; open_until = now + cooldown; probe_until = 0; failures = 0; event = 'reopened'
  elseif state == 'closed' then
    if failures == 0 or now - first_at > window then
      failures = 1; first_at = now
    else
      failures = failures + 1
    end
    if failures >= threshold then
      state = 'open'; open_until = now + cooldown; failures = 0; event = 'opened'
    end
  end
elseif op == 'ok' then
  if state == 'half_open' then event = 'closed' end
  if state ~= 'open' then state = 'closed'; failures = 0; probe_until = 0 end
elseif op == 'probe' then
  local lease = tonumber(ARGV[6])
  if (state == 'open' and now >= open_until) or (state == 'half_open' and now >= probe_until) then
    state = 'half_open'; probe_until = now + lease; event = 'probe'
  end
elseif op == 'heal' then
  if state == 'open' and open_until > now then open_until = now; event = 'healed' end
end
redis.call('HSET', key, 'state', state, 'failures', failures, 'first_at', first_at,
  'open_until', open_until, 'probe_until', probe_until)
local horizon = math.max(open_until, probe_until, first_at + tonumber(ARGV[4])) - now
redis.call('PEXPIRE', key, math.floor((math.max(horizon, 0) + 60) * 1000))
return {state, tostring(failures), tostring(first_at), tostring(open_until), tostring(probe_until), event}
"""
_SHA = hashlib.sha1(SCRIPT.encode()).hexdigest()
_FIELDS = ("state", "failures", "first_at", "open_until", "probe_until")


class Verdict(enum.Enum):
    ALLOW = "allow"
    SKIP = "skip"  # open: route around it
    PROBE = "probe"  # the cooldown is over: claim the probe, then send it


@dataclass(slots=True)
class View:
    """One breaker as this process last saw it."""

    state: str = "closed"
    failures: int = 0
    first_at: float = 0.0
    open_until: float = 0.0
    probe_until: float = 0.0


def step(view: View, op: str, now: float, b: BreakerSettings, *, cooldown: float) -> str:
    """Apply ``op`` to ``view`` as :data:`SCRIPT` does; returns the event (``""`` for none)."""
    if op == "fail":
        if view.state == "half_open":
            view.state, view.open_until, view.probe_until, view.failures = "open", now + cooldown, 0.0, 0
            return "reopened"
        if view.state == "closed":
            if view.failures == 0 or now - view.first_at > b.window_seconds:
                view.failures, view.first_at = 1, now
            else:
                view.failures += 1
            if view.failures >= b.failures:
                view.state, view.open_until, view.failures = "open", now + cooldown, 0
                return "opened"
        return ""
    if op == "ok":
        event = "closed" if view.state == "half_open" else ""
        if view.state != "open":
            view.state, view.failures, view.probe_until = "closed", 0, 0.0
        return event
    if op == "probe":
        if (view.state == "open" and now >= view.open_until) or (
            view.state == "half_open" and now >= view.probe_until
        ):
            view.state, view.probe_until = "half_open", now + b.cooldown_seconds
            return "probe"
        return ""
    if op == "heal" and view.state == "open" and view.open_until > now:
        view.open_until = now
        return "healed"
    return ""


@dataclass(slots=True)
class _Entry:
    provider: str
    model: str
    settings: BreakerSettings
    key: str
    view: View
    claiming: bool = False
    checked_at: float = 0.0
    writing: int = 0  # this process's changes on their way to Redis
    changes: int = 0  # how often this process changed the view (a refresh read before is stale)
    # The last of this process's changes sent: the next one waits for its answer, so answers
    # are applied in the order Redis applied the changes.
    tail: asyncio.Future[None] | None = None


def breaker_id(provider: str, upstream_model: str) -> str:
    return f"{provider}/{upstream_model}"


class Breakers:
    """Every deployment's breaker, for one process."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        *,
        redis: Any | None = None,
        metrics: NoMetrics | None = None,
        upstreams: Mapping[str, Upstream] | None = None,
        refresh_seconds: float = REFRESH_SECONDS,
    ) -> None:
        self._clock = clock
        self._redis = redis
        self._metrics = metrics or NoMetrics()
        self._upstreams = upstreams or {}
        self._refresh_seconds = refresh_seconds
        self._entries: dict[str, _Entry] = {}
        prefix = settings.redis.key_prefix
        for m in settings.models:
            provider = settings.provider(m.provider)
            ident = breaker_id(m.provider, m.target_model)
            if provider.breaker.enabled and ident not in self._entries:
                self._entries[ident] = _Entry(
                    provider=m.provider,
                    model=m.target_model,
                    settings=provider.breaker,
                    key=f"{prefix}breaker:{{cb:{ident}}}",
                    view=View(),
                )
        self._degraded = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._runner: asyncio.Task[None] | None = None

    @classmethod
    def none(cls) -> Breakers:
        """No breakers at all: every deployment is always tried."""
        return cls(_NO_SETTINGS, RealClock())

    # -- routing -------------------------------------------------------------------------------
    def view(self, provider: str, upstream_model: str) -> View | None:
        entry = self._entries.get(breaker_id(provider, upstream_model))
        return entry.view if entry is not None else None

    def verdict(self, provider: str, upstream_model: str) -> Verdict:
        entry = self._entries.get(breaker_id(provider, upstream_model))
        if entry is None:
            return Verdict.ALLOW
        view = entry.view
        if view.state == "closed":
            return Verdict.ALLOW
        now = self._clock.now()
        if entry.claiming:
            return Verdict.SKIP
        if view.state == "open":
            return Verdict.SKIP if now < view.open_until else Verdict.PROBE
        return Verdict.SKIP if now < view.probe_until else Verdict.PROBE

    def skipped(self, provider: str, upstream_model: str) -> None:
        self._metrics.breaker_skip(provider, upstream_model)

    def retry_in(self, deployments: Sequence[tuple[str, str]]) -> float:
        """Seconds until the first of these breakers lets a probe through (0 when unknown)."""
        now = self._clock.now()
        waits = []
        for provider, model in deployments:
            entry = self._entries.get(breaker_id(provider, model))
            if entry is not None and entry.view.state != "closed":
                until = entry.view.open_until if entry.view.state == "open" else entry.view.probe_until
                waits.append(max(0.0, until - now))
        return min(waits) if waits else 0.0

    async def claim(self, provider: str, upstream_model: str) -> bool:
        """Ask for the one probe after the cooldown; True when this request is it."""
        entry = self._entries.get(breaker_id(provider, upstream_model))
        if entry is None:
            return True
        if entry.claiming:
            return False
        entry.claiming = True
        try:
            event = await self._change(entry, "probe", cooldown=entry.settings.cooldown_seconds)
        finally:
            entry.claiming = False
        if event == "probe":
            self._metrics.breaker_probe(entry.provider, entry.model, "started")
            log.info("circuit breaker half-open, probing: deployment=%s/%s", entry.provider, entry.model)
            return True
        return False

    # -- outcomes ------------------------------------------------------------------------------
    def succeeded(self, provider: str, upstream_model: str) -> None:
        entry = self._entries.get(breaker_id(provider, upstream_model))
        if entry is None:
            return
        view = entry.view
        if view.state == "closed" and view.failures == 0:
            return  # nothing to change: no write on the common path
        if view.state == "half_open":
            self._metrics.breaker_probe(entry.provider, entry.model, "success")
        self._write(entry, "ok", cooldown=entry.settings.cooldown_seconds)

    def failed(self, provider: str, upstream_model: str, error: ClassifiedError) -> None:
        """A failure of a retryable kind counts towards opening the breaker."""
        entry = self._entries.get(breaker_id(provider, upstream_model))
        if entry is None or not error.retryable:
            return
        if entry.view.state == "half_open":
            self._metrics.breaker_probe(entry.provider, entry.model, "failure")
        cooldown = max(entry.settings.cooldown_seconds, error.retry_after)
        self._write(entry, "fail", cooldown=cooldown)

    def _write(self, entry: _Entry, op: str, *, cooldown: float) -> None:
        """Change the view now; the script's answer (from Redis) replaces it when it comes."""
        if self._redis is None or self._degraded:
            self._local(entry, op, cooldown=cooldown)
            return
        step(entry.view, op, self._clock.now(), entry.settings, cooldown=cooldown)
        entry.changes += 1
        task = asyncio.get_running_loop().create_task(self._change(entry, op, cooldown=cooldown))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _local(self, entry: _Entry, op: str, *, cooldown: float) -> str:
        event = step(entry.view, op, self._clock.now(), entry.settings, cooldown=cooldown)
        entry.changes += 1
        self._announce(entry, event)
        return event

    async def _change(self, entry: _Entry, op: str, *, cooldown: float) -> str:
        if self._redis is None or self._degraded:
            return self._local(entry, op, cooldown=cooldown)
        b = entry.settings
        args = (op, repr(self._clock.now()), b.failures, b.window_seconds, cooldown, b.cooldown_seconds)
        entry.writing += 1
        previous, mine = entry.tail, asyncio.get_running_loop().create_future()
        entry.tail = mine
        try:
            if previous is not None:
                await asyncio.shield(previous)  # resolved when that change is answered
            try:
                reply = await self._redis.evalsha(_SHA, 1, entry.key, *args)
            except NoScriptError:
                await self._redis.script_load(SCRIPT)
                reply = await self._redis.evalsha(_SHA, 1, entry.key, *args)
        except STORE_ERRORS as exc:
            self._store_failed(exc)
            return self._local(entry, op, cooldown=cooldown)
        finally:
            entry.writing -= 1
            mine.set_result(None)
            if entry.tail is mine:
                entry.tail = None
        self._store_ok()
        entry.view = _parse(reply[:5])
        entry.changes += 1
        event = _text(reply[5])
        self._announce(entry, event)
        return event

    def _announce(self, entry: _Entry, event: str) -> None:
        self._metrics.breaker_state(entry.provider, entry.model, entry.view.state)
        if event in ("opened", "reopened"):
            self._metrics.breaker_opened(entry.provider, entry.model)
            log.warning(
                "circuit breaker %s: deployment=%s/%s for %.1fs",
                event,
                entry.provider,
                entry.model,
                entry.view.open_until - self._clock.now(),
            )
        elif event == "closed":
            log.info("circuit breaker closed: deployment=%s/%s", entry.provider, entry.model)

    # -- the background view -------------------------------------------------------------------
    async def start(self) -> None:
        if self._entries and self._runner is None:
            self._runner = asyncio.get_running_loop().create_task(self._run(), name="circuit-breakers")

    async def flush(self) -> None:
        """Wait for the writes in flight (their answers are in the view afterwards)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def stop(self) -> None:
        tasks = [*self._tasks, *([self._runner] if self._runner is not None else [])]
        self._runner = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _run(self) -> None:
        while True:
            await self.refresh()
            self._health_checks()
            await self._clock.sleep(self._refresh_seconds, name=BREAKER_REFRESH)

    async def refresh(self) -> None:
        """Read every breaker from Redis into the view (one pipeline)."""
        if self._redis is None:
            return
        entries = list(self._entries.values())
        changes = [entry.changes for entry in entries]
        try:
            pipe = self._redis.pipeline(transaction=False)
            for entry in entries:
                pipe.hmget(entry.key, *_FIELDS)
            replies = await pipe.execute()
        except STORE_ERRORS as exc:
            self._store_failed(exc)
            return
        self._store_ok()
        for entry, reply, seen in zip(entries, replies, changes, strict=True):
            # A change of this process's since the read (or on its way) is newer than the read:
            # the next refresh brings what Redis holds then.
            if entry.claiming or entry.writing or entry.changes != seen:
                continue
            entry.view = _parse(reply) if reply[0] is not None else View()
            self._metrics.breaker_state(entry.provider, entry.model, entry.view.state)

    def _health_checks(self) -> None:
        now = self._clock.now()
        for entry in self._entries.values():
            interval = entry.settings.health_check_seconds
            upstream = self._upstreams.get(entry.provider)
            if interval <= 0 or upstream is None or entry.view.state != "open":
                continue
            if now - entry.checked_at < interval or now >= entry.view.open_until:
                continue
            entry.checked_at = now
            task = asyncio.get_running_loop().create_task(self._check(entry, upstream))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _check(self, entry: _Entry, upstream: Upstream) -> None:
        try:
            response = await upstream.send(
                upstream.request("GET", upstream.settings.models_path), stream=False
            )
        except Exception:  # any failure to answer is a failed check
            return
        if response.status_code < 400:
            log.info("health check answered: deployment=%s/%s", entry.provider, entry.model)
            await self._change(entry, "heal", cooldown=entry.settings.cooldown_seconds)

    def _store_failed(self, exc: BaseException) -> None:
        self._metrics.breaker_store(degraded=True)
        if not self._degraded:
            self._degraded = True
            log.warning("circuit breakers on per-process state: Redis unreachable (%s)", exc)

    def _store_ok(self) -> None:
        if self._degraded:
            self._degraded = False
            self._metrics.breaker_store(degraded=False)
            log.info("circuit breakers shared through Redis again")

    @property
    def degraded(self) -> bool:
        return self._degraded


_NO_SETTINGS = Settings()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _parse(fields: Sequence[Any]) -> View:
    return View(
        state=_text(fields[0]) if fields[0] is not None else "closed",
        failures=int(_text(fields[1] or b"0")),
        first_at=float(_text(fields[2] or b"0")),
        open_until=float(_text(fields[3] or b"0")),
        probe_until=float(_text(fields[4] or b"0")),
    )

"""What a finished request used and cost, written to Redis off the request path.

A ticket's ``settle`` prices the usage, counts it in the metrics and queues one item; the
:class:`Settler` writes whatever queued while its previous batch was in flight, in one
pipeline. A settlement releases the request's leases and hold, commits its cost to every
budget window, corrects the token limiter by (actual - estimate) tokens, adds it to the day's
rollups and appends one usage event.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from gateway.clock import Clock
from gateway.policy.store import STORE_ERRORS, PolicyStore
from gateway.policy.tickets import Ticket
from gateway.policy.usage import UsageEvent
from gateway.policy.windows import WindowCache
from gateway.pricing import PriceTable, Usage
from gateway.telemetry.metrics import Metrics

log = logging.getLogger("gateway.policy")
_ENCODER = msgspec.json.Encoder()
# Rollup metrics, by their short field names; the org-wide rollup keeps fewer of them.
_ORG_METRICS = ("req", "in", "out", "nusd", "err")


@dataclass(frozen=True, slots=True, kw_only=True)
class SettleItem:
    """One finished request, as the settler needs it."""

    keys: tuple[str, ...]  # settle.lua's keys: leases, holds, token limiters, rollup, spend
    now_ms: str  # "" = Redis's clock
    request_id: str
    hold_member: str  # "" = no budget hold
    cost: int  # nano-USD
    delta: int  # reported - estimated tokens (0 when not reported)
    tpm: tuple[int, int]  # the key's and team's tokens per minute
    ttls: list[int]  # per spend counter, seconds (0 = none)
    rollup: dict[str, int]  # day rollup fields of the key's root
    org_rollup: str  # the org-wide rollup's name
    org_fields: dict[str, int]
    event: bytes  # the usage event, encoded


def settle_args(group: Sequence[SettleItem]) -> list[Any]:
    """``settle.lua`` arguments for requests that share every key: costs, token corrections and
    rollups are sums, so one call settles them all."""
    last = group[-1]
    rollup: dict[str, int] = {}
    for item in group:
        for field, value in item.rollup.items():
            rollup[field] = rollup.get(field, 0) + value
    args: list[Any] = [
        max(item.now_ms for item in group),
        sum(item.cost for item in group),
        sum(item.delta for item in group),
        last.tpm[0],
        last.tpm[1],
        "\t".join(item.request_id for item in group),
        "\t".join(item.hold_member for item in group if item.hold_member),
        len(last.ttls),
        *last.ttls,
    ]
    for field, value in rollup.items():
        args += [field, value]
    return args


class Settler:
    """Writes settlements in batches: whatever queued while the previous batch was in flight."""

    def __init__(self, store: PolicyStore, metrics: Metrics, batch_max: int) -> None:
        self._store = store
        self._metrics = metrics
        self._batch_max = batch_max
        self._queue: list[SettleItem] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def put(self, item: SettleItem) -> None:
        self._queue.append(item)
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="policy-settler")

    async def stop(self) -> None:
        """Write what is queued, including a batch in flight (never cancelled mid-write)."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
        while self._queue:
            await self._flush_some()

    async def _run(self) -> None:
        while not self._stopping:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                await self._flush_some()

    async def _flush_some(self) -> None:
        batch = self._queue[: self._batch_max]
        del self._queue[: self._batch_max]
        try:
            await self._flush(batch)
        except STORE_ERRORS as exc:
            self._metrics.usage_write_failures.inc(len(batch))
            log.error("settlement of %d requests failed: %s", len(batch), exc)

    async def _flush(self, batch: Sequence[SettleItem]) -> None:
        # Requests of one key (and team, model and day) share every key of the settle script:
        # one call per such group. The org-wide rollups are summed over the whole batch.
        groups: dict[tuple[str, ...], list[SettleItem]] = {}
        org: dict[str, dict[str, int]] = {}
        for item in batch:
            groups.setdefault(item.keys, []).append(item)
            sums = org.setdefault(item.org_rollup, {})
            for field, value in item.org_fields.items():
                sums[field] = sums.get(field, 0) + value
        calls = [(list(keys), settle_args(group)) for keys, group in groups.items()]
        await self._store.settle(calls, [item.event for item in batch], org)
        self._metrics.settle_batch.observe(len(batch))


class Settlement:
    """Turns a settled ticket into metrics and, with the policy on, a queued settlement."""

    def __init__(
        self,
        store: PolicyStore,
        clock: Clock,
        metrics: Metrics,
        prices: PriceTable,
        windows: WindowCache,
        settler: Settler,
        *,
        enabled: bool,
    ) -> None:
        self.store = store
        self.clock = clock
        self.metrics = metrics
        self.prices = prices
        self.windows = windows
        self.settler = settler
        self.enabled = enabled

    def record(
        self,
        ticket: Ticket,
        *,
        status: int,
        usage: Usage | None,
        error_type: str | None,
        provider: str | None,
        upstream_model: str | None,
        attempts: int,
        ttft_s: float | None,
        upstream_s: float,
    ) -> None:
        caller = ticket.caller
        assert caller is not None
        duration = time.perf_counter() - ticket.started
        if usage is None:
            # Nothing reported (upstream error, disconnect before usage): the prompt is billed
            # only if an attempt reached the provider and the answer did not say otherwise.
            usage = Usage(source="estimated")
        model = ticket.model
        cost = self.prices.cost(usage, model, upstream_model or model)
        now = self.clock.now()
        if self.enabled:
            event = UsageEvent(
                ts=now,
                request_id=ticket.request_id,
                kid=caller.key.id,
                team_id=caller.key.team_id,
                endpoint=ticket.endpoint,
                model=model,
                upstream_model=upstream_model,
                provider=provider,
                stream=ticket.stream,
                status=status,
                error_type=error_type,
                attempts=attempts,
                input_tokens=usage.input_tokens,
                cache_read_tokens=usage.cache_read_tokens,
                cache_write_tokens=usage.cache_write_tokens,
                output_tokens=usage.output_tokens,
                reasoning_tokens=usage.reasoning_tokens,
                usage_source=usage.source,
                cost_nusd=cost,
                price_version=self.prices.version,
                ttft_ms=None if ttft_s is None else round(ttft_s * 1000, 3),
                duration_ms=round(duration * 1000, 3),
                overhead_ms=round(max(0.0, duration - upstream_s) * 1000, 3),
            )
            self.settler.put(self._item(ticket, usage, status, cost, now, _ENCODER.encode(event)))
        self.metrics.usage(
            provider=provider or "",
            model=model,
            tokens={
                "input": usage.input_tokens,
                "cache_read": usage.cache_read_tokens,
                "cache_write": usage.cache_write_tokens,
                "output": usage.output_tokens,
                "reasoning": usage.reasoning_tokens,
            },
            cost_nusd=cost,
            estimated=usage.source == "estimated" and status < 400,
        )

    def _item(
        self, ticket: Ticket, usage: Usage, status: int, cost: int, now: float, event: bytes
    ) -> SettleItem:
        """The settlement of one request: the script's keys and arguments, rollups, event."""
        assert ticket.caller is not None
        key, team = ticket.caller.key, ticket.caller.team
        s, root, model = self.store, key.root, ticket.model
        ids = self.windows.at(now)
        day = ids["day"][0][1:]
        tid = team.id if team is not None else "-"
        spend_keys = [s.spend(root, "key", key.id, ids[w][0]) for w in ids]
        ttls = [ids[w][1] for w in ids]
        if team is not None:
            spend_keys += [s.spend(root, "team", tid, ids[w][0]) for w in ids]
            ttls += ttls
        delta = (
            usage.input_tokens + usage.output_tokens - ticket.estimate if usage.source == "reported" else 0
        )
        metrics = {
            "req": 1,
            "in": usage.input_tokens,
            "cin": usage.cache_read_tokens,
            "cwr": usage.cache_write_tokens,
            "out": usage.output_tokens,
            "rsn": usage.reasoning_tokens,
            "nusd": cost,
            "err": 1 if status >= 400 else 0,
        }
        rollup: dict[str, int] = {}
        for scope in [f"k:{key.id}"] + ([f"t:{tid}"] if team is not None else []):
            for name, value in metrics.items():
                if value or name == "req":
                    rollup[f"{scope}|{model}|{name}"] = value
        org: dict[str, int] = {}
        for scope in [f"key:{key.id}", f"model:{model}"] + ([f"team:{tid}"] if team is not None else []):
            for name in _ORG_METRICS:
                if metrics[name] or name == "req":
                    org[f"{scope}|{name}"] = metrics[name]
        return SettleItem(
            keys=(
                s.leases(root, "key", key.id),
                s.leases(root, "team", tid),
                s.holds(root, "key", key.id),
                s.holds(root, "team", tid),
                s.rl(root, "key", key.id, "tpm"),
                s.rl(root, "team", tid, "tpm"),
                s.rollup(root, day),
                *spend_keys,
            ),
            now_ms=ticket.now_ms and str(int(now * 1000)),
            request_id=ticket.request_id,
            hold_member=ticket.hold_member,
            cost=cost,
            delta=delta,
            tpm=(key.limits.tpm or 0, (team.limits.tpm or 0) if team is not None else 0),
            ttls=ttls,
            rollup=rollup,
            org_rollup=s.org_rollup(day),
            org_fields=org,
            event=event,
        )

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
# The rollup metrics of one request, in the order of ``SettleItem.values``; the org-wide rollup
# keeps fewer of them. A metric that sums to 0 is not written (``req`` always is).
_METRICS = ("req", "in", "cin", "cwr", "out", "rsn", "nusd", "err")
_ORG_METRICS = ("req", "in", "out", "nusd", "err")
_COST = _METRICS.index("nusd")


class SettleShape:
    """What the settlements of one key, team and model in one minute share: the settle
    script's keys and counter TTLs, and the rollup field names. Built once and cached, so a
    request only adds its numbers; the settler groups a batch by shape."""

    __slots__ = ("keys", "org_names", "org_rollup", "rollup_names", "ttls")

    def __init__(
        self,
        keys: tuple[str, ...],
        ttls: tuple[int, ...],
        rollup_names: tuple[tuple[str, ...], ...],
        org_rollup: str,
        org_names: tuple[tuple[int, str], ...],
    ) -> None:
        self.keys = keys  # settle.lua's keys: leases, holds, token limiters, rollup, spend
        self.ttls = ttls  # per spend counter, seconds (0 = none)
        self.rollup_names = rollup_names  # per metric of _METRICS, its field in each scope
        self.org_rollup = org_rollup  # the org-wide rollup's name
        self.org_names = org_names  # (metric index, field) of the org-wide rollup


@dataclass(frozen=True, slots=True, kw_only=True)
class SettleItem:
    """One finished request, as the settler needs it."""

    shape: SettleShape
    now_ms: str  # "" = Redis's clock
    request_id: str
    hold_member: str  # "" = no budget hold
    delta: int  # reported - estimated tokens (0 when not reported)
    tpm: tuple[int, int]  # the key's and team's tokens per minute
    values: tuple[int, ...]  # the rollup metrics, in the order of _METRICS
    event: bytes  # the usage event, encoded


def column_sums(group: Sequence[SettleItem]) -> list[int]:
    """The rollup metrics of ``group``, summed."""
    if len(group) == 1:
        return list(group[0].values)
    return [sum(column) for column in zip(*(item.values for item in group), strict=True)]


def settle_args(shape: SettleShape, group: Sequence[SettleItem], sums: Sequence[int]) -> list[Any]:
    """``settle.lua`` arguments for requests of one shape (``sums``: their summed metrics):
    costs, token corrections and rollups are sums, so one call settles them all."""
    last = group[-1]
    args: list[Any] = [
        max(item.now_ms for item in group),
        sums[_COST],
        sum(item.delta for item in group),
        last.tpm[0],
        last.tpm[1],
        "\t".join(item.request_id for item in group),
        "\t".join(item.hold_member for item in group if item.hold_member),
        len(shape.ttls),
        *shape.ttls,
    ]
    for index, names in enumerate(shape.rollup_names):
        value = sums[index]
        if value or index == 0:
            for name in names:
                args += (name, value)
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
        # Requests of one shape (key, team, model, minute) share every key of the settle
        # script: one call per shape. The org-wide rollups are summed over the whole batch.
        groups: dict[SettleShape, list[SettleItem]] = {}
        for item in batch:
            group = groups.get(item.shape)
            if group is None:
                groups[item.shape] = [item]
            else:
                group.append(item)
        calls: list[tuple[list[str], list[Any]]] = []
        org: dict[str, dict[str, int]] = {}
        for shape, group in groups.items():
            sums = column_sums(group)
            calls.append((list(shape.keys), settle_args(shape, group, sums)))
            fields = org.setdefault(shape.org_rollup, {})
            for index, name in shape.org_names:
                value = sums[index]
                if value or index == 0:
                    fields[name] = fields.get(name, 0) + value
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
        self._shapes: dict[tuple[str, str, str | None, str], SettleShape] = {}
        self._shapes_of: dict[str, tuple[str, int]] | None = None  # the windows they were built in

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
        """The settlement of one request: its shape, numbers and event."""
        assert ticket.caller is not None
        key, team = ticket.caller.key, ticket.caller.team
        delta = (
            usage.input_tokens + usage.output_tokens - ticket.estimate if usage.source == "reported" else 0
        )
        return SettleItem(
            shape=self._shape(ticket, now),
            now_ms=ticket.now_ms and str(int(now * 1000)),
            request_id=ticket.request_id,
            hold_member=ticket.hold_member,
            delta=delta,
            tpm=(key.limits.tpm or 0, (team.limits.tpm or 0) if team is not None else 0),
            values=(
                1,
                usage.input_tokens,
                usage.cache_read_tokens,
                usage.cache_write_tokens,
                usage.output_tokens,
                usage.reasoning_tokens,
                cost,
                1 if status >= 400 else 0,
            ),
            event=event,
        )

    def _shape(self, ticket: Ticket, now: float) -> SettleShape:
        """The cached shape of ``ticket``'s settlement (the cache lives for one minute: the
        windows, and so the spend counters' names and TTLs, change on minute boundaries)."""
        assert ticket.caller is not None
        key, team = ticket.caller.key, ticket.caller.team
        ids = self.windows.at(now)
        if ids is not self._shapes_of:
            self._shapes.clear()
            self._shapes_of = ids
        tid = team.id if team is not None else None
        cached = (key.root, key.id, tid, ticket.model)
        shape = self._shapes.get(cached)
        if shape is None:
            shape = self._shapes[cached] = self._new_shape(key.root, key.id, tid, ticket.model, ids)
        return shape

    def _new_shape(
        self, root: str, kid: str, tid: str | None, model: str, ids: dict[str, tuple[str, int]]
    ) -> SettleShape:
        s, day = self.store, ids["day"][0][1:]
        team = tid if tid is not None else "-"
        spend_keys = [s.spend(root, "key", kid, ids[w][0]) for w in ids]
        ttls = [ids[w][1] for w in ids]
        if tid is not None:
            spend_keys += [s.spend(root, "team", team, ids[w][0]) for w in ids]
            ttls += ttls
        scopes = [f"k:{kid}"] + ([f"t:{team}"] if tid is not None else [])
        org_scopes = [f"key:{kid}", f"model:{model}"] + ([f"team:{team}"] if tid is not None else [])
        return SettleShape(
            keys=(
                s.leases(root, "key", kid),
                s.leases(root, "team", team),
                s.holds(root, "key", kid),
                s.holds(root, "team", team),
                s.rl(root, "key", kid, "tpm"),
                s.rl(root, "team", team, "tpm"),
                s.rollup(root, day),
                *spend_keys,
            ),
            ttls=tuple(ttls),
            rollup_names=tuple(tuple(f"{scope}|{model}|{name}" for scope in scopes) for name in _METRICS),
            org_rollup=s.org_rollup(day),
            org_names=tuple(
                (_METRICS.index(name), f"{scope}|{name}") for scope in org_scopes for name in _ORG_METRICS
            ),
        )

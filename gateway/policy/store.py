"""The Redis side of the policy: key and team records, admission, settlement, usage, audit.

Layout (prefix ``gw:`` by default; ``{r}`` is the enforcement root, ``t:<team>`` or ``k:<kid>``,
the hash tag every per-request key shares so one script call is Cluster-safe):

==================================  =====  =================================================
``key:{k:<kid>}``                   hash   ``cfg`` (msgspec JSON), ``hash``, ``prev_hash``,
                                           ``prev_until``
``team:{t:<tid>}``                  hash   ``cfg``
``alias:<alias>``                   str    kid (``SET NX``: aliases are unique)
``idx:keys`` / ``idx:teams``        zset   listing indexes, score = created_at
``{r}:state``                       hash   ``<kid>`` / ``team`` -> ``<status>:<version>``;
                                           checked by every admission (revocation, staleness)
``{r}:rl:<scope>:<id>:rpm|tpm``     str    GCRA theoretical arrival time (ms)
``{r}:cc:<scope>:<id>``             zset   concurrency leases, score = lease expiry (ms); renewed
                                           while the request runs (``renew.lua``)
``{r}:holds:<scope>:<id>``          zset   budget holds ``<request id>:<nano-USD>``, score = expiry
``{r}:gone:<request id>``           str    an admission given up after a timeout (``release.lua``);
                                           the admission script writes nothing when it exists
``{r}:spend:<scope>:<id>:<window>`` str    committed nano-USD; window ``d20261124``, ``w2026W48``,
                                           ``m202611``, ``total``; TTL window end + 35 days
``{r}:roll:d:<yyyymmdd>``           hash   rollup ``<scope>:<id>|<model>|<metric>`` (TTL 400 days)
``roll:d:<yyyymmdd>``               hash   org-wide rollup ``key:<kid>|team:<tid>|model:<m>|<metric>``
``usage`` / ``audit``               stream usage events / admin mutations (``MAXLEN ~``)
==================================  =====  =================================================
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from importlib import resources
from typing import Any

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import ClusterError, NoScriptError, RedisError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.policy.records import KeyRecord, TeamRecord
from gateway.policy.windows import WINDOWS, window_ids
from gateway.redis.multiplexed import MultiplexedRedis

_KEY_DECODER = msgspec.json.Decoder(KeyRecord)
_TEAM_DECODER = msgspec.json.Decoder(TeamRecord)
_ENCODER = msgspec.json.Encoder()
# What a failed store call raises: the caller fails open or closed on these.
STORE_ERRORS = (RedisError, OSError)
# A pipelined call answered with one of these is made again on its own.
AGAIN_ERRORS = (NoScriptError, RedisConnectionError, RedisTimeoutError, ClusterError, TryAgainError)


# The org-wide day rollups are kept this long (seconds).
_ORG_ROLLUP_TTL = 400 * 86400


def _lua(name: str) -> str:
    return resources.files("gateway.policy").joinpath(f"lua/{name}").read_text(encoding="utf-8")


class Script:
    """A Lua script called by ``EVALSHA``, loaded again after ``NOSCRIPT`` (failover, flush)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def __call__(self, redis: Any, keys: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            return await redis.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            await redis.script_load(self.source)
            return await redis.evalsha(self.sha, len(keys), *keys, *args)


class PolicyStore:
    """On one server, shared connections (gateway/redis/multiplexed.py) carry the calls made for
    each request: ``admission_redis`` the admission script, ``settlement_redis`` the settlement
    batches and lease renewals. Without them (a cluster, a sentinel) they go through ``redis``,
    as every other command does."""

    def __init__(
        self,
        redis: aioredis.Redis,
        prefix: str,
        *,
        usage_maxlen: int,
        audit_maxlen: int,
        admission_redis: MultiplexedRedis | None = None,
        settlement_redis: MultiplexedRedis | None = None,
    ) -> None:
        # Typed loosely: redis-py's annotations differ between sync and async return types.
        self.redis: Any = redis
        self.admission_redis: Any = admission_redis or redis
        self.settlement_redis: Any = settlement_redis or redis
        self.p = prefix
        self.usage_maxlen = usage_maxlen
        self.audit_maxlen = audit_maxlen
        self.admit_script = Script(_lua("admit.lua"))
        self.settle_script = Script(_lua("settle.lua"))
        self.rollup_script = Script(_lua("rollup.lua"))
        self.renew_script = Script(_lua("renew.lua"))
        self.release_script = Script(_lua("release.lua"))

    # -- names -------------------------------------------------------------------------------
    def key_name(self, kid: str) -> str:
        return f"{self.p}key:{{k:{kid}}}"

    def team_name(self, tid: str) -> str:
        return f"{self.p}team:{{t:{tid}}}"

    def alias_name(self, alias: str) -> str:
        return f"{self.p}alias:{alias}"

    def state(self, root: str) -> str:
        return f"{self.p}{{{root}}}:state"

    def gone(self, root: str, request_id: str) -> str:
        return f"{self.p}{{{root}}}:gone:{request_id}"

    def rl(self, root: str, scope: str, ident: str, kind: str) -> str:
        return f"{self.p}{{{root}}}:rl:{scope}:{ident}:{kind}"

    def leases(self, root: str, scope: str, ident: str) -> str:
        return f"{self.p}{{{root}}}:cc:{scope}:{ident}"

    def holds(self, root: str, scope: str, ident: str) -> str:
        return f"{self.p}{{{root}}}:holds:{scope}:{ident}"

    def spend(self, root: str, scope: str, ident: str, window_id: str) -> str:
        return f"{self.p}{{{root}}}:spend:{scope}:{ident}:{window_id}"

    def rollup(self, root: str, day: str) -> str:
        return f"{self.p}{{{root}}}:roll:d:{day}"

    def org_rollup(self, day: str) -> str:
        return f"{self.p}roll:d:{day}"

    @property
    def usage_stream(self) -> str:
        return f"{self.p}usage"

    @property
    def audit_stream(self) -> str:
        return f"{self.p}audit"

    # -- scripts -------------------------------------------------------------------------------
    async def load_scripts(self) -> None:
        """Load the per-request scripts ahead of the first request (``EVALSHA`` loads them
        on demand too, one ``NOSCRIPT`` round trip later)."""
        await self.redis.script_load(self.admit_script.source)
        await self.redis.script_load(self.settle_script.source)
        await self.redis.script_load(self.rollup_script.source)

    async def admit(self, keys: Sequence[str], args: Sequence[Any]) -> list[Any]:
        """One admission (``admit.lua``): its reply, as the script documents it."""
        result: list[Any] = await self.admit_script(self.admission_redis, keys, args)
        return result

    async def renew(self, keys: Sequence[str], args: Sequence[Any]) -> None:
        await self.renew_script(self.settlement_redis, keys, args)

    async def release(self, keys: Sequence[str], args: Sequence[Any]) -> None:
        """Give up an admission whose answer was lost (``release.lua``)."""
        await self.release_script(self.redis, keys, args)

    async def settle(
        self,
        calls: Sequence[tuple[list[str], list[Any]]],
        events: Sequence[bytes],
        org: dict[str, dict[str, int]],
    ) -> None:
        """One pipeline for a batch of settlements: the ``settle.lua`` calls, one usage event
        each, and one ``rollup.lua`` call per org-wide rollup (its fields summed over the batch).
        A call answered ``NOSCRIPT``, or lost to a failing node, is made again on its own (after
        loading the script); any other failure is raised. A call lost with its node may have run there already: if that node had also
        replicated it before dying, it counts twice (at most the batch in flight)."""
        script, rollup = self.settle_script, self.rollup_script
        commands: list[tuple[Any, ...]] = [("EVALSHA", script.sha, len(k), *k, *a) for k, a in calls]
        stream, maxlen = self.usage_stream, self.usage_maxlen
        commands += [("XADD", stream, "MAXLEN", "~", maxlen, "*", "e", event) for event in events]
        org_calls: list[tuple[list[str], list[Any]]] = []
        for name, sums in org.items():
            fields: list[Any] = [_ORG_ROLLUP_TTL]
            for field, value in sums.items():
                fields += (field, value)
            org_calls.append(([name], fields))
            commands.append(("EVALSHA", rollup.sha, 1, name, *fields))
        results = await self._pipelined(commands)
        done = len(calls) + len(events)
        again = [
            *zip([script] * len(calls), calls, results[: len(calls)], strict=True),
            *zip([rollup] * len(org_calls), org_calls, results[done:], strict=True),
        ]
        for called, (keys, args), outcome in again:
            if isinstance(outcome, AGAIN_ERRORS):
                # NOSCRIPT, or the node failed (a cluster primary dying mid-batch): the call
                # again, on its own, retried through a failover within the command timeout.
                await called(self.settlement_redis, keys, args)
            elif isinstance(outcome, Exception):
                raise outcome

    async def _pipelined(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        """The replies of ``commands`` sent as one pipeline (not a transaction), an error reply
        as its exception: on the settlement's shared connection, else as redis-py's pipeline."""
        if isinstance(self.settlement_redis, MultiplexedRedis):
            return await self.settlement_redis.pipeline_execute(commands)
        pipe = self.redis.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        results: list[Any] = await pipe.execute(raise_on_error=False)
        return results

    # -- records -------------------------------------------------------------------------------
    async def load_key(self, kid: str) -> tuple[KeyRecord, dict[str, bytes]] | None:
        raw: dict[bytes, bytes] = await self.redis.hgetall(self.key_name(kid))
        if not raw or b"cfg" not in raw:
            return None
        fields = {k.decode(): v for k, v in raw.items()}
        return _KEY_DECODER.decode(fields["cfg"]), fields

    async def load_team(self, tid: str) -> TeamRecord | None:
        raw = await self.redis.hget(self.team_name(tid), "cfg")
        return None if raw is None else _TEAM_DECODER.decode(raw)

    async def claim_alias(self, alias: str, kid: str) -> bool:
        return bool(await self.redis.set(self.alias_name(alias), kid, nx=True))

    async def release_alias(self, alias: str, kid: str) -> None:
        if await self.redis.get(self.alias_name(alias)) == kid.encode():
            await self.redis.delete(self.alias_name(alias))

    async def kid_by_alias(self, alias: str) -> str | None:
        raw = await self.redis.get(self.alias_name(alias))
        return None if raw is None else bytes(raw).decode()

    async def save_key(
        self, record: KeyRecord, *, hashes: dict[str, str | bytes] | None = None, old_root: str | None = None
    ) -> None:
        """Write the record, then its state in the root (the write that every replica sees)."""
        fields: dict[str, str | bytes] = {"cfg": _ENCODER.encode(record), **(hashes or {})}
        await self.redis.hset(self.key_name(record.id), mapping=fields)
        await self.redis.zadd(f"{self.p}idx:keys", {record.id: record.created_at})
        if old_root is not None and old_root != record.root:
            await self.redis.hdel(self.state(old_root), record.id)
        await self.redis.hset(self.state(record.root), record.id, record.state())

    async def delete_key(self, record: KeyRecord) -> None:
        await self.redis.hdel(self.state(record.root), record.id)
        await self.redis.delete(self.key_name(record.id))
        await self.redis.zrem(f"{self.p}idx:keys", record.id)
        if record.alias:
            await self.release_alias(record.alias, record.id)

    async def save_team(self, record: TeamRecord) -> None:
        await self.redis.hset(self.team_name(record.id), "cfg", _ENCODER.encode(record))
        await self.redis.zadd(f"{self.p}idx:teams", {record.id: record.created_at})
        await self.redis.hset(self.state(f"t:{record.id}"), "team", record.state())

    async def delete_team(self, tid: str) -> None:
        await self.redis.hdel(self.state(f"t:{tid}"), "team")
        await self.redis.delete(self.team_name(tid))
        await self.redis.zrem(f"{self.p}idx:teams", tid)

    async def list_ids(self, kind: str, *, after: str | None, limit: int) -> list[str]:
        """Ids in creation order, starting after the cursor id."""
        name = f"{self.p}idx:{kind}"
        start = 0
        if after is not None:
            rank = await self.redis.zrank(name, after)
            start = 0 if rank is None else int(rank) + 1
        raw = await self.redis.zrange(name, start, start + limit - 1)
        return [bytes(r).decode() for r in raw]

    async def key_ids_of_team(self, tid: str) -> list[str]:
        raw = await self.redis.hkeys(self.state(f"t:{tid}"))
        return [bytes(r).decode() for r in raw if r != b"team"]

    # -- audit ---------------------------------------------------------------------------------
    async def audit(self, entry: dict[str, str]) -> None:
        await self.redis.xadd(
            self.audit_stream,
            entry,
            maxlen=self.audit_maxlen,
            approximate=True,
        )

    async def read_audit(self, count: int) -> list[tuple[str, dict[str, str]]]:
        raw = await self.redis.xrevrange(self.audit_stream, count=count)
        return [
            (bytes(i).decode(), {bytes(k).decode(): bytes(v).decode() for k, v in fields.items()})
            for i, fields in raw
        ]

    async def reset_spend(self, root: str, scope: str, ident: str, window_id: str) -> None:
        await self.redis.delete(self.spend(root, scope, ident, window_id))

    # -- reads for reports ---------------------------------------------------------------------
    async def spend_of(self, root: str, scope: str, ident: str, ts: float) -> dict[str, int]:
        ids = window_ids(ts)
        names = [self.spend(root, scope, ident, ids[w][0]) for w in WINDOWS]
        values = await self.redis.mget(names)
        return {w: int(v or 0) for w, v in zip(WINDOWS, values, strict=True)}

    async def rollup_days(self, name_of_day: Any, days: Sequence[str]) -> dict[str, dict[str, int]]:
        pipe = self.redis.pipeline(transaction=False)
        for day in days:
            pipe.hgetall(name_of_day(day))
        results = await pipe.execute()
        out: dict[str, dict[str, int]] = {}
        for day, raw in zip(days, results, strict=True):
            out[day] = {bytes(k).decode(): int(v) for k, v in raw.items()}
        return out

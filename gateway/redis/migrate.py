"""The key-layout migration: data written by an earlier release is renamed to today's key names
once, at startup, before the gateway serves.

``P layout`` (``P`` is ``[redis] key_prefix``) holds the layout version of what is stored under
the prefix. Layout 1 is every release before Redis Cluster support; layout 2 (:data:`LAYOUT`)
is today's (gateway/redis/keys.py). From 1 to 2 only the chats' keys moved: a chat's hash,
messages, queue and event stream were tagged with the chat id (``P chat:{C}``, ``...:msgs``,
``...:queue``, ``...:events``) and are now in the chat's shard (``P chat:{chats:<n>}:C...``).
Every other key kept its name and its encoding: the policy's records, counters, spend, holds,
rollups, usage and audit streams (their tags ``{t:<team>}`` / ``{k:<kid>}`` were already the
enforcement root), the Responses records (``resp:{<id>}``), the model listing cache. No index
stores a key name (the chat indexes and the job stream hold chat ids), so only keys move; a
renamed stream keeps its entry ids, so a client's ``Last-Event-ID`` still resumes it.

How it runs (:func:`migrate_layout`):

- the version key says 2: nothing to do (one ``GET``);
- otherwise one process takes ``P layout:lock`` (``SET NX`` with a TTL, renewed while it works)
  and, if a chat index of layout 1 is there (``P chats:jobs``, which that layout created at every
  start and with every chat, ``P chats:pending`` or ``P chats:actions``), walks the keys under
  ``P chat:{`` with ``SCAN`` and renames each old-layout key with
  ``RENAMENX`` (an old key whose new name is taken is left where it is and logged, never
  overwritten), then writes the version key and releases the lock. Any other process starting
  meanwhile waits, polling the version key on the gateway's clock, and takes the lock over if
  its holder died (the TTL ran out without a version). A migration cut short is simply run
  again: what was renamed is not seen again, what was not is renamed then;
- a Redis Cluster never held layout 1 (that release could not run on one): in cluster mode the
  migration does nothing (a rename across slots is refused there anyway).

The old release must be stopped before the new one starts: a replica of it still running would
write chats under the old names, which nobody reads once the version key is written.

Whoever renames stored keys again (or changes :data:`gateway.redis.keys.CHAT_SHARDS`) raises
:data:`LAYOUT` and adds the step from the previous layout here, with its test on data written
by the release before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import ssl
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.clock import Clock
from gateway.redis.keys import chat_shard

log = logging.getLogger("gateway.redis")

LAYOUT = 2
"""The key layout this release reads and writes."""

# How long the lock lives unless renewed, and how often a waiting process looks again.
LOCK_SECONDS = 30.0
WAIT_SECONDS = 0.25
# While Redis cannot be reached at startup, the migration is tried again this often.
RETRY_SECONDS = 1.0
# Keys per SCAN call.
SCAN_COUNT = 1000

_CHAT_SUFFIXES = ("", ":msgs", ":queue", ":events")
_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")

# Extends or deletes the lock only while it is still ours (the value is the holder's token).
_RENEW = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


@dataclass(frozen=True, slots=True)
class MigrationReport:
    """What one call of :func:`migrate_layout` did."""

    found: int  # the layout stored before (no version key: 1)
    renamed: int  # keys renamed by this process
    skipped: tuple[str, ...]  # old keys left in place: their new name was taken
    ran: bool  # this process did the migration (False: already done, or another did it)


class RedisTlsRefused(RuntimeError):
    """The Redis server's TLS certificate was not accepted: a configuration error, not an
    outage, so the gateway does not start."""


def tls_refusal(exc: BaseException) -> ssl.SSLError | None:
    """The TLS error behind a failed connection (a certificate not verified, a handshake
    refused), if that is what ``exc`` is."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


async def migrate_at_start(
    redis: aioredis.Redis, prefix: str, clock: Clock, *, cluster: bool = False
) -> asyncio.Task[MigrationReport] | None:
    """Run :func:`migrate_layout` before the gateway serves.

    A gateway may start while Redis is down (it answers by ``policy.on_store_error`` meanwhile):
    then the migration is tried again every :data:`RETRY_SECONDS` in a task, returned for the
    lifespan to cancel at shutdown. A TLS handshake that fails is no outage but a wrong
    ``[redis]`` TLS setting: :class:`RedisTlsRefused`, and the gateway does not start."""
    try:
        if cluster:
            await redis.ping()  # nothing to migrate there (see above), but TLS is checked
        await migrate_layout(redis, prefix, clock, cluster=cluster)
        return None
    except (RedisConnectionError, RedisTimeoutError) as exc:
        refused = tls_refusal(exc)
        if refused is not None:
            raise RedisTlsRefused(
                f"redis: the TLS connection was refused ({refused}); check redis.url and "
                "redis.tls_ca_file (the CA that signed the server's certificate)"
            ) from exc
        log.warning("redis unreachable at startup (%s): the key-layout check runs when it is back", exc)
    return asyncio.create_task(_retry(redis, prefix, clock, cluster), name="redis-layout-migration")


async def _retry(redis: aioredis.Redis, prefix: str, clock: Clock, cluster: bool) -> MigrationReport:
    while True:
        await clock.sleep(RETRY_SECONDS, name="redis_layout_retry")
        try:
            return await migrate_layout(redis, prefix, clock, cluster=cluster)
        except (RedisConnectionError, RedisTimeoutError):
            continue


def version_key(prefix: str) -> str:
    return f"{prefix}layout"


def lock_key(prefix: str) -> str:
    return f"{prefix}layout:lock"


def new_chat_name(prefix: str, old: str) -> str | None:
    """The layout-2 name of a layout-1 chat key (``P chat:{C}`` + suffix); None for any other
    name, layout-2 chat keys included."""
    head = f"{prefix}chat:{{"
    if not old.startswith(head):
        return None
    end = old.find("}", len(head))
    if end < 0:
        return None
    chat_id, suffix = old[len(head) : end], old[end + 1 :]
    if not chat_id or chat_id.startswith("chats:") or suffix not in _CHAT_SUFFIXES:
        return None
    return f"{prefix}chat:{{{chat_shard(chat_id)}}}:{chat_id}{suffix}"


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


async def _stored_layout(redis: aioredis.Redis, prefix: str) -> int | None:
    raw = _text(await redis.get(version_key(prefix)))
    return int(raw) if raw is not None else None


async def migrate_layout(
    redis: aioredis.Redis,
    prefix: str,
    clock: Clock,
    *,
    cluster: bool = False,
    lock_seconds: float = LOCK_SECONDS,
) -> MigrationReport:
    """Bring what is stored under ``prefix`` to :data:`LAYOUT` (see the module docstring).

    Returns when the stored layout is :data:`LAYOUT`, whoever migrated it. A stored layout newer
    than this release's is left alone (a warning: this release may not read all of it)."""
    if cluster:
        return MigrationReport(found=LAYOUT, renamed=0, skipped=(), ran=False)
    token = secrets.token_hex(16)
    lock_ms = max(1, int(lock_seconds * 1000))
    while True:
        found = await _stored_layout(redis, prefix)
        if found is not None and found >= LAYOUT:
            if found > LAYOUT:
                log.warning(
                    "redis layout %d under %r is newer than this release's (%d)", found, prefix, LAYOUT
                )
            return MigrationReport(found=found, renamed=0, skipped=(), ran=False)
        if await redis.set(lock_key(prefix), token, nx=True, px=lock_ms):
            break
        await clock.sleep(WAIT_SECONDS, name="redis_layout_wait")
    try:
        # Another process may have finished between our GET and our SET NX.
        found = await _stored_layout(redis, prefix)
        if found is not None and found >= LAYOUT:
            return MigrationReport(found=found, renamed=0, skipped=(), ran=False)
        renamed, skipped = 0, list[str]()
        # Layout 1 created its chat job stream at every start (and with every chat): without
        # it, no chat of that layout is stored here, and the SCAN of the whole database (every
        # prefix's keys) is spared: a new install (or a test's fresh prefix) costs six commands.
        if await redis.exists(*(f"{prefix}chats:{index}" for index in ("jobs", "pending", "actions"))):
            renamed, skipped = await _rename_chats(redis, prefix, token, lock_ms)
        await redis.set(version_key(prefix), str(LAYOUT))
        if renamed or skipped:
            log.info("redis layout under %r: 1 -> %d, %d keys renamed", prefix, LAYOUT, renamed)
        for name in skipped:
            log.warning("redis layout migration: %s left in place, its new name is taken", name)
        return MigrationReport(found=found or 1, renamed=renamed, skipped=tuple(skipped), ran=True)
    finally:
        # Unreachable now: the lock runs out by itself (and the error that got us here counts).
        with contextlib.suppress(RedisError):
            await redis.eval(_RELEASE, 1, lock_key(prefix), token)


async def _rename_chats(
    redis: aioredis.Redis, prefix: str, token: str, lock_ms: int
) -> tuple[int, list[str]]:
    pattern = _GLOB_SPECIAL.sub(r"\\\1", prefix) + "chat:{*"
    renamed = 0
    skipped: list[str] = []
    cursor: Any = 0
    while True:
        cursor, batch = await redis.scan(cursor, match=pattern, count=SCAN_COUNT)
        moves = [(old, new) for old in map(_text, batch) if old and (new := new_chat_name(prefix, old))]
        if moves:
            async with redis.pipeline(transaction=False) as pipe:
                for old, new in moves:
                    pipe.renamenx(old, new)
                done = await pipe.execute(raise_on_error=False)
            for (old, _), ok in zip(moves, done, strict=True):
                if isinstance(ok, Exception):
                    # Renamed meanwhile (a SCAN may list a key twice): gone is fine.
                    if "no such key" not in str(ok).lower():
                        raise ok
                elif ok:
                    renamed += 1
                else:
                    skipped.append(old)
        # Still ours: a long walk keeps the others waiting rather than starting their own.
        if not await redis.eval(_RENEW, 1, lock_key(prefix), token, lock_ms):
            raise RuntimeError("the redis layout migration lost its lock (it took longer than its TTL)")
        if int(cursor) == 0:
            return renamed, skipped

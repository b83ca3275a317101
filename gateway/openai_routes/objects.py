"""Files and batches the gateway hands out: ids that say where each object lives, and the
records that say whose it is.

An id the client sees wraps the provider that holds the object and the provider's own id
(``file-`` or ``batch_`` and the URL-safe base64 of ``<provider>\\n<upstream id>``), so any
replica routes a follow-up without a lookup. Whose it is lives in Redis, in the owner's own
slot: ``<prefix>oai:{<key id>}:obj:<id>`` (a hash: provider, upstream id, purpose, public models,
a batch output's batch, whether a batch's tokens were charged, the object as last seen) and ``<prefix>oai:{<key id>}:files`` / ``...:batches`` (the owner's ids
by creation time). Another key looks in its own slot and finds nothing: its answer is the 404 of
an object that does not exist. Listings read only the caller's index.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import msgspec
import redis.asyncio as aioredis

from gateway.errors.client import NotFound

Kind = Literal["files", "batches"]
PREFIXES: Mapping[Kind, str] = {"files": "file-", "batches": "batch_"}
_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(dict[str, Any])


def mint(kind: Kind, provider: str, upstream_id: str) -> str:
    raw = f"{provider}\n{upstream_id}".encode()
    return PREFIXES[kind] + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def where(kind: Kind, object_id: str) -> tuple[str, str] | None:
    """``(provider, upstream id)`` of one of our ids; None for anything else."""
    prefix = PREFIXES[kind]
    if not object_id.startswith(prefix):
        return None
    encoded = object_id[len(prefix) :]
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    provider, sep, upstream_id = raw.partition("\n")
    if not sep or not provider or not upstream_id:
        return None
    return provider, upstream_id


def file_not_found(file_id: str) -> NotFound:
    return NotFound(f"No such File object: {file_id}", param="id", code="not_found")


def batch_not_found(batch_id: str) -> NotFound:
    return NotFound(f"No batch found with id '{batch_id}'.", param="batch_id", code="not_found")


class Record(msgspec.Struct, frozen=True):
    provider: str
    upstream_id: str
    purpose: str = ""
    models: tuple[str, ...] = ()  # public names (a batch input file's, a batch's, its outputs')
    input_file: str = ""  # a batch's input file (our id)
    batch: str = ""  # a batch's output or error file: the batch (our id)
    charged: bool = False  # a batch whose tokens were charged


class ObjectStore:
    """The owner-scoped records. Cheap to build: it only holds references."""

    __slots__ = ("_prefix", "_redis")

    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    def _index(self, owner: str, kind: Kind) -> str:
        return f"{self._prefix}oai:{{{owner}}}:{kind}"

    def _key(self, owner: str, object_id: str) -> str:
        return f"{self._prefix}oai:{{{owner}}}:obj:{object_id}"

    async def put(
        self,
        kind: Kind,
        owner: str,
        object_id: str,
        record: Record,
        snapshot: Mapping[str, Any],
        *,
        created_at: float,
    ) -> None:
        fields: dict[Any, Any] = {
            "provider": record.provider,
            "upstream_id": record.upstream_id,
            "purpose": record.purpose,
            "models": "\n".join(record.models),
            "input_file": record.input_file,
            "batch": record.batch,
            "object": _ENCODER.encode(snapshot),
        }
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._key(owner, object_id), mapping=fields)
            pipe.zadd(self._index(owner, kind), {object_id: created_at}, nx=True)
            await pipe.execute()

    async def refresh(self, owner: str, object_id: str, snapshot: Mapping[str, Any]) -> None:
        """Keep the object as last seen (only while the record exists)."""
        key = self._key(owner, object_id)
        if await self._redis.exists(key):
            await self._redis.hset(key, "object", _ENCODER.encode(snapshot))

    async def get(self, owner: str, object_id: str) -> Record | None:
        found = await self._redis.hmget(
            self._key(owner, object_id),
            ["provider", "upstream_id", "purpose", "models", "input_file", "batch", "charged"],
        )
        if found[0] is None:
            return None
        provider, upstream_id, purpose, models, input_file, batch, charged = (
            (v.decode() if isinstance(v, bytes) else (v or "")) for v in found
        )
        return Record(
            provider=provider,
            upstream_id=upstream_id,
            purpose=purpose,
            models=tuple(m for m in models.split("\n") if m),
            input_file=input_file,
            batch=batch,
            charged=bool(charged),
        )

    async def claim_charge(self, owner: str, batch_id: str) -> bool:
        """Mark a batch's tokens as charged: True for the one caller that marks it first."""
        return bool(await self._redis.hsetnx(self._key(owner, batch_id), "charged", "1"))

    async def release_charge(self, owner: str, batch_id: str) -> None:
        """Undo :meth:`claim_charge` (its charge could not be made: a later read tries again)."""
        await self._redis.hdel(self._key(owner, batch_id), "charged")

    async def delete(self, kind: Kind, owner: str, object_id: str) -> bool:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._key(owner, object_id))
            pipe.zrem(self._index(owner, kind), object_id)
            deleted, _ = await pipe.execute()
        return bool(deleted)

    async def page(
        self, kind: Kind, owner: str, *, after: str | None, count: int, newest_first: bool
    ) -> list[str]:
        """Up to ``count`` of the owner's ids after ``after`` (exclusive), in the order asked."""
        index = self._index(owner, kind)
        start = 0
        if after is not None:
            rank = await (
                self._redis.zrevrank(index, after) if newest_first else self._redis.zrank(index, after)
            )
            if rank is None:
                return []
            start = int(rank) + 1  # type: ignore[arg-type]
        read = self._redis.zrevrange if newest_first else self._redis.zrange
        ids = await read(index, start, start + count - 1)
        return [i.decode() if isinstance(i, bytes) else str(i) for i in ids]

    async def snapshots(self, owner: str, ids: Sequence[str]) -> list[dict[str, Any] | None]:
        if not ids:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for object_id in ids:
                pipe.hget(self._key(owner, object_id), "object")
            found = await pipe.execute()
        return [_DECODER.decode(raw) if raw else None for raw in found]

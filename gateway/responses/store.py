"""The gateway's records of Responses API answers, in Redis.

One Redis hash per stored response, ``<prefix>resp:{<id>}`` (the braces are a Cluster hash tag,
so everything about one response lives in one slot and a Lua script may touch it):

========== ===================================================================================
field      value
========== ===================================================================================
``owner``  the key id of the gateway key that created it (ownership checks never decode JSON)
``meta``   :class:`ResponseMeta` as JSON: model, deployment, upstream id, parent, chain links
``input``  the turn's input items as a JSON array, every item with an ``id``
``output`` the turn's output items as a JSON array (messages, function calls, reasoning...)
``body``   the full Response object as JSON, with ``"output": []`` (``output`` is spliced in
           on read, so the output is stored once)
========== ===================================================================================

**Chains.** A turn stores only its own items; a chain is rebuilt by following links. So that a
chain of any length is listed in at most two pipelined reads, ancestors are grouped in blocks
of :data:`BLOCK` responses. A record keeps ``block`` (its ancestors inside the current block,
oldest first) and ``tails`` (the last response of every earlier full block). The ancestors of
``p`` are then ``t.block + [t]`` for each tail ``t`` and ``p.block``: read ``p``, then the tails'
metas in one pipeline, then every ancestor's items in one more. A record carries fewer than
``BLOCK + depth / BLOCK`` ids however long its chain grows.

**Histories.** A replay does not read the records one by one: each record also names a list
``<prefix>resphist:{rh:<list>}`` holding the chain's turns in order, each as a replay sends it
(:class:`HistoryTurn`), and its own position in it (``history``, ``history_length``). A child
is appended to its parent's list while that list still ends at the parent (a script checks the
length); a chain that branched gives the child a new list with a copy of the parent's part. A
follow-up reads its chain with one ``LRANGE`` and checks its ancestors with one ``EXISTS``,
however deep the chain; a record without a complete list is read record by record as above.

**Input items.** ``input_items`` lists what a response was generated from, as OpenAI
describes the endpoint ("the items used to generate this response"): each ancestor's input and
output, then the response's own input; instructions are never items.

**Lifetime.** A response expires ``ttl`` seconds after it was created, unless a chain still
needs it: reading a parent to continue from it extends the parent to ``ttl + slack``, and every
``slack / 2`` seconds of chain activity every ancestor is extended the same way
(``chain_touched_at`` records when). Hence while a response lives, every response its chain needs
lives too, and a chain nobody continues is gone ``ttl + slack`` after its last turn at most.
Every key is written with its TTL by one script, so nothing is ever stored without one.

**Writing a turn.** The record and its turn's place in a history list lie in two slots (the
record's and the list's): :meth:`ResponseStore.save_turn` sends the list's script and the
record's in one pipeline, one round trip, the record naming the place its turn takes when the
chain did not branch. When it did (the list went on past the parent), the list's script hands
the parent's part back and the child's own list and its record are written in a second round
trip. A record may thus name, for a moment (or for good, when that second write failed), a place
its turn does not hold: every reader and appender checks that the list ends with the turn of
the record it starts from. The Response the client then gets is the stored body with the
stored output spliced back (:class:`Saved`): it is not encoded a second time.

**Connections.** On one server the per-turn calls (a parent's read, a turn's writes) may go over
a shared pipelined connection (``ResponseStore(shared=...)``, ``gateway/redis/multiplexed.py``):
a turn's two scripts are then one write on it, without redis-py's pool, lock and timeouts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Sequence
from typing import Any, NamedTuple, Protocol

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

# Responses per chain block (see the module docstring). Changing it is safe: links are always
# derived from the parent's own lists.
BLOCK = 64

_ENCODER = msgspec.json.Encoder()
_ITEMS = msgspec.json.Decoder(list[dict[str, Any]])
_OBJECT = msgspec.json.Decoder(dict[str, Any])

F_OWNER = b"owner"
F_META = b"meta"
F_INPUT = b"input"
F_OUTPUT = b"output"
F_BODY = b"body"
_EMPTY_OUTPUT = b'"output":[]'


class ResponseMeta(msgspec.Struct, frozen=True, kw_only=True):
    """What the gateway knows about a stored response besides its items."""

    id: str
    owner: str
    model: str  # the public model the client asked for
    deployment: str  # "provider/upstream_model" that produced it
    api: str  # what that upstream speaks: chat | responses | anthropic
    status: str  # completed | incomplete | failed
    created_at: int
    upstream_id: str | None = None  # the upstream's id, when the upstream stored it too
    parent: str | None = None
    depth: int = 0  # number of ancestors
    block: tuple[str, ...] = ()
    tails: tuple[str, ...] = ()
    chain_touched_at: float = 0.0
    # Indexes of input items whose ``id`` the gateway minted (not sent upstream on replay).
    minted: tuple[int, ...] = ()
    # The ``call_id`` of every function call in the output: a follow-up must answer them all.
    calls: tuple[str, ...] = ()
    # About how many tokens of history a follow-up carries (for the context-window check).
    context_tokens: int = 0
    # The materialized history this response ends: the list ``history`` holds, in order, one
    # :class:`HistoryTurn` per response of the chain; this one is its ``history_length``-th.
    history: str | None = None
    history_length: int = 0

    def ancestors_known(self) -> tuple[str, ...]:
        """The chain links this record holds itself: its tails and its block."""
        return (*self.tails, *self.block)

    def child_links(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """``(block, tails)`` of a response continuing from this one."""
        if len(self.block) + 1 >= BLOCK:
            return (), (*self.tails, self.id)
        return (*self.block, self.id), self.tails


_META = msgspec.json.Decoder(ResponseMeta)


class Ancestor(msgspec.Struct, frozen=True):
    """One ancestor's contribution to a chain's history."""

    meta: ResponseMeta
    input: list[dict[str, Any]]
    output: list[dict[str, Any]]


class HistoryTurn(msgspec.Struct, frozen=True, array_like=True):
    """One response's part of a chain's history: its input (each item with an id; ``minted``
    lists the ids the gateway gave) and its output."""

    id: str
    input: list[dict[str, Any]]
    output: list[dict[str, Any]]
    minted: tuple[int, ...] = ()


_TURN = msgspec.json.Decoder(HistoryTurn)


def _turn_head(response_id: str) -> bytes:
    """How the history element of ``response_id``'s turn begins (a :class:`HistoryTurn` is
    encoded as an array, its id first)."""
    return b"[" + _ENCODER.encode(response_id) + b","


class Saved(NamedTuple):
    """A turn as written: its record's meta, and the Response's JSON as the client gets it
    (None when it could not be had from what was written)."""

    meta: ResponseMeta
    response_json: bytes | None


class ChainBroken(Exception):
    """An ancestor of the requested parent is gone (deleted or expired)."""

    def __init__(self, missing: str) -> None:
        super().__init__(missing)
        self.missing = missing


class NewRecord(msgspec.Struct, frozen=True, kw_only=True):
    meta: ResponseMeta
    input: list[dict[str, Any]]
    output: list[dict[str, Any]]
    body: dict[str, Any]  # the Response object (its output is not stored twice)


def _placed(meta: ResponseMeta, placed: tuple[str, int] | None) -> ResponseMeta:
    """``meta`` naming ``placed``: its history list and its length there (None: no list)."""
    history, length = placed if placed is not None else (None, 0)
    if meta.history == history and meta.history_length == length:
        return meta
    return msgspec.structs.replace(meta, history=history, history_length=length)


class _StoredRecord(NamedTuple):
    """A record's key, TTL, meta and fields as written (``owner``, ``input``, ``output``,
    ``body``: encoded once, whatever place in a history its meta names); ``whole``: the body
    without its output is the Response with ``"output": []`` for the output list it had."""

    key: str
    ttl: int
    meta: ResponseMeta
    fields: tuple[bytes, bytes, bytes, bytes]
    whole: bool

    def response_json(self) -> bytes | None:
        """The Response object's JSON as the client gets it: the stored body with the stored
        output spliced back in (byte for byte what encoding the Response gives, the keys in
        the same order). None when the body does not show where: the output must be the one
        ``"output":[]`` in it (a JSON string cannot hold those bytes unescaped)."""
        body, output = self.fields[3], self.fields[2]
        if not self.whole or body.count(_EMPTY_OUTPUT) != 1:
            return None
        return body.replace(_EMPTY_OUTPUT, b'"output":' + output, 1)

    def call(self, meta: ResponseMeta) -> ScriptCall:
        owner, items_in, items_out, body = self.fields
        return ScriptCall(
            _SAVE, self.key, (self.ttl, owner, _ENCODER.encode(meta), items_in, items_out, body)
        )

    def placed(self, placed: tuple[str, int] | None) -> ScriptCall:
        """The write with the meta naming ``placed``: its history list and place there."""
        return self.call(_placed(self.meta, placed))


class Script:
    """A Lua script run by SHA, loaded on first use (no client-side state)."""

    __slots__ = ("sha", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def run(self, redis: Commands, keys: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            return await redis.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await redis.execute_command("EVAL", self.source, len(keys), *keys, *args)


class Commands(Protocol):
    """What the store's scripts are run on: redis-py's client, or a shared connection."""

    def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Awaitable[Any]: ...

    def execute_command(self, *args: Any) -> Awaitable[Any]: ...


class SharedConnection(Commands, Protocol):
    """A shared, pipelined connection to one server (``gateway/redis/multiplexed.py``): a
    command costs no pool, lock or timeout of its own, and a batch is one write."""

    async def pipeline_execute(self, commands: Sequence[Sequence[Any]]) -> list[Any]: ...


class ScriptCall(NamedTuple):
    """One script on one key, to run beside others (:func:`run_scripts`)."""

    script: Script
    key: str
    args: Sequence[Any]

    def command(self, name: str, script: str) -> tuple[Any, ...]:
        return (name, script, 1, self.key, *self.args)


async def run_scripts(
    redis: aioredis.Redis, calls: Sequence[ScriptCall], shared: SharedConnection | None = None
) -> list[Any]:
    """Run one-key scripts in one round trip: one pipeline, not a transaction (their keys may lie
    in different Cluster slots, which the cluster client sends to their nodes); each script is
    atomic on its own key. ``shared``: a shared connection to send them on instead of a
    pipeline of ``redis``'s. A script the server does not hold is sent again whole; an error
    reply is raised once every call has run."""
    if shared is None and len(calls) == 1:
        call = calls[0]
        return [await call.script.run(redis, [call.key], call.args)]
    results = await _batch(redis, shared, [call.command("EVALSHA", call.script.sha) for call in calls])
    unknown = [index for index, result in enumerate(results) if isinstance(result, NoScriptError)]
    if unknown:
        again = [calls[index].command("EVAL", calls[index].script.source) for index in unknown]
        for index, result in zip(unknown, await _batch(redis, shared, again), strict=True):
            results[index] = result
    for result in results:
        if isinstance(result, Exception):
            raise result
    return results


async def _batch(
    redis: aioredis.Redis, shared: SharedConnection | None, commands: list[tuple[Any, ...]]
) -> list[Any]:
    """The replies of ``commands`` sent together, an error reply as its exception."""
    if shared is not None:
        return await shared.pipeline_execute(commands)
    pipe = redis.pipeline(transaction=False)
    for command in commands:
        pipe.execute_command(*command)
    replies: list[Any] = await pipe.execute(raise_on_error=False)
    return replies


# Read a parent for a follow-up: only for its owner, and extend its TTL (never shorten it).
_READ_PARENT = Script(
    """
local v = redis.call('HMGET', KEYS[1], 'owner', 'meta')
if not v[1] or v[1] ~= ARGV[1] then return false end
if redis.call('TTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return v[2]
"""
)

# Add one turn to a history list if it still ends at the new turn's parent: its length is the
# parent's place in it and its last element is the parent's turn (ARGV[4]: how that element
# begins). Else, when the list still holds the parent's part, that part (for the new turn's own
# copy: the chain branched at the parent); else 0. The list lives as long as its chain is in use.
_APPEND = Script(
    """
local length = tonumber(ARGV[1])
local head = ARGV[4]
if redis.call('LLEN', KEYS[1]) == length then
  local last = redis.call('LINDEX', KEYS[1], -1)
  if last and string.sub(last, 1, #head) == head then
    redis.call('RPUSH', KEYS[1], ARGV[2])
    redis.call('EXPIRE', KEYS[1], ARGV[3])
    return 1
  end
  return 0
end
local part = redis.call('LRANGE', KEYS[1], 0, length - 1)
if #part == length and string.sub(part[length], 1, #head) == head then return part end
return 0
"""
)

# A new history list: the turns ARGV[2..] in order, and its TTL ARGV[1]. Pushed 1000 at a time
# (Lua's unpack has a stack limit; a branch's copy may hold thousands of turns).
_START = Script(
    """
for i = 2, #ARGV, 1000 do
  redis.call('RPUSH', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""
)

# Write one record's fields and its TTL (one key: nothing is ever stored without a TTL).
_SAVE = Script(
    """
redis.call('HSET', KEYS[1], 'owner', ARGV[2], 'meta', ARGV[3], 'input', ARGV[4], 'output', ARGV[5], 'body', ARGV[6])
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""
)

# Delete a response for its owner; returns its meta (false when absent or foreign).
_DELETE = Script(
    """
local v = redis.call('HMGET', KEYS[1], 'owner', 'meta')
if not v[1] or v[1] ~= ARGV[1] then return false end
redis.call('DEL', KEYS[1])
return v[2]
"""
)


class ResponseStore:
    """Reads and writes response records. Cheap to build: it only holds references."""

    __slots__ = ("_prefix", "_redis", "_shared", "slack", "ttl")

    def __init__(
        self, redis: aioredis.Redis, *, prefix: str, ttl: int, shared: SharedConnection | None = None
    ) -> None:
        self._redis = redis
        # The per-turn calls (a parent's read, a turn's writes) go over ``shared`` when given.
        self._shared = shared
        self._prefix = prefix
        self.ttl = ttl
        self.slack = max(ttl // 10, 1)

    @property
    def prefix(self) -> str:
        return self._prefix

    def key(self, response_id: str) -> str:
        return f"{self._prefix}resp:{{{response_id}}}"

    def history_key(self, history_id: str) -> str:
        return f"{self._prefix}resphist:{{rh:{history_id}}}"

    @property
    def extended_ttl(self) -> int:
        return self.ttl + self.slack

    def touch_due(self, meta: ResponseMeta, now: float) -> bool:
        """Whether continuing from ``meta`` must extend every ancestor's TTL now."""
        return bool(meta.ancestors_known()) and now - meta.chain_touched_at >= self.slack / 2

    # -- follow-ups -------------------------------------------------------------------------

    async def read_parent(self, response_id: str, owner: str) -> ResponseMeta | None:
        """The parent's meta for ``owner`` (None when absent or someone else's); extends its TTL.

        Only the small meta travels: a follow-up on a native upstream needs nothing else.
        """
        commands: Commands = self._shared or self._redis
        found = await _READ_PARENT.run(commands, [self.key(response_id)], [owner, self.extended_ttl])
        return _META.decode(found) if found else None

    async def _ancestor_ids(self, parent: ResponseMeta, *, strict: bool = True) -> list[str]:
        """Every ancestor of ``parent`` and ``parent`` itself, oldest first.

        A tail that is gone takes its block with it: ``strict`` raises :class:`ChainBroken`,
        otherwise the block is left out.
        """
        ids: list[str] = []
        if parent.tails:
            pipe = self._redis.pipeline(transaction=False)
            for tail in parent.tails:
                pipe.hget(self.key(tail), "meta")
            for tail, raw in zip(parent.tails, await pipe.execute(), strict=True):
                if raw is None:
                    if strict:
                        raise ChainBroken(tail)
                    continue
                ids.extend(_META.decode(raw).block)
                ids.append(tail)
        ids.extend(parent.block)
        ids.append(parent.id)
        return ids

    async def touch_chain(self, parent: ResponseMeta) -> None:
        """Extend the TTL of every ancestor of ``parent`` that is still there."""
        ids = await self._ancestor_ids(parent, strict=False)
        pipe = self._redis.pipeline(transaction=False)
        for response_id in ids:
            pipe.expire(self.key(response_id), self.extended_ttl)
        if parent.history is not None:
            pipe.expire(self.history_key(parent.history), self.extended_ttl)
        await pipe.execute()

    # -- materialized histories -------------------------------------------------------------

    async def read_history(self, parent: ResponseMeta) -> list[HistoryTurn] | None:
        """Every turn from the chain's root to ``parent``, oldest first, from the history list
        ``parent`` ends: one read of the list and one existence check of all its responses,
        whatever the chain's depth. None when ``parent`` has no complete list (read the chain
        with :meth:`read_chain` instead). Raises :class:`ChainBroken` when an ancestor is gone.
        """
        raw = await self._history_elements(parent)
        if raw is None:
            return None
        turns = [_TURN.decode(element) for element in raw]
        if turns[-1].id != parent.id:
            return None
        ancestors = [self.key(turn.id) for turn in turns[:-1]]
        if ancestors and await self._redis.exists(*ancestors) != len(ancestors):
            pipe = self._redis.pipeline(transaction=False)
            for key in ancestors:
                pipe.exists(key)
            for turn, found in zip(turns, await pipe.execute(), strict=False):
                if not found:
                    raise ChainBroken(turn.id)
        return turns

    async def _history_elements(self, parent: ResponseMeta) -> list[bytes] | None:
        if parent.history is None or parent.history_length < 1:
            return None
        key = self.history_key(parent.history)
        raw: list[Any] = await self._redis.lrange(key, 0, parent.history_length - 1)
        return raw if len(raw) == parent.history_length else None

    async def extend_history(
        self, parent: ResponseMeta | None, own: HistoryTurn, known: Sequence[HistoryTurn] | None = None
    ) -> tuple[str, int] | None:
        """Add ``own`` (a child of ``parent``) to a history list: the one ``parent`` ends when it
        still ends there, else a new list holding a copy of ``parent``'s part (the chain branched
        at ``parent``), or ``known`` when ``parent`` has no list. Returns the list and ``own``'s
        length in it; None when ``parent``'s history can no longer be had (a follow-up then reads
        the chain record by record, and finds what is missing)."""
        return await self._place(parent, own, known, None)

    async def save_turn(
        self,
        record: NewRecord,
        parent: ResponseMeta | None,
        own: HistoryTurn,
        known: Sequence[HistoryTurn] | None = None,
    ) -> Saved:
        """Write ``record`` and add ``own``, its turn, to a history list as
        :meth:`extend_history` does, the record naming its place in the list. One round trip
        (the list's script and the record's, each on its own slot) when the chain did not
        branch; a branch writes the child's copy and the record again. Returns the meta written
        and the Response's JSON as the client gets it, from the fields written."""
        stored = self._stored(record)
        placed = await self._place(parent, own, known, stored)
        return Saved(_placed(record.meta, placed), stored.response_json())

    async def _place(
        self,
        parent: ResponseMeta | None,
        own: HistoryTurn,
        known: Sequence[HistoryTurn] | None,
        stored: _StoredRecord | None,
    ) -> tuple[str, int] | None:
        """Place ``own`` in a history list, and write ``stored`` (when given) with its place.

        A parent with a list is appended to in the same round trip as the record is written,
        the record naming the place it expects; when the list no longer ends at the parent, the
        child gets a list of its own and the record is written again with that place. (Until
        then it names a place where its turn is not, which readers and appenders see: the list
        must end with the turn of the record they start from.)"""
        element = _ENCODER.encode(own)
        ttl = self.extended_ttl
        first: ScriptCall | None
        result: Any = None
        if parent is None:
            first, placed = self._start(own.id, [element]), (own.id, 1)
        elif parent.history is not None and parent.history_length >= 1:
            length = parent.history_length
            args = (length, element, ttl, _turn_head(parent.id))
            first, placed = (
                ScriptCall(_APPEND, self.history_key(parent.history), args),
                (parent.history, length + 1),
            )
        else:
            first, placed = None, None
        if first is not None:
            calls = [first] if stored is None else [first, stored.placed(placed)]
            result = (await run_scripts(self._redis, calls, self._shared))[0]
            if result == 1:
                return placed
        assert parent is not None
        # The chain branched at ``parent`` (its list went on), or ``parent`` has no list.
        elements = result if isinstance(result, list) else None
        if elements is None:
            elements = await self._known_elements(parent, known)
        calls = []
        placed = None
        if elements is not None:
            calls.append(self._start(own.id, [*elements, element]))
            placed = own.id, len(elements) + 1
        if stored is not None:
            calls.append(stored.placed(placed))
        if calls:
            await run_scripts(self._redis, calls, self._shared)
        return placed

    async def _known_elements(
        self, parent: ResponseMeta, known: Sequence[HistoryTurn] | None
    ) -> list[bytes] | None:
        """``parent``'s part of its chain as history elements: ``known``, else read record by
        record (None when an ancestor is gone)."""
        if known is None:
            try:
                chain = await self.read_chain(parent)
            except ChainBroken:
                return None
            known = [HistoryTurn(t.meta.id, t.input, t.output, t.meta.minted) for t in chain]
        return [_ENCODER.encode(turn) for turn in known]

    def _start(self, history_id: str, elements: list[bytes]) -> ScriptCall:
        return ScriptCall(_START, self.history_key(history_id), (self.extended_ttl, *elements))

    async def read_chain(self, parent: ResponseMeta) -> list[Ancestor]:
        """Every turn from the chain's root to ``parent``, oldest first.

        Raises :class:`ChainBroken` when one of them is gone.
        """
        ids = await self._ancestor_ids(parent)
        pipe = self._redis.pipeline(transaction=False)
        for response_id in ids:
            pipe.hmget(self.key(response_id), ["owner", "meta", "input", "output"])
        turns: list[Ancestor] = []
        owner = parent.owner.encode()
        for response_id, found in zip(ids, await pipe.execute(), strict=True):
            found_owner, meta, items_in, items_out = found
            if found_owner != owner or meta is None or items_in is None or items_out is None:
                raise ChainBroken(response_id)
            turns.append(Ancestor(_META.decode(meta), _ITEMS.decode(items_in), _ITEMS.decode(items_out)))
        return turns

    # -- writing ----------------------------------------------------------------------------

    async def save(self, record: NewRecord) -> None:
        """Write one record and its TTL atomically (one key, one script)."""
        await run_scripts(self._redis, [self._stored(record).call(record.meta)], self._shared)

    def _stored(self, record: NewRecord) -> _StoredRecord:
        body = record.body
        output = body.get("output")
        if "output" in body:
            body = {**body, "output": []}
        fields = (
            record.meta.owner.encode(),
            _ENCODER.encode(record.input),
            _ENCODER.encode(record.output),
            _ENCODER.encode(body),
        )
        whole = isinstance(output, list) and output == record.output
        return _StoredRecord(self.key(record.meta.id), self.ttl, record.meta, fields, whole)

    # -- reading for the client -------------------------------------------------------------

    async def response_body(self, response_id: str, owner: str) -> dict[str, Any] | None:
        """The stored Response object, or None (absent or someone else's)."""
        got = await self._redis.hmget(self.key(response_id), ["owner", "body", "output"])
        stored_owner, body, output = got
        if stored_owner != owner.encode() or body is None or output is None:
            return None
        response = _OBJECT.decode(body)
        response["output"] = _ITEMS.decode(output)
        return response

    async def input_items(self, response_id: str, owner: str) -> list[dict[str, Any]] | None:
        """Every item the response was generated from, oldest first: each ancestor's input and
        output, then its own input (instructions are not items). None: absent or someone else's.

        Ancestors that are gone (deleted, expired) are left out.
        """
        got = await self._redis.hmget(self.key(response_id), ["owner", "meta", "input"])
        stored_owner, meta_raw, items = got
        if stored_owner != owner.encode() or meta_raw is None or items is None:
            return None
        meta = _META.decode(meta_raw)
        context: list[dict[str, Any]] = []
        if meta.parent is not None:
            ancestors = (await self._ancestor_ids(meta, strict=False))[:-1]
            pipe = self._redis.pipeline(transaction=False)
            for ancestor in ancestors:
                pipe.hmget(self.key(ancestor), ["owner", "input", "output"])
            for found_owner, found_input, found_output in await pipe.execute():
                if found_owner == stored_owner and found_input is not None and found_output is not None:
                    context.extend(_ITEMS.decode(found_input))
                    context.extend(_ITEMS.decode(found_output))
        context.extend(_ITEMS.decode(items))
        return context

    async def delete(self, response_id: str, owner: str) -> ResponseMeta | None:
        """Delete for ``owner``; the deleted record's meta, or None (absent or someone else's)."""
        found = await _DELETE.run(self._redis, [self.key(response_id)], [owner])
        return _META.decode(found) if found else None

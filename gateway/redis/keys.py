"""Key names and Redis Cluster slots: the hash-tag rule every key of the gateway follows.

A Redis Cluster splits the key space into 16 384 slots; a Lua script, a ``MULTI`` transaction and
a multi-key command (``XREAD`` over several streams, ``MGET``...) may only touch keys of ONE slot
(else ``CROSSSLOT``). A key's slot is CRC16 of its hash tag, the part between the first ``{`` and
the next ``}``, or of the whole name when it has none. Hence the rule, for anyone adding a key:

1. Every key name is ``<prefix><kind>...`` with exactly one hash tag ``{<owner>}``, where the
   owner is the unit that one script or transaction works on. Keys that one script, one
   ``MULTI`` or one multi-key command touches carry the same tag, so they share a slot, and
   nothing else: a tag shared by unrelated records piles them on one node.
2. A key that is only ever touched alone (one command, or a non-transactional pipeline, which
   the cluster client splits per node) may stay untagged: the indexes ``idx:keys``,
   ``chats:jobs``, the ``usage`` and ``audit`` streams, the org-wide rollups.
3. A Lua script receives every key it touches in ``KEYS`` (never a name built inside the
   script), so the client routes it to the slot's node; ``tests/unit/redis`` runs every script
   with the keys of real calls and asserts one slot per call.

The owners in use (``P`` is ``[redis] key_prefix``):

==========================  ==================================================================
tag                         keys
==========================  ==================================================================
``{t:<team>}``/``{k:<kid>}`` the policy's enforcement root: a key in a team roots at its team,
                            a key without one at itself. Admission checks a key's AND its
                            team's limits in one script, so they must share a slot: every
                            counter of a team (and of its keys) lives in the team's slot. The
                            cost: one very busy team is one slot's (one primary's) load; split
                            it into several teams to spread it.
``{k:<kid>}``/``{t:<tid>}`` a key's or team's record (``P key:{k:<kid>}``, ``P team:{t:<tid>}``)
``{chats:<n>}``             a chat's hash, messages, queue and event stream, ``n`` = CRC32 of
                            the chat id mod :data:`CHAT_SHARDS`: every chat transition is one
                            script over the four, and the shared event reader needs one
                            blocking ``XREAD`` per slot, so chats live in a bounded number of
                            slots (and a process holds at most that many blocking reads)
``{<response id>}``         one stored Response (one hash: chains are read by pipelines)
``{<provider>}``            one provider's cached model listing
``{cb:<deployment>}``       a deployment's circuit breaker (one script per state change)
==========================  ==================================================================

A new feature picks its owner the same way: what does one script or ``MULTI`` touch? Tag those
keys with that owner's id, and prefix the tag with the feature (``{cb:...}``, ``{k:...}``) so two
features never share slots by accident.
"""

from __future__ import annotations

import zlib

from redis.crc import key_slot

# Slots the chats are spread over (see the module docstring). Part of the key layout: changing it
# moves every chat to other key names.
CHAT_SHARDS = 32


def slot(key: str | bytes) -> int:
    """The Redis Cluster slot of ``key`` (its hash tag's CRC16 mod 16384)."""
    return int(key_slot(key.encode() if isinstance(key, str) else key))


def hash_tag(key: str) -> str:
    """The part of ``key`` that decides its slot: the hash tag, else the whole name."""
    start = key.find("{")
    if start >= 0:
        end = key.find("}", start + 1)
        if end > start + 1:
            return key[start + 1 : end]
    return key


def chat_shard(chat_id: str) -> str:
    """The hash tag of a chat's keys: ``chats:<n>``, ``n`` fixed by the chat id."""
    return f"chats:{zlib.crc32(chat_id.encode()) % CHAT_SHARDS}"

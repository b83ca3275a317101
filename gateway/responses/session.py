"""A WebSocket connection's memory of its last responses.

In WebSocket mode a client continues each turn with ``previous_response_id`` and only the new
input. When a response was not stored (``store: false``), the connection itself keeps what a
follow-up needs (its record and the chain's history), so the chain continues without a store
lookup. It keeps the last response of each chain (a response replaces its parent), up to
:data:`KEPT` chains (the lanes of one socket run several): the oldest goes first. A follow-up
that fails forgets the response it tried to continue (the client must start over, as it would
after a reconnect), and a new connection starts empty, so continuing an unstored response from
it is ``previous_response_not_found``.
"""

from __future__ import annotations

from collections import OrderedDict

from gateway.responses.store import HistoryTurn, ResponseMeta

KEPT = 16


class LastResponse:
    """The connection-local cache: responses, each with its record and the history it ends."""

    __slots__ = ("_kept",)

    def __init__(self) -> None:
        self._kept: OrderedDict[str, tuple[ResponseMeta, list[HistoryTurn]]] = OrderedDict()

    def lookup(self, response_id: str, owner: str) -> tuple[ResponseMeta, list[HistoryTurn]] | None:
        """The unstored response ``response_id`` of ``owner``, when it is kept."""
        found = self._kept.get(response_id)
        if found is None or found[0].owner != owner:
            return None
        return found

    def remember(self, meta: ResponseMeta, history: list[HistoryTurn]) -> None:
        kept = self._kept
        if meta.parent is not None:
            kept.pop(meta.parent, None)
        kept[meta.id] = (meta, history)
        while len(kept) > KEPT:
            kept.popitem(last=False)

    def forget(self, response_id: str | None) -> None:
        if response_id is not None:
            self._kept.pop(response_id, None)

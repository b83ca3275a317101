"""A WebSocket connection's memory of its last response.

In WebSocket mode a client continues each turn with ``previous_response_id`` and only the new
input. When the last response was not stored (``store: false``), the connection itself keeps
what a follow-up needs (its record and the chain's history), so the chain continues without a
store lookup. Only the last response is kept; a follow-up that fails forgets the response it
tried to continue (the client must start over, as it would after a reconnect), and a new
connection starts empty, so continuing an unstored response from it is
``previous_response_not_found``.
"""

from __future__ import annotations

from gateway.responses.store import HistoryTurn, ResponseMeta


class LastResponse:
    """The connection-local cache: one response, its record and the history it ends."""

    __slots__ = ("_history", "_meta")

    def __init__(self) -> None:
        self._meta: ResponseMeta | None = None
        self._history: list[HistoryTurn] = []

    def lookup(self, response_id: str, owner: str) -> tuple[ResponseMeta, list[HistoryTurn]] | None:
        """The unstored response ``response_id`` of ``owner``, when it is the one kept."""
        meta = self._meta
        if meta is None or meta.id != response_id or meta.owner != owner:
            return None
        return meta, self._history

    def remember(self, meta: ResponseMeta, history: list[HistoryTurn]) -> None:
        self._meta, self._history = meta, history

    def forget(self, response_id: str | None) -> None:
        if self._meta is not None and self._meta.id == response_id:
            self._meta, self._history = None, []

"""The request journal: what every dialect route received, in order, bounded."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

import msgspec

_DECODER = msgspec.json.Decoder()


class JournalEntry(msgspec.Struct, kw_only=True):
    """One received request.

    seq: increases by one per request for the life of the app (clearing does not restart it).
    headers: lower-case names; repeated headers are joined with ", ".
    query: the last value wins for a repeated parameter.
    body: the decoded JSON body; the raw text when it is not JSON; None when empty.
    model: the body's `model` when it is a string.
    """

    seq: int
    received_at: float
    method: str
    path: str
    query: dict[str, str] = {}
    headers: dict[str, str] = {}
    body: Any = None
    model: str | None = None


class JournalPage(msgspec.Struct, kw_only=True):
    """The `GET /_fake/requests` answer. `last_seq` is the newest seq ever assigned (0 before any)."""

    data: list[JournalEntry]
    last_seq: int


def decode_body(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return _DECODER.decode(raw)
    except msgspec.DecodeError:
        return raw.decode("utf-8", errors="replace")


class Journal:
    def __init__(self, limit: int) -> None:
        self._entries: deque[JournalEntry] = deque(maxlen=limit)
        self._last_seq = 0

    @property
    def last_seq(self) -> int:
        return self._last_seq

    def __len__(self) -> int:
        return len(self._entries)

    def record(
        self,
        *,
        method: str,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        raw_body: bytes,
    ) -> JournalEntry:
        self._last_seq += 1
        body = decode_body(raw_body)
        model = body.get("model") if isinstance(body, dict) else None
        entry = JournalEntry(
            seq=self._last_seq,
            received_at=time.time(),
            method=method,
            path=path,
            query=query,
            headers=headers,
            body=body,
            model=model if isinstance(model, str) else None,
        )
        self._entries.append(entry)
        return entry

    def select(
        self,
        *,
        path: str | None = None,
        model: str | None = None,
        since: int | None = None,
        limit: int | None = None,
    ) -> list[JournalEntry]:
        """Entries in arrival order; `since` keeps those with a larger seq; `limit` keeps the newest."""
        found = [
            entry
            for entry in self._entries
            if (path is None or entry.path == path)
            and (model is None or entry.model == model)
            and (since is None or entry.seq > since)
        ]
        if limit is not None:
            found = found[-limit:] if limit > 0 else []
        return found

    def clear(self) -> int:
        count = len(self._entries)
        self._entries.clear()
        return count

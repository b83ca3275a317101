"""The Responses store: what `store: true` keeps, for retrieval, deletion, input items and chaining.

Each stored response keeps its whole context (the items of the chain it continued plus its own
input) next to its output, so chaining onto it rebuilds the history without walking the ancestors.
`instructions` are never part of the context: they do not carry over to a response that chains
on this one with `previous_response_id`.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from fake_providers.openai.responses_wire import ResponseObject


@dataclass(slots=True, frozen=True)
class StoredResponse:
    response: ResponseObject
    context: list[Any]  # the items the model read (chain history and this input), instructions excluded
    input_items: list[Any]  # this request's own input items, each with an `id`
    output_items: list[Any]  # the output as plain JSON items, ready to be replayed as input


class ResponseStore:
    """Stored responses by id; the oldest are dropped past `limit`."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._responses: OrderedDict[str, StoredResponse] = OrderedDict()

    def put(self, stored: StoredResponse) -> None:
        self._responses[stored.response.id] = stored
        while len(self._responses) > self._limit:
            self._responses.popitem(last=False)

    def get(self, response_id: str) -> StoredResponse | None:
        return self._responses.get(response_id)

    def delete(self, response_id: str) -> bool:
        return self._responses.pop(response_id, None) is not None

    def ids(self) -> list[str]:
        return list(self._responses)

    def clear(self) -> int:
        count = len(self._responses)
        self._responses.clear()
        return count

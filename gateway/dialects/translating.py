"""A Responses request on an upstream of another dialect (Chat Completions, Messages).

The request is translated before it is sent; :class:`TranslatedResponsesCall` turns the
upstream's answer back into the client's Response object around the turn's
:class:`~gateway.translate.responses_answer.ResponseShell`, and a :class:`TranslatingConverter`
turns its stream into Responses events with a translator (``ChatToResponsesStream`` and its
kin), the terminal event held back (:func:`split_terminal`). Nothing is stored upstream.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from typing import Any, Generic, Protocol, TypeVar

import httpx
import msgspec

from gateway.clock import Clock
from gateway.dialects.base import TERMINAL, Converter, Emit, Event, Item, Produced, ResponsesTurn, translated
from gateway.translate import encode_event, encode_events
from gateway.translate.responses_answer import ResponseShell
from gateway.upstream.call import EventRoles
from gateway.upstream.committed import StreamTruncated
from gateway.upstream.failover import Attempt

_OBJECT = msgspec.json.Decoder(dict[str, Any])
Translation = Callable[[dict[str, Any], list[Item]], dict[str, Any]]


async def replayed(turn: ResponsesTurn, translation: Translation) -> dict[str, Any]:
    """The upstream request of ``turn`` (``translation`` of the client's request and its input
    items), with the whole conversation as its input: these upstreams hold none of it. A
    request the translation cannot express is the client's 400."""
    items = await turn.replay_input(for_responses=False)
    return translated(lambda: translation(turn.data, items))


def split_terminal(events: list[Event]) -> Emit:
    """Translated events as frames, the terminal one held back."""
    if not events:
        return _NOTHING
    if events[-1]["type"] in TERMINAL:
        return Emit(encode_events(events[:-1]), events[-1])
    if len(events) == 1:
        return Emit(encode_event(events[0]))
    return Emit(encode_events(events))


_NOTHING = Emit()


class TranslatedResponsesCall(abc.ABC):
    """A Responses request translated to another upstream dialect: the subclass turns the
    upstream's answer (:meth:`response`) and stream (:meth:`converter`) back into Responses
    around :meth:`shell`."""

    def __init__(
        self, attempt: Attempt, turn: ResponsesTurn, request: httpx.Request, roles: EventRoles, clock: Clock
    ) -> None:
        self.request = request
        self.roles = roles
        self._turn = turn
        self._clock = clock
        self._provider = attempt.upstream.classifier_key

    def shell(self) -> ResponseShell:
        turn = self._turn
        return ResponseShell(
            request=turn.data,
            response_id=turn.response_id,
            created_at=turn.created_at,
            ids=turn.ids,
            previous_response_id=turn.previous_response_id,
        )

    def now(self) -> int:
        return int(self._clock.now())

    def answer(self, content: bytes) -> Produced:
        """The upstream's JSON answer as the client's Response (with no upstream id: the
        upstream stored nothing)."""
        return Produced(self.response(_OBJECT.decode(content)), None)

    @abc.abstractmethod
    def response(self, answer: dict[str, Any]) -> dict[str, Any]:
        """The upstream's answer object as the client's Response object."""

    @abc.abstractmethod
    def converter(self) -> Converter: ...


class ResponsesTranslator(Protocol):
    """A stream translator to Responses events (``ChatToResponsesStream`` and its kin)."""

    def finish(self, *, completed_at: int | None = None) -> list[Event]: ...

    def fail(self, error_object: Mapping[str, Any]) -> list[Event]: ...


S = TypeVar("S", bound=ResponsesTranslator)


class TranslatingConverter(Generic[S]):
    """A :class:`~gateway.dialects.base.Converter` over a translator ``stream``; the subclass
    feeds it each event. A stream that ends before its terminal event was cut short."""

    def __init__(self, stream: S, *, provider: str, completed_at: Callable[[], int]) -> None:
        self._stream = stream
        self._provider = provider
        self._completed_at = completed_at
        self.upstream_id: str | None = None

    def end(self) -> Emit:
        raise StreamTruncated

    def fail(self, error: Mapping[str, Any]) -> Emit:
        return split_terminal(self._stream.fail(error))

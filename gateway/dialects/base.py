"""What an upstream dialect adapter provides, whatever the client's own dialect.

An :class:`UpstreamDialect` knows one upstream API (its path, its request bodies, its JSON
answers, what each event of its streams means) and turns each kind of client request into a
call on it:

* :meth:`UpstreamDialect.chat_call`: a Chat Completions request (``/v1/chat/completions``);
* :meth:`UpstreamDialect.responses_call`: a Responses request (``/v1/responses``), natively
  chained or replayed (:class:`ResponsesTurn` is what the Responses feature hands over);
* :meth:`UpstreamDialect.conversation_call`: a stateful chat's step, a conversation in Chat
  Completions messages read back as Chat Completions chunks (:class:`ChunkReader`);
* :meth:`UpstreamDialect.continuation_call`: the rest of a broken stream's answer, read back as
  Chat Completions chunks, whatever the client's dialect (:func:`prefilled`).

Every call object carries the ``httpx.Request`` to send and the stream's
:class:`~gateway.upstream.call.EventRoles`; the failover loop, the commit point and the
post-commit guard are the same for all of them. Each adapter subclasses :class:`UpstreamDialect`;
one that translates Responses requests to its own API builds its call on
:mod:`gateway.dialects.translating`.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, NamedTuple, Protocol, TypeVar, runtime_checkable

import httpx

from gateway.clock import Clock
from gateway.config import UpstreamApi
from gateway.errors.client import InvalidRequest
from gateway.translate import Ids, TranslationError
from gateway.translate.responses_answer import response_error
from gateway.upstream.call import EventRoles
from gateway.upstream.committed import Relay
from gateway.upstream.failover import Attempt
from gateway.upstream.relay import StreamTap
from gateway.upstream.sse import SSEEvent

T = TypeVar("T")
Item = dict[str, Any]
Event = dict[str, Any]


def translated(build: Callable[[], T]) -> T:
    """Run a dialect translation; a request it cannot express is the client's 400."""
    try:
        return build()
    except TranslationError as exc:
        raise InvalidRequest(exc.message, param=exc.param, code=exc.code) from exc


# -- Chat Completions requests ---------------------------------------------------------------


class ChatCall(Protocol):
    """One Chat Completions request on one deployment."""

    @property
    def request(self) -> httpx.Request: ...

    @property
    def roles(self) -> EventRoles: ...

    def answer(self, content: bytes) -> bytes:
        """The upstream's JSON answer as a Chat Completion."""
        ...

    def relay(self, clock: Clock, *, include_usage: bool, tap: StreamTap | None) -> Relay:
        """The committed stream as Chat Completions chunks. ``include_usage``: the client asked
        for the usage chunk; ``tap`` sees a passthrough stream go by."""
        ...


# -- Stateful chats ----------------------------------------------------------------------------


class ChunkReader(Protocol):
    """A conversation step's stream read as Chat Completions chunks (decoded)."""

    finished: bool  # the answer is complete (read no further)
    response_id: str | None  # the upstream's id of a stored answer (chainable dialects)

    def feed(self, event: SSEEvent, payload: dict[str, Any] | None) -> list[dict[str, Any]]:
        """The chunks for one event. Raises ``StreamFailure`` for an in-band failure."""
        ...

    def end(self) -> list[dict[str, Any]]:
        """The upstream ended. Raises ``StreamTruncated`` when the answer is not complete."""
        ...


class ConversationCall(Protocol):
    @property
    def request(self) -> httpx.Request: ...

    @property
    def roles(self) -> EventRoles: ...

    def reader(self, clock: Clock) -> ChunkReader: ...


def prefilled(chat: Mapping[str, Any], text: str, *, continue_final_message: bool) -> dict[str, Any]:
    """The Chat Completions request ``chat`` asking for the rest of an answer that starts with
    ``text``: ``text`` (without trailing whitespace, which Anthropic refuses in a prefill) as a
    trailing assistant message, streamed with its usage, one choice. ``continue_final_message``
    adds the vLLM-style flags (``continue_final_message: true``, ``add_generation_prompt:
    false``) that make an openai-compatible server continue that message instead of answering
    it."""
    body = {k: v for k, v in chat.items() if k not in ("n", "stream_options")}
    body["stream"] = True
    body["stream_options"] = {"include_usage": True}
    prefix = text.rstrip()
    if prefix:
        body["messages"] = [*chat.get("messages", ()), {"role": "assistant", "content": prefix}]
        if continue_final_message:
            body["continue_final_message"] = True
            body["add_generation_prompt"] = False
    return body


# -- Responses requests ------------------------------------------------------------------------


class ResponsesTurn(Protocol):
    """A ``POST /v1/responses`` in flight, as far as building its upstream calls goes."""

    @property
    def data(self) -> dict[str, Any]:
        """The request as the client sent it."""
        ...

    @property
    def response_id(self) -> str: ...

    @property
    def created_at(self) -> int: ...

    @property
    def previous_response_id(self) -> str | None:
        """The client's parent id (the gateway's own)."""
        ...

    @property
    def parent_upstream_id(self) -> str | None:
        """The upstream's own id of the parent (only a native chain sends it)."""
        ...

    @property
    def store(self) -> bool:
        """What the client asked for (answered back in the Response object)."""
        ...

    @property
    def upstream_store(self) -> bool:
        """What the upstream is told about storing."""
        ...

    @property
    def anthropic_max_tokens(self) -> int: ...

    @property
    def ids(self) -> Ids: ...

    async def replay_input(self, *, for_responses: bool) -> list[Item]:
        """The whole conversation for an upstream that holds none of it (``for_responses``:
        shaped for a Responses upstream, the new input as the client wrote it)."""
        ...


class Emit(NamedTuple):
    frames: bytes = b""  # send now
    final: Event | None = None  # the terminal event: record its response, then send it


class Converter(Protocol):
    """Upstream stream events in, Responses events for the client out (terminal held back)."""

    upstream_id: str | None  # the upstream's own id of the answer (stored natively), if any

    def event(self, event: SSEEvent, payload: dict[str, Any] | None) -> Emit: ...

    def end(self) -> Emit: ...

    def fail(self, error: Mapping[str, Any]) -> Emit: ...


@runtime_checkable
class Resumable(Protocol):
    """A converter whose answer a continuation can finish: it takes the rest as Chat chunks."""

    def resume(self, chunk: dict[str, Any]) -> Emit:
        """The Responses events for one Chat chunk of the continuation (terminal held back)."""
        ...

    def end(self) -> Emit: ...


class Produced(NamedTuple):
    """A finished answer: the client's Response object and the upstream's own id, if stored."""

    response: dict[str, Any]
    upstream_id: str | None


class ResponsesCall(Protocol):
    @property
    def request(self) -> httpx.Request: ...

    @property
    def roles(self) -> EventRoles: ...

    def answer(self, content: bytes) -> Produced: ...

    def converter(self) -> Converter: ...


TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})


def failure_events(
    response: Mapping[str, Any], output: list[dict[str, Any]], sequence_number: int, error: Mapping[str, Any]
) -> tuple[Event, Event]:
    """``error`` (nested and flat) then ``response.failed``, numbered from ``sequence_number``."""
    failed = dict(response)
    failed["status"] = "failed"
    failed["completed_at"] = None
    failed["error"] = response_error(error)
    failed["output"] = output
    failed["usage"] = None
    first: Event = {
        "type": "error",
        "code": error.get("code"),
        "message": str(error.get("message") or ""),
        "param": error.get("param"),
        "error": dict(error),
        "sequence_number": sequence_number,
    }
    return first, {"type": "response.failed", "response": failed, "sequence_number": sequence_number + 1}


# -- the adapter -------------------------------------------------------------------------------


class ConversationStep(NamedTuple):
    """A stateful chat's step: Chat Completions ``messages`` and function ``tools``; where the
    dialect :attr:`~UpstreamDialect.stores_responses`, the stored answer to chain from and
    whether to store this one."""

    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    previous_response_id: str | None
    store: bool


class UpstreamDialect(abc.ABC):
    """One upstream API's adapter (one instance serves every deployment that speaks it)."""

    api: ClassVar[UpstreamApi]
    # Answers can be stored upstream and continued by ``previous_response_id``.
    stores_responses: ClassVar[bool] = False

    @abc.abstractmethod
    def chat_call(self, attempt: Attempt, data: dict[str, Any], *, clock: Clock, ask_usage: bool) -> ChatCall:
        """``data``: the client's Chat Completions request. ``ask_usage``: ask the upstream
        for the streaming usage chunk (the relay's tap hides it from the client)."""

    def conversation_call(
        self,
        attempt: Attempt,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        *,
        previous_response_id: str | None,
        store: bool,
    ) -> ConversationCall:
        """A streamed step over Chat Completions ``messages`` and function ``tools``;
        ``previous_response_id`` only where :attr:`stores_responses`."""
        return self.conversation(attempt, ConversationStep(messages, tools, previous_response_id, store))

    @abc.abstractmethod
    def conversation(self, attempt: Attempt, step: ConversationStep) -> ConversationCall:
        """The streamed request of one :class:`ConversationStep` (see :meth:`conversation_call`)."""

    @abc.abstractmethod
    async def responses_call(
        self, attempt: Attempt, turn: ResponsesTurn, *, clock: Clock, native: bool
    ) -> ResponsesCall:
        """``native``: continue the parent stored upstream (only where :attr:`stores_responses`)."""

    @abc.abstractmethod
    def continuation_call(self, attempt: Attempt, chat: dict[str, Any], text: str) -> ConversationCall:
        """A streamed request for the rest of an answer to the Chat Completions request
        ``chat`` that starts with ``text`` (:func:`prefilled`), read back as Chat chunks."""

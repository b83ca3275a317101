"""Responses API over an Anthropic upstream: the two translator pairs, composed.

Requests go Responses -> Chat -> Anthropic; answers and streams go Anthropic -> Chat ->
Responses. Nothing here translates on its own; it only wires the pairs together so that callers
cannot forget a step (the ``include_usage`` chunk between the two streams, for one).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Unpack

from gateway.translate.anthropic_answer import chat_completion_from_anthropic
from gateway.translate.anthropic_chat import anthropic_request_from_chat
from gateway.translate.anthropic_context import AnthropicContext, SchemaRepair
from gateway.translate.anthropic_stream import AnthropicToChatStream
from gateway.translate.responses_answer import ResponseShell, response_from_chat_completion
from gateway.translate.responses_chat import chat_request_from_responses
from gateway.translate.responses_stream import ChatToResponsesStream, Event


def anthropic_request_from_responses(
    request: Mapping[str, Any],
    input_items: Sequence[Mapping[str, Any]],
    *,
    upstream_model: str,
    default_max_tokens: int,
    schema_repair: SchemaRepair | None = None,
    context: AnthropicContext | None = None,
) -> dict[str, Any]:
    """Responses request -> Anthropic Messages request (through Chat)."""
    chat = chat_request_from_responses(request, input_items)
    return anthropic_request_from_chat(
        chat,
        upstream_model=upstream_model,
        default_max_tokens=default_max_tokens,
        schema_repair=schema_repair,
        context=context,
    )


def response_from_anthropic_message(
    message: Mapping[str, Any],
    *,
    context: AnthropicContext | None = None,
    completed_at: int | None = None,
    **shell: Unpack[ResponseShell],
) -> dict[str, Any]:
    """Anthropic Message -> full Response object (through Chat)."""
    completion = chat_completion_from_anthropic(
        message,
        model=str(shell["request"].get("model")),
        completion_id="",
        created=shell["created_at"],
        context=context,
    )
    return response_from_chat_completion(completion, **shell, completed_at=completed_at)


class AnthropicToResponsesStream:
    """Anthropic stream events -> Responses events (through Chat chunks).

    Same life cycle as :class:`ChatToResponsesStream`; :meth:`feed` takes the Anthropic event
    name and data and raises :class:`gateway.translate.anthropic_stream.InbandError` on an
    ``event: error``.
    """

    def __init__(self, *, context: AnthropicContext | None = None, **shell: Unpack[ResponseShell]) -> None:
        self._chat = AnthropicToChatStream(
            model=str(shell["request"].get("model")),
            completion_id="",
            created=shell["created_at"],
            context=context,
        )
        self._responses = ChatToResponsesStream(**shell)
        self._usage_sent = False

    @property
    def finished(self) -> bool:
        """True once the upstream's ``message_stop`` has been seen."""
        return self._chat.finished

    @property
    def response(self) -> dict[str, Any] | None:
        """The final Response object, after :meth:`finish` or :meth:`fail`."""
        return self._responses.response

    def start(self) -> list[Event]:
        return self._responses.start()

    def feed(self, event_type: str, data: Mapping[str, Any]) -> list[Event]:
        events: list[Event] = []
        for chunk in self._chat.feed(event_type, data):
            events.extend(self._responses.feed(chunk))
        if self._chat.finished and not self._usage_sent:
            self._usage_sent = True
            events.extend(self._responses.feed(self._chat.usage_chunk()))
        return events

    def finish(self, *, completed_at: int | None = None) -> list[Event]:
        events: list[Event] = []
        if not self._usage_sent:  # the upstream ended without message_stop: keep what usage we have
            self._usage_sent = True
            events.extend(self._responses.feed(self._chat.usage_chunk()))
        events.extend(self._responses.finish(completed_at=completed_at))
        return events

    def fail(self, error_object: Mapping[str, Any]) -> list[Event]:
        return self._responses.fail(error_object)

"""Conversions between API dialects: Responses <-> Chat Completions <-> Anthropic Messages.

Two translator pairs, composed for the third route:

* the Responses API over a Chat upstream: :mod:`.responses_chat` (request, with
  :mod:`.responses_content` and :mod:`.responses_tools`), :mod:`.responses_answer` (answer) and
  :mod:`.responses_stream` (stream);
* Chat Completions over an Anthropic upstream: :mod:`.anthropic_chat` (request, with
  :mod:`.anthropic_content` and :mod:`.anthropic_tools`), :mod:`.anthropic_answer` (answer),
  :mod:`.anthropic_stream` (stream) and :mod:`.anthropic_context` (what a request leaves for
  its answer);
* :mod:`.compose`: the Responses API over an Anthropic upstream (Responses -> Chat -> Anthropic
  and back);
* :mod:`.response_object`: the Response object every translated answer is built on (all of
  OpenAI's fields, the request's settings echoed), for JSON answers and streams alike.

Everything here is pure: no I/O, no clock; ids come from an injected :class:`Ids`.
"""

from gateway.translate.anthropic_answer import chat_completion_from_anthropic
from gateway.translate.anthropic_chat import anthropic_request_from_chat
from gateway.translate.anthropic_context import AnthropicContext, ToolIdMap
from gateway.translate.anthropic_stream import AnthropicToChatStream, InbandError
from gateway.translate.compose import (
    AnthropicToResponsesStream,
    anthropic_request_from_responses,
    response_from_anthropic_message,
)
from gateway.translate.errors import TranslationError
from gateway.translate.ids import Ids, RandomIds, SequentialIds
from gateway.translate.response_object import response_skeleton
from gateway.translate.responses_answer import response_from_chat_completion
from gateway.translate.responses_chat import (
    OPENAI_COMPATIBLE,
    chat_request_from_responses,
    input_items_from_input,
)
from gateway.translate.responses_stream import (
    ChatToResponsesStream,
    encode_carrier,
    encode_event,
    encode_events,
)

__all__ = [
    "OPENAI_COMPATIBLE",
    "AnthropicContext",
    "AnthropicToChatStream",
    "AnthropicToResponsesStream",
    "ChatToResponsesStream",
    "Ids",
    "InbandError",
    "RandomIds",
    "SequentialIds",
    "ToolIdMap",
    "TranslationError",
    "anthropic_request_from_chat",
    "anthropic_request_from_responses",
    "chat_completion_from_anthropic",
    "chat_request_from_responses",
    "encode_carrier",
    "encode_event",
    "encode_events",
    "input_items_from_input",
    "response_from_anthropic_message",
    "response_from_chat_completion",
    "response_skeleton",
]

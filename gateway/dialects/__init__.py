"""Upstream dialects: one adapter per upstream API, looked up by the deployment's ``api``.

* :mod:`.chat_completions`: ``/chat/completions`` (OpenAI and compatibles);
* :mod:`.responses`: ``/responses`` (OpenAI's stateful API, the one that can chain natively);
* :mod:`.anthropic`: ``/messages`` (Anthropic Messages).

:mod:`.base` says what an adapter provides. A new upstream API is one more module and one more
entry in :data:`DIALECTS`; endpoints and chats never ask which API a deployment speaks.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.config import UpstreamApi
from gateway.dialects.anthropic import AnthropicDialect
from gateway.dialects.base import (
    ChatCall,
    ChunkReader,
    ConversationCall,
    Converter,
    Emit,
    Produced,
    ResponsesCall,
    ResponsesTurn,
    Resumable,
    UpstreamDialect,
    failure_events,
)
from gateway.dialects.chat_completions import ChatCompletionsDialect
from gateway.dialects.responses import ResponsesDialect

DIALECTS: Mapping[UpstreamApi, UpstreamDialect] = {
    UpstreamApi.CHAT: ChatCompletionsDialect(),
    UpstreamApi.RESPONSES: ResponsesDialect(),
    UpstreamApi.ANTHROPIC: AnthropicDialect(),
}


def dialect_for(api: UpstreamApi) -> UpstreamDialect:
    """The adapter of the API a deployment speaks."""
    return DIALECTS[api]


__all__ = [
    "DIALECTS",
    "ChatCall",
    "ChunkReader",
    "ConversationCall",
    "Converter",
    "Emit",
    "Produced",
    "ResponsesCall",
    "ResponsesTurn",
    "Resumable",
    "UpstreamDialect",
    "dialect_for",
    "failure_events",
]

"""What a Chat -> Anthropic request translation leaves for the translation of its answer."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

SchemaRepair = Callable[[object], object]
"""A tool-schema repair applied to every schema sent upstream (``gateway.schema_fix``)."""

_ID_INVALID = re.compile(r"[^a-zA-Z0-9_-]")


class ToolIdMap:
    """Tool-call ids, client form <-> Anthropic form (``[a-zA-Z0-9_-]`` only)."""

    __slots__ = ("_back", "_to")

    def __init__(self) -> None:
        self._to: dict[str, str] = {}
        self._back: dict[str, str] = {}

    def to_anthropic(self, original: str) -> str:
        """The Anthropic-safe id for ``original``; the same input always gives the same output."""
        known = self._to.get(original)
        if known is not None:
            return known
        clean = _ID_INVALID.sub("_", original) or "id"
        taken_by = self._back.get(clean)
        if taken_by is not None and taken_by != original:
            clean = f"{clean}_{hashlib.blake2b(original.encode(), digest_size=4).hexdigest()}"
        self._to[original] = clean
        self._back[clean] = original
        return clean

    def from_anthropic(self, sent: str) -> str:
        """The client's id for an id seen on the Anthropic side (unknown ids are returned as is)."""
        return self._back.get(sent, sent)


class AnthropicContext:
    """What a translated request leaves for the translation of its answer."""

    __slots__ = ("json_tool", "tool_ids")

    def __init__(self) -> None:
        self.tool_ids = ToolIdMap()
        self.json_tool: str | None = None
        """Name of the tool that carries a structured (``response_format``) answer, if any."""

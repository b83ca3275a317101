"""The Response object of a translated answer: every field OpenAI's Response object has.

:func:`response_skeleton` renders it from the client's request, once per request, for the JSON
answer and for every streamed event that embeds a Response alike. OpenAI echoes the request's
settings back in the object and fills in its defaults where the request set nothing; so does the
skeleton, with OpenAI's defaults, for the settings a Chat or Anthropic upstream has no notion of
(``service_tier`` is ``"default"``, ``top_logprobs`` 0, the penalties 0.0, ``truncation``
``"disabled"``...). Keys are in the order OpenAI sends them: ``id``, ``object``, ``created_at``,
``status``, then the rest alphabetically, ``metadata`` last.

Echoed tools follow OpenAI's echo too: a function tool always carries ``description``,
``parameters`` and ``strict`` (``null``, ``null`` and ``false`` when the client left them out:
the gateway does not turn a translated upstream's tools strict on its own), plus whatever else
the client set on it; other tools are echoed as sent. A ``json_schema`` text format carries
``description`` and ``strict`` the same way; ``text.verbosity`` is ``"medium"`` unless set.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

# The tiers a Response reports; a request's "auto" (or nothing) is answered as "default".
SERVICE_TIERS = frozenset({"default", "flex", "priority", "scale"})


def response_skeleton(
    request: Mapping[str, Any], *, response_id: str, created_at: int, previous_response_id: str | None
) -> dict[str, Any]:
    """The Response as ``response.created`` shows it: ``in_progress``, no output, no usage.

    The defaults, then each setting the request carries echoed (every echo of a missing or null
    setting is its default): a request sets a few of the settings, so only those are read."""
    skeleton = _DEFAULTS.copy()
    skeleton["id"] = response_id
    skeleton["created_at"] = created_at
    skeleton["output"] = []
    skeleton["previous_response_id"] = previous_response_id
    skeleton["reasoning"] = {"effort": None, "summary": None}
    skeleton["text"] = {"format": {"type": "text"}, "verbosity": "medium"}
    skeleton["tools"] = []
    skeleton["metadata"] = {}
    for key, value in request.items():
        echo = _ECHO.get(key)
        if echo is not None:
            skeleton[key] = echo(value)
    return skeleton


def echo_reasoning(reasoning: Any) -> dict[str, Any]:
    if not isinstance(reasoning, Mapping):
        return {"effort": None, "summary": None}
    return {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")}


def echo_text(text: Any) -> dict[str, Any]:
    """``text`` as OpenAI repeats it: ``format`` (``{"type": "text"}`` unless set) and
    ``verbosity`` (``"medium"`` unless set)."""
    settings: Mapping[str, Any] = text if isinstance(text, Mapping) else {}
    fmt = settings.get("format")
    echoed: dict[str, Any] = dict(settings)
    echoed["format"] = _echo_format(fmt) if isinstance(fmt, Mapping) else {"type": "text"}
    echoed["verbosity"] = settings.get("verbosity") or "medium"
    return echoed


def _echo_format(fmt: Mapping[str, Any]) -> dict[str, Any]:
    if fmt.get("type") != "json_schema":
        return dict(fmt)
    return {
        "type": "json_schema",
        "description": fmt.get("description"),
        "name": fmt.get("name"),
        "schema": fmt.get("schema"),
        "strict": fmt.get("strict") is True,
        **{key: value for key, value in fmt.items() if key not in _FORMAT_KEYS},
    }


_FORMAT_KEYS = frozenset({"type", "description", "name", "schema", "strict"})
_FUNCTION_KEYS = frozenset({"type", "name", "description", "parameters", "strict"})


def echo_tools(tools: Any) -> list[Any]:
    if not isinstance(tools, Sequence) or isinstance(tools, str):
        return []
    return [echo_tool(tool) for tool in tools]


def echo_tool(tool: Any) -> Any:
    """A tool as the Response repeats it (function tools completed, namespaces' too)."""
    if not isinstance(tool, Mapping):
        return tool
    kind = tool.get("type")
    if kind == "function":
        return {
            "type": "function",
            "name": tool.get("name"),
            "description": tool.get("description"),
            "parameters": tool.get("parameters"),
            "strict": tool.get("strict") is True,
            **{key: value for key, value in tool.items() if key not in _FUNCTION_KEYS},
        }
    if kind == "namespace":
        echoed = dict(tool)
        echoed["tools"] = echo_tools(tool.get("tools"))
        return echoed
    return dict(tool)


def _tool_choice(choice: Any) -> Any:
    if choice is None:
        return "auto"
    return dict(choice) if isinstance(choice, Mapping) else choice


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _integer(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _number(value: Any, default: float) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return default


def _service_tier(value: Any) -> str:
    return value if isinstance(value, str) and value in SERVICE_TIERS else "default"


def _default_float(default: float) -> Callable[[Any], float]:
    def echo(value: Any) -> float:
        return _number(value, default)

    return echo


# The Response of a request that sets nothing, in OpenAI's key order (``output``, ``reasoning``,
# ``text``, ``tools`` and ``metadata`` get fresh objects per response).
_DEFAULTS: MappingProxyType[str, Any] = MappingProxyType(
    {
        "id": None,
        "object": "response",
        "created_at": 0,
        "status": "in_progress",
        "background": False,
        "completed_at": None,
        "error": None,
        "frequency_penalty": 0.0,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": None,
        "max_tool_calls": None,
        "model": None,
        "output": None,
        "parallel_tool_calls": True,
        "presence_penalty": 0.0,
        "previous_response_id": None,
        "prompt_cache_key": None,
        "prompt_cache_retention": None,
        "reasoning": None,
        "safety_identifier": None,
        "service_tier": "default",
        "store": True,
        "temperature": 1.0,
        "text": None,
        "tool_choice": "auto",
        "tools": None,
        "top_logprobs": 0,
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": None,
        "user": None,
        "metadata": None,
    }
)

# How the Response echoes each request setting it carries (None: the default above).
_ECHO: dict[str, Callable[[Any], Any]] = {
    "background": lambda value: value is True,
    "frequency_penalty": _default_float(0.0),
    "instructions": _string,
    "max_output_tokens": _integer,
    "max_tool_calls": _integer,
    "model": lambda value: value,
    "parallel_tool_calls": lambda value: value is not False,
    "presence_penalty": _default_float(0.0),
    "prompt_cache_key": _string,
    "prompt_cache_retention": _string,
    "reasoning": echo_reasoning,
    "safety_identifier": _string,
    "service_tier": _service_tier,
    "store": lambda value: value is not False,
    "temperature": _default_float(1.0),
    "text": echo_text,
    "tool_choice": _tool_choice,
    "tools": echo_tools,
    "top_logprobs": lambda value: _integer(value) or 0,
    "top_p": _default_float(1.0),
    "truncation": lambda value: "auto" if value == "auto" else "disabled",
    "user": _string,
    "metadata": lambda value: dict(value or {}),
}

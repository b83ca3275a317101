"""Responses tools, ``tool_choice`` and ``text.format`` -> their Chat Completions forms.

* Function tools cross over, ``strict`` only when the client set it.
* A ``namespace`` tool group is flattened into its functions. Each is named ``<namespace>__<name>``
  upstream (``<namespace><name>`` when the namespace already ends with ``_``), and the answer's
  calls get their ``namespace`` and own ``name`` back (:class:`ToolNames`); a replayed
  ``function_call`` carrying a ``namespace`` is named the same way.
* Hosted tools (``web_search``, ``file_search``, ``code_interpreter``, ``mcp``, ...) are dropped:
  a Chat or Anthropic upstream cannot run them. Only a ``tool_choice`` that *requires* one (the
  hosted tool itself, ``"required"`` with no function left, ``allowed_tools`` in ``required``
  mode naming only hosted tools) is refused, with a 400 naming ``tool_choice``.
* ``custom`` (free-form grammar) tools cannot be expressed and are refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gateway.translate.errors import TranslationError


def qualified_name(namespace: str, name: str) -> str:
    """The upstream's name of function ``name`` in group ``namespace``."""
    return namespace + name if namespace.endswith("_") else f"{namespace}__{name}"


class ToolNames:
    """Upstream function names that stand for a namespaced function: name -> (namespace, name)."""

    __slots__ = ("_names",)

    def __init__(self, tools: Any) -> None:
        names: dict[str, tuple[str, str]] = {}
        plain: set[str] = set()
        for tool in tools if isinstance(tools, Sequence) and not isinstance(tools, str) else ():
            if not isinstance(tool, Mapping):
                continue
            if tool.get("type") == "function":
                plain.add(str(tool.get("name")))
            elif tool.get("type") == "namespace":
                namespace = str(tool.get("name") or "")
                for inner in tool.get("tools") or ():
                    if isinstance(inner, Mapping) and inner.get("type") == "function":
                        name = str(inner.get("name"))
                        names[qualified_name(namespace, name)] = (namespace, name)
        for name in plain:  # a top-level function keeps its own name
            names.pop(name, None)
        self._names = names

    def __bool__(self) -> bool:
        return bool(self._names)

    def restore(self, item: dict[str, Any]) -> None:
        """Give a ``function_call`` item its namespace and own name back (in place)."""
        found = self._names.get(item.get("name") or "")
        if found is not None:
            item["namespace"], item["name"] = found


def chat_tools(tools: Sequence[Any]) -> tuple[list[dict[str, Any]], bool]:
    """The Chat tools for a Responses ``tools`` list, and whether hosted tools were dropped."""
    out: list[dict[str, Any]] = []
    dropped = False
    for index, tool in enumerate(tools):
        kind = tool.get("type")
        if kind == "function":
            out.append(chat_tool(tool, index))
        elif kind == "namespace":
            namespace = str(tool.get("name") or "")
            for inner_index, inner in enumerate(tool.get("tools") or ()):
                if inner.get("type") != "function":
                    raise _unsupported(inner, f"tools[{index}].tools[{inner_index}]")
                out.append(
                    chat_tool(
                        {**inner, "name": qualified_name(namespace, str(inner.get("name")))},
                        inner_index,
                    )
                )
        elif kind == "custom":
            raise _unsupported(tool, f"tools[{index}]")
        else:
            dropped = True
    return out, dropped


def _unsupported(tool: Mapping[str, Any], param: str) -> TranslationError:
    return TranslationError(
        f"Tools of type {tool.get('type')!r} are not supported by this model.", param=param
    )


def chat_tool(tool: Mapping[str, Any], index: int) -> dict[str, Any]:
    if tool.get("type") != "function":
        raise _unsupported(tool, f"tools[{index}]")
    function: dict[str, Any] = {"name": tool.get("name")}
    for key in ("description", "parameters", "strict"):
        if tool.get(key) is not None:
            function[key] = tool[key]
    return {"type": "function", "function": function}


def _hosted_required(kind: Any) -> TranslationError:
    return TranslationError(
        f"tool_choice requires the hosted tool {kind!r}, which this model cannot run.", param="tool_choice"
    )


def _function_choice(choice: Mapping[str, Any]) -> dict[str, Any]:
    name = str(choice.get("name"))
    namespace = choice.get("namespace")
    if isinstance(namespace, str) and namespace:
        name = qualified_name(namespace, name)
    return {"type": "function", "function": {"name": name}}


def chat_tool_choice(choice: Any, *, has_functions: bool = True) -> Any:
    """``tool_choice`` in Chat's form; None: send none (nothing left it could choose)."""
    if isinstance(choice, str):
        if choice == "required" and not has_functions:
            raise TranslationError(
                "tool_choice is 'required' but this model can run none of the given tools: "
                "hosted tools are not available on it.",
                param="tool_choice",
            )
        return choice
    kind = choice.get("type")
    if kind == "function":
        return _function_choice(choice)
    if kind == "allowed_tools":
        mode = choice.get("mode", "auto")
        allowed = []
        hosted = []
        for tool in choice.get("tools") or ():
            if tool.get("type") == "function":
                allowed.append(_function_choice(tool))
            else:
                hosted.append(tool.get("type"))
        if not allowed:
            if mode == "required":
                raise _hosted_required(hosted[0] if hosted else "allowed_tools")
            return "none"
        return {"type": "allowed_tools", "allowed_tools": {"mode": mode, "tools": allowed}}
    if kind == "custom":
        raise TranslationError(
            f"tool_choice of type {kind!r} is not supported by this model.", param="tool_choice"
        )
    raise _hosted_required(kind)


def chat_response_format(fmt: Mapping[str, Any]) -> dict[str, Any] | None:
    kind = fmt.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        schema: dict[str, Any] = {"name": fmt.get("name")}
        for key in ("description", "schema", "strict"):
            if fmt.get(key) is not None:
                schema[key] = fmt[key]
        return {"type": "json_schema", "json_schema": schema}
    raise TranslationError(f"text.format of type {kind!r} is not supported.", param="text.format")

"""Built-in tools: a failure is an error result, an interrupt is never one."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from gateway.chats.tools import BuiltinTool, ToolSet


def _toolset(run: Any) -> ToolSet:
    return ToolSet([BuiltinTool(name="t", description="", parameters={}, server="s", run=run)], [])


def test_a_failing_tool_is_an_error_result() -> None:
    async def run(args: dict[str, Any]) -> tuple[str, bool]:
        raise RuntimeError("backend down")

    result, is_error = asyncio.run(_toolset(run).execute("t", "{}"))
    assert (json.loads(result), is_error) == ({"error": "tool failed: backend down"}, True)


def test_an_interrupt_the_tool_library_turns_into_an_error_stays_an_interrupt() -> None:
    # The MCP client's task group answers a cancellation with an ExceptionGroup.
    started = asyncio.Event()

    async def run(args: dict[str, Any]) -> tuple[str, bool]:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise ExceptionGroup("unhandled errors in a TaskGroup", [RuntimeError("stream closed")]) from None
        return "never", False

    async def scenario() -> None:
        task = asyncio.create_task(_toolset(run).execute("t", "{}"))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())


def test_unknown_tools_and_bad_arguments() -> None:
    seen: list[dict[str, Any]] = []

    async def run(args: dict[str, Any]) -> tuple[str, bool]:
        seen.append(args)
        return "ok", False

    tools = _toolset(run)
    assert asyncio.run(tools.execute("nope", "{}")) == ('{"error":"Tool not found: nope"}', True)
    assert asyncio.run(tools.execute("t", "not json")) == ("ok", False)
    assert asyncio.run(tools.execute("t", "[1]")) == ("ok", False)
    assert seen == [{}, {}]

"""Claude Code itself through the gateway: ``claude -p`` against /v1/messages in front of the fake
providers, on a Claude deployment (passthrough) and an OpenAI one (translation), with a real tool
round trip (the fake asks for ``Bash``; Claude Code runs it and sends the result back).

Skipped when no ``claude`` binary is found: on PATH, or named by ``CLAUDE_CODE_BIN``. Installing
it needs no network at run time: ``npm install @anthropic-ai/claude-code`` in a directory outside
the repository ships a native binary (``node_modules/.bin/claude``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from fake_providers.testing import FakeProviders
from gateway.testing import add_anthropic, base_config
from tests.conftest import GATEWAY_KEY, GatewayFactory

CLAUDE = os.environ.get("CLAUDE_CODE_BIN") or shutil.which("claude")
pytestmark = pytest.mark.skipif(
    CLAUDE is None, reason="Claude Code is not installed (no `claude` on PATH and no CLAUDE_CODE_BIN)"
)


def run_claude(base_url: str, model: str, prompt: str, home: Path) -> subprocess.CompletedProcess[str]:
    assert CLAUDE is not None
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_AUTH_TOKEN": GATEWAY_KEY,
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": model,
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    }
    return subprocess.run(
        [CLAUDE, "-p", prompt, "--model", model, "--allowedTools", "Bash"],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("model", "upstream", "path"),
    [
        ("claude", "claude-haiku-4-5", "/anthropic/v1/messages"),
        ("gpt-4o-mini", "gpt-4o-mini", "/openai/v1/chat/completions"),
    ],
)
def test_claude_code_runs_a_tool_through_the_gateway(
    gateway_factory: GatewayFactory,
    fake: FakeProviders,
    redis_url: str,
    tmp_path: Path,
    model: str,
    upstream: str,
    path: str,
) -> None:
    gw = gateway_factory(add_anthropic(base_config(fake, redis_url), fake))
    call = {"name": "Bash", "arguments": {"command": "echo gateway-ok", "description": "Print a marker"}}
    fake.script([{"reply": {"text": "Running it.", "tool_calls": [call]}}], model=upstream)
    done = run_claude(gw.root_url, model, "run the marker", tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("Tool results: Bash returned gateway-ok")
    asked, answered = [e for e in fake.requests(path=path) if e.body.get("tools")][:2]
    assert asked.body["stream"] is True
    last = answered.body["messages"][-1]
    if path.startswith("/anthropic"):
        assert last["content"][0]["type"] == "tool_result" and last["content"][0]["content"] == "gateway-ok"
        assert "claude-code-20250219" in asked.headers["anthropic-beta"]
    else:
        assert last["role"] == "tool" and last["content"] == "gateway-ok"

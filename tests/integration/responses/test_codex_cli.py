"""The Codex CLI (``codex exec``) against the gateway on a Chat Completions model and on Claude,
over HTTP and in WebSocket mode (``supports_websockets``: Codex warms the socket up with a
``generate: false`` create, then runs its turn on the response it got; the upstream sees one call).

Codex sends what real agents send: ``store: false``, ``include: ["reasoning.encrypted_content"]``,
its tool set (functions, namespaced tool groups, hosted tools) and long instructions, streamed.
The CLI is not a dependency of the project: install it anywhere outside the repository
(``npm install --prefix /tmp/codex @openai/codex``, which needs nothing else at run time) and
point ``CODEX_BIN`` at it (``/tmp/codex/node_modules/.bin/codex``), or have ``codex`` on the PATH;
without it the test is skipped. Its home (``CODEX_HOME``) is a temporary directory: the user's
own configuration is never read.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from fake_providers.testing import FakeProviders
from gateway.testing import GATEWAY_KEY, add_anthropic
from tests.conftest import GatewayFactory, RunningGateway
from tests.integration.responses.support import responses_config

CODEX = os.environ.get("CODEX_BIN") or shutil.which("codex")
pytestmark = pytest.mark.skipif(
    CODEX is None or not Path(CODEX).exists(),
    reason="the Codex CLI is not installed (npm install --prefix /tmp/codex @openai/codex; "
    "CODEX_BIN=/tmp/codex/node_modules/.bin/codex)",
)


@pytest.fixture
def gw(gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str) -> RunningGateway:
    config = responses_config(fake, redis_url)
    add_anthropic(config, fake, upstream_model="claude-sonnet-4-5")
    return gateway_factory(config)


@pytest.mark.parametrize("websockets", [False, True], ids=["http", "websocket"])
@pytest.mark.parametrize(
    ("model", "path"),
    [
        ("chat-model", "/openai/v1/chat/completions"),
        ("resp-model", "/openai/v1/responses"),
        ("claude", "/anthropic/v1/messages"),
    ],
)
def test_codex_exec_through_the_gateway(
    gw: RunningGateway, fake: FakeProviders, tmp_path: Path, model: str, path: str, websockets: bool
) -> None:
    assert CODEX is not None
    provider = {
        "name": "gateway",
        "base_url": gw.base_url,
        "env_key": "GATEWAY_API_KEY",
        "wire_api": "responses",
    }
    overrides = [
        'model_provider="gateway"',
        *(f'model_providers.gateway.{k}="{v}"' for k, v in provider.items()),
    ]
    if websockets:  # Codex's WebSocket mode: a generate: false prewarm, then the turn on the socket
        overrides.append("model_providers.gateway.supports_websockets=true")
    command = [CODEX, "exec", "--skip-git-repo-check", "-s", "read-only", "-m", model]
    for override in overrides:
        command += ["-c", override]
    home = tmp_path / "codex-home"
    home.mkdir()
    env = {**os.environ, "CODEX_HOME": str(home), "GATEWAY_API_KEY": GATEWAY_KEY}
    done = subprocess.run(
        [*command, "Reply with the word pong."],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "You said:" in done.stdout  # the fake upstream's answer reached the CLI
    [sent] = [entry.body for entry in fake.requests(path=path)]
    assert sent["stream"] is True
    assert sent.get("tools"), "Codex's tools reached the upstream, translated"

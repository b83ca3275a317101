"""The README's quickstart, executed: its Python blocks run against a gateway built from
``config.example.toml`` itself (only the fakes' address and the Redis are the test's), so the
documented example and the example configuration cannot drift from what the gateway does."""

from __future__ import annotations

import contextlib
import io
import re
import tomllib
import uuid
from pathlib import Path
from typing import Any

from fake_providers.testing import FakeProviders
from tests.conftest import GatewayFactory

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_ORIGIN = "http://127.0.0.1:9100"
DOC_BASE_URL = "http://127.0.0.1:8080/v1"
DOC_KEY = "sk-gateway-dev-key"


def quickstart_blocks() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quickstart with the OpenAI SDK", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def example_config(fake: FakeProviders, redis_url: str) -> dict[str, Any]:
    text = (ROOT / "config.example.toml").read_text().replace(EXAMPLE_ORIGIN, fake.base_url)
    config: dict[str, Any] = tomllib.loads(text)
    config["redis"] = {"url": redis_url, "key_prefix": f"readme-{uuid.uuid4().hex[:8]}:"}
    config.setdefault("server", {})["port"] = 0
    return config


def test_the_readme_quickstart_runs_as_written(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    blocks = quickstart_blocks()
    assert blocks, "the README quickstart has no Python block"
    gw = gateway_factory(example_config(fake, redis_url))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for block in blocks:
            assert DOC_BASE_URL in block and DOC_KEY in block
            exec(block.replace(DOC_BASE_URL, gw.base_url), {"__name__": "readme"})
    printed = out.getvalue()
    assert "You said: Hello!" in printed
    assert "You said: Stream, please" in printed
    assert "usage: CompletionUsage(" in printed
    assert "['gpt-4o-mini', 'qwen2.5-7b', 'claude-sonnet-4-5']" in printed
    assert "claude: You said: Hello, Claude!" in printed
    # What the fakes received: the OpenAI model as named, Claude through the Messages API.
    assert fake.requests(path="/openai/v1/chat/completions")
    [claude] = fake.requests(path="/anthropic/v1/messages")
    assert claude.body["model"] == "claude-sonnet-4-5"
    assert claude.body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Hello, Claude!"}]}
    ]

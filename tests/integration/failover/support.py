"""What the failover scenarios share: a primary model with a fallback that can continue, the
canonical 60-word answer, and a streaming client that keeps every frame it received."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx

from fake_providers.testing import FakeProviders
from tests.conftest import GATEWAY_KEY, RunningGateway, base_config

WORDS = [f"w{i:02d}" for i in range(1, 61)]
CHUNKS = [word + " " for word in WORDS[:-1]] + [WORDS[-1]]
TEXT = "".join(CHUNKS)
HELLO = [{"role": "user", "content": "Say the sixty words."}]
PRIMARY = "fb-primary"  # the upstream model names the fake sees
FALLBACK = "fb-fallback"
OPENAI_CHAT = "/openai/v1/chat/completions"
VLLM_CHAT = "/vllm/v1/chat/completions"


def config(fake: FakeProviders, redis_url: str, **primary: Any) -> dict[str, Any]:
    """``primary`` (provider fake-openai) falls back to ``fallback`` (fake-vllm, an
    openai-compatible server that continues a prefilled assistant message). Startup guard
    10 s; idle timeout 10 s on the primary, 11 s on the fallback (so that a test can tell their
    timers apart); ``primary`` fields go into the fake-openai provider entry."""
    cfg = base_config(fake, redis_url)
    openai, vllm = cfg["providers"]
    openai.update({"timeouts": {"startup": 10.0, "idle": 10.0}, **primary})
    vllm.update({"timeouts": {"startup": 10.0, "idle": 11.0}, "continuation": "prefill"})
    cfg["models"] = [
        {"name": "primary", "provider": "fake-openai", "upstream_model": PRIMARY, "fallbacks": ["fallback"]},
        {"name": "fallback", "provider": "fake-vllm", "upstream_model": FALLBACK},
    ]
    return cfg


def words(first: int, last: int) -> dict[str, Any]:
    """A scripted reply streaming words ``first``..``last`` (1-based, inclusive)."""
    chunks = CHUNKS[first - 1 : last]
    return {"chunks": chunks}


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    frames: list[str] = field(default_factory=list)  # the data of every event
    body: str = ""

    @property
    def chunks(self) -> list[dict[str, Any]]:
        return [json.loads(f) for f in self.frames if f != "[DONE]"]

    @property
    def text(self) -> str:
        return "".join(
            choice["delta"].get("content") or ""
            for chunk in self.chunks
            if "error" not in chunk
            for choice in chunk.get("choices") or ()
        )

    @property
    def error(self) -> dict[str, Any] | None:
        if self.status != 200:
            found: dict[str, Any] = json.loads(self.body)["error"]
            return found
        errors = [c["error"] for c in self.chunks if "error" in c]
        return errors[-1] if errors else None


def stream(gw: RunningGateway, model: str = "primary", **extra: Any) -> Answer:
    """One streaming chat completion, read to its end."""
    body = {"model": model, "messages": HELLO, "stream": True, **extra}
    with httpx.Client(timeout=30) as http:
        response = http.post(
            gw.base_url + "/chat/completions", headers={"authorization": f"Bearer {GATEWAY_KEY}"}, json=body
        )
    answer = Answer(response.status_code, dict(response.headers), body=response.text)
    if response.status_code == 200:
        answer.frames = [
            part.removeprefix("data: ") for part in response.text.split("\n\n") if part.startswith("data: ")
        ]
    return answer


def sent(fake: FakeProviders, path: str) -> list[Any]:
    """The generation requests the fake received on ``path``, in order."""
    return [e for e in fake.requests(path=path) if e.method == "POST"]


def metric(gw: RunningGateway, name: str, **labels: str) -> float:
    """A sample of the gateway's /metrics (0 when absent)."""
    text = httpx.get(gw.root_url + "/metrics", timeout=10).text
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(name + "{" + want + "}") or (not labels and line.startswith(name + " ")):
            return float(line.rsplit(" ", 1)[1])
    return 0.0

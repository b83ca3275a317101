"""The gateway configurations one run compares, and the config file each one generates."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import CONFIGS, MODEL, PACED_MODEL


@dataclass(frozen=True)
class Variant:
    id: str  # what --variants takes
    title: str  # what the report shows
    configs: tuple[str, ...] = ()  # files in benchmarks/configs appended to the generated config
    key_from: str | None = None  # a file in benchmarks/configs whose first [[auth.keys]] key is sent
    traces: bool = False  # OpenTelemetry traces to the harness's OTLP sink (needs the otel extra)
    # Worker processes of `gateway serve`; None: --workers (default: the cores available).
    workers: int | None = 1

    @property
    def config_paths(self) -> list[Path]:
        return [CONFIGS / name for name in self.configs]


VARIANTS = (
    Variant("default", "default"),
    Variant(
        "limited-key",
        "limited key",
        configs=("policy-limited-key.toml",),
        key_from="policy-limited-key.toml",
    ),
    Variant("off", "policy and metrics off", configs=("policy-off.toml", "metrics-off.toml")),
    Variant("traces", "traces on", traces=True),
    # The default configuration again, with several workers: compared with `default` (one).
    Variant("workers", "workers", workers=None),
)
# The bare proxy: the other variants' CPU per request is compared with this one's.
BARE = "off"


def parse_variants(text: str | None) -> list[Variant]:
    """``--variants a,b,c`` → the variants, in the order given (``None`` or ``all``: every one)."""
    if text is None or text.strip() == "all":
        return list(VARIANTS)
    by_id = {v.id: v for v in VARIANTS}
    chosen: list[Variant] = []
    for raw in text.split(","):
        name = raw.strip()
        if not name:
            continue
        if name not in by_id:
            known = ", ".join(by_id)
            raise ValueError(f"unknown variant {name!r} (known: {known}, or all)")
        if by_id[name] not in chosen:
            chosen.append(by_id[name])
    if not chosen:
        raise ValueError("no variant named (known: " + ", ".join(by_id) + ", or all)")
    return chosen


def variant_key(variant: Variant, generated: str, override: str | None) -> str:
    """The key a variant sends: its own file's key, else ``--key``, else the generated one."""
    if variant.key_from is not None:
        data = tomllib.loads((CONFIGS / variant.key_from).read_text())
        key: str = data["auth"]["keys"][0]["key"]
        return key
    return override or generated


def traces_config(endpoint: str) -> str:
    return f"""# The "traces on" variant: every request sampled, spans exported to the harness's sink.
[telemetry]
otel_traces = true
otel_sample_ratio = 1.0
otel_endpoint = {json.dumps(endpoint)}
"""


def otel_missing() -> str | None:
    """Why the gateway could not export traces in this environment, or None if it can."""
    import importlib.util

    for module in ("opentelemetry.sdk.trace", "opentelemetry.exporter.otlp.proto.http.trace_exporter"):
        try:
            found = importlib.util.find_spec(module) is not None
        except ImportError:
            found = False
        if not found:
            return f"{module} is not installed (pip install -e '.[otel]')"
    return None


def select_variants(text: str | None, *, direct_only: bool, customised: bool) -> list[Variant] | str:
    """The variants to run, or an error message. With ``--extra-config``/``--key`` and no
    ``--variants``, only ``default`` (a run comparing settings needs one gateway, and the other
    variants' own sections may clash with the extra file's)."""
    if direct_only:
        return []
    if text is None and customised:
        return [VARIANTS[0]]
    try:
        return parse_variants(text)
    except ValueError as exc:
        return f"--variants: {exc}"


def gateway_config(
    *,
    port: int,
    upstream_port: int,
    key: str,
    data_dir: Path,
    extra: list[Path],
    generated: str = "",
    workers: int = 1,
) -> str:
    """The config of one gateway: server (``workers`` processes), embedded Redis, one key, the
    bench upstream and model; then ``generated`` (a variant's own section), then the ``extra``
    files in order."""
    text = f"""# Written by benchmarks/run.py for one run.
[server]
host = "127.0.0.1"
port = {port}
workers = {workers}

[redis]
data_dir = {json.dumps(str(data_dir))}
key_prefix = "bench:"

[[auth.keys]]
name = "bench"
key = {json.dumps(key)}

[[providers]]
name = "bench"
kind = "openai-compatible"
base_url = "http://127.0.0.1:{upstream_port}/v1"
api_key = "sk-bench-upstream"

[[models]]
name = {json.dumps(MODEL)}
provider = "bench"

# Streams paced like a model generating (the paced-stream cases).
[[models]]
name = {json.dumps(PACED_MODEL)}
provider = "bench"
"""
    if generated:
        text += "\n" + generated
    for path in extra:
        text += f"\n# --- from {path}\n" + path.read_text()
        if not text.endswith("\n"):
            text += "\n"
    return text

"""Each package's public names are what its ``__all__`` says, and nothing slips in or out unseen.

For every package that declares ``__all__``, each listed name resolves and none is listed twice.
The leaf packages the rest of the gateway builds on, and the testing kit users build on, are
pinned: changing what they export is a deliberate change of this test too.
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import fake_providers
import gateway

PINNED: dict[str, list[str]] = {
    "gateway.errors": [
        "AttemptFailed",
        "ClassifiedError",
        "ErrorKind",
        "UpstreamError",
        "build_error",
        "chat_event_error",
        "chat_stream_error_frame",
        "circuit_open_error",
        "classify_exception",
        "classify_response",
        "classify_stream_error",
        "classify_text",
        "display_name",
        "error_object",
        "error_response",
        "normalize_provider",
        "parse_retry_after",
        "startup_timeout_error",
        "stream_idle_timeout_error",
        "stream_truncated_error",
        "with_provider",
    ],
    "gateway.schema_fix": ["RepairResult", "Target", "repair_schema", "repair_tool_parameters"],
    "gateway.config": [
        "BreakerSettings",
        "Budget",
        "ConfigError",
        "Continuation",
        "GatewayKey",
        "Limits",
        "McpServerSettings",
        "ModelSettings",
        "Price",
        "ProviderKind",
        "ProviderSettings",
        "ResponsesSettings",
        "SchemaTarget",
        "Settings",
        "TelemetrySettings",
        "UpstreamApi",
        "load_settings",
        "settings_from_mapping",
        "upstream_api",
    ],
    "gateway.testing": [
        "AutoAdvance",
        "GATEWAY_KEY",
        "GatewayServer",
        "NO_BACKOFF",
        "OTHER_KEY",
        "PollTimeout",
        "RunningGateway",
        "add_anthropic",
        "base_config",
        "free_port",
        "poll_until",
        "redis_cluster",
        "redis_sentinel",
        "redis_server",
        "serve_gateway",
        "settings_of",
    ],
}


def _packages_with_all() -> list[str]:
    names: list[str] = []
    for root in (gateway, fake_providers):
        candidates = [root.__name__] + [
            info.name for info in pkgutil.walk_packages(root.__path__, root.__name__ + ".") if info.ispkg
        ]
        names += [name for name in candidates if hasattr(importlib.import_module(name), "__all__")]
    names += [name for name in PINNED if name not in names]
    return sorted(names)


PACKAGES = _packages_with_all()


def test_the_guarded_packages_are_found() -> None:
    assert set(PINNED) <= set(PACKAGES)
    assert "gateway.translate" in PACKAGES


@pytest.mark.parametrize("name", PACKAGES)
def test_every_exported_name_resolves_once(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert len(exported) == len(set(exported)), f"{name}.__all__ lists a name twice"
    missing = [member for member in exported if not hasattr(module, member)]
    assert missing == []


@pytest.mark.parametrize("name", sorted(PINNED))
def test_pinned_exports(name: str) -> None:
    assert sorted(importlib.import_module(name).__all__) == PINNED[name]

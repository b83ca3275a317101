"""Settings: TOML on disk, ``${ENV}`` interpolation, msgspec Structs in memory.

``settings`` (the root and the server, Redis, telemetry, Responses and chats sections),
``access`` (keys, teams, admin keys, policy) and ``providers`` (providers, models, prices)
hold the Structs; ``loader`` reads and converts; ``checks`` holds the cross-checks. Every
mistake is a :class:`ConfigError` naming the file, the key path and the reason; the CLI
turns it into exit status 2.
"""

from gateway.config.access import Budget, GatewayKey, Limits
from gateway.config.errors import ConfigError
from gateway.config.loader import load_settings, settings_from_mapping
from gateway.config.providers import (
    BreakerSettings,
    Continuation,
    ModelSettings,
    Price,
    ProviderKind,
    ProviderSettings,
    SchemaTarget,
    UpstreamApi,
    upstream_api,
)
from gateway.config.settings import McpServerSettings, ResponsesSettings, Settings, TelemetrySettings

__all__ = [
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
]

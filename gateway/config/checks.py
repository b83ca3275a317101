"""Cross-checks msgspec cannot express: ranges, uniqueness, references between sections.

The checks run in a fixed order and the first mistake found is the one reported, as a
:class:`ConfigError` naming its key path.
"""

from __future__ import annotations

import os
import re
import ssl

from gateway.config.errors import ConfigError
from gateway.config.providers import ProviderKind, ProviderSettings, SchemaTarget, UpstreamApi, upstream_api
from gateway.config.settings import CLUSTER_SCHEMES, Settings

_HASH = r"sha256:[0-9a-f]{64}"
_HASH_SHAPE = 'must look like "sha256:<64 lower-case hex digits>"'


def check_settings(s: Settings) -> None:
    """Raise :class:`ConfigError` for the first mistake in ``s``."""
    _check_server_and_stores(s)
    _check_keys(s)
    _check_policy(s)
    providers = _check_providers(s)
    _check_models(s, providers)


def _check_server_and_stores(s: Settings) -> None:
    src = s.source
    if not 0 <= s.server.port <= 65535:
        raise ConfigError(src, "server.port", "must be between 0 and 65535")
    if s.server.max_body_bytes <= 0:
        raise ConfigError(src, "server.max_body_bytes", "must be positive")
    if s.server.models_refresh_seconds <= 0:
        raise ConfigError(src, "server.models_refresh_seconds", "must be positive")
    _check_redis(s)
    for field in ("ttl_seconds", "max_chain_length", "anthropic_max_tokens"):
        if getattr(s.responses, field) <= 0:
            raise ConfigError(src, f"responses.{field}", "must be positive")
    for field in ("action_timeout_seconds", "lease_seconds", "max_steps", "concurrency"):
        if getattr(s.chats, field) <= 0:
            raise ConfigError(src, f"chats.{field}", "must be positive")


def _host_port(value: str) -> bool:
    host, sep, port = value.rpartition(":")
    return bool(sep and host and port.isdigit() and 0 < int(port) <= 65535)


def _check_redis(s: Settings) -> None:
    src, r = s.source, s.redis
    mode = r.effective_mode
    if r.url is not None:
        if r.url.startswith(CLUSTER_SCHEMES):
            if r.mode not in (None, "cluster"):
                raise ConfigError(
                    src, "redis.url", f'a redis+cluster:// url needs mode "cluster", not {r.mode!r}'
                )
            seeds = r.url.split("://", 1)[1].split("/", 1)[0].rpartition("@")[2]
            for seed in seeds.split(","):
                if not _host_port(seed):
                    raise ConfigError(src, "redis.url", f"seed {seed!r} must be host:port")
        elif not r.url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(
                src,
                "redis.url",
                "must start with redis://, rediss://, unix://, redis+cluster:// or rediss+cluster:// (or be absent)",
            )
        elif mode != "single" and r.url.startswith("unix://"):
            raise ConfigError(src, "redis.url", f"a unix:// socket cannot be used in {mode} mode")
    for i, value in enumerate(r.sentinels):
        if not _host_port(value):
            raise ConfigError(src, f"redis.sentinels[{i}]", f"{value!r} must be host:port")
    if mode == "cluster" and r.url is None:
        raise ConfigError(
            src, "redis.url", 'mode "cluster" needs seed nodes: "redis+cluster://host:port,host:port"'
        )
    if mode == "sentinel":
        if not r.sentinels:
            raise ConfigError(
                src, "redis.sentinels", 'mode "sentinel" needs at least one sentinel "host:port"'
            )
        if not r.service_name:
            raise ConfigError(src, "redis.service_name", 'mode "sentinel" needs the monitored service name')
    elif r.sentinels or r.service_name or r.sentinel_password is not None:
        field = "sentinels" if r.sentinels else "service_name" if r.service_name else "sentinel_password"
        raise ConfigError(src, f"redis.{field}", 'is for mode "sentinel"')
    if r.embedded and not r.data_dir:
        raise ConfigError(src, "redis.data_dir", "must not be empty when redis.url is absent")
    if r.max_connections < 1:
        raise ConfigError(src, "redis.max_connections", "must be at least 1")
    if not r.pool_timeout_seconds > 0:
        raise ConfigError(src, "redis.pool_timeout_seconds", "must be positive")
    if not r.command_timeout_seconds > 0:
        raise ConfigError(src, "redis.command_timeout_seconds", "must be positive")
    if not r.connect_timeout_seconds > 0:
        raise ConfigError(src, "redis.connect_timeout_seconds", "must be positive")
    _check_redis_tls(s)


def _check_redis_tls(s: Settings) -> None:
    src, r = s.source, s.redis
    files = {"tls_ca_file": r.tls_ca_file, "tls_cert_file": r.tls_cert_file, "tls_key_file": r.tls_key_file}
    if not r.tls:
        return  # used by rediss:// and rediss+cluster:// urls only (the url may come from the environment)
    for field, path in files.items():
        if path is not None and not (os.path.isfile(path) and os.access(path, os.R_OK)):
            raise ConfigError(src, f"redis.{field}", f"{path!r} is not a readable file")
    if (r.tls_cert_file is None) != (r.tls_key_file is None):
        missing = "tls_key_file" if r.tls_key_file is None else "tls_cert_file"
        raise ConfigError(
            src, f"redis.{missing}", "a client certificate needs both tls_cert_file and tls_key_file"
        )
    try:
        context = ssl.create_default_context(cafile=r.tls_ca_file)
    except ssl.SSLError as exc:
        raise ConfigError(
            src, "redis.tls_ca_file", f"holds no PEM certificate ({exc.reason or exc})"
        ) from None
    if r.tls_cert_file is not None:
        try:
            context.load_cert_chain(r.tls_cert_file, r.tls_key_file)
        except ssl.SSLError as exc:
            raise ConfigError(
                src,
                "redis.tls_cert_file",
                f"and tls_key_file are not a PEM certificate and its key ({exc.reason or exc})",
            ) from None


def _check_keys(s: Settings) -> None:
    src = s.source
    names: set[str] = set()
    for i, key in enumerate(s.auth.keys):
        where = f"auth.keys[{i}]"
        if not key.name:
            raise ConfigError(src, f"{where}.name", "must not be empty")
        if key.name in names:
            raise ConfigError(src, f"{where}.name", f"duplicate key name {key.name!r}")
        names.add(key.name)
        if (key.key is None) == (key.hash is None):
            raise ConfigError(src, where, "give exactly one of `key` or `hash`")
        if key.key is not None and len(key.key) < 8:
            raise ConfigError(src, f"{where}.key", "must be at least 8 characters")
        if key.hash is not None and not re.fullmatch(_HASH, key.hash):
            raise ConfigError(src, f"{where}.hash", _HASH_SHAPE)


def _check_policy(s: Settings) -> None:
    src = s.source
    teams: set[str] = set()
    for i, team in enumerate(s.teams):
        if not re.fullmatch(r"[A-Za-z0-9_.\-]{1,64}", team.id):
            raise ConfigError(src, f"teams[{i}].id", "must be 1-64 letters, digits, '_', '.' or '-'")
        if team.id in teams:
            raise ConfigError(src, f"teams[{i}].id", f"duplicate team id {team.id!r}")
        teams.add(team.id)
    for i, key in enumerate(s.auth.keys):
        if key.team is not None and key.team not in teams:
            raise ConfigError(src, f"auth.keys[{i}].team", f"unknown team {key.team!r}")
    for i, admin in enumerate(s.admin.keys):
        if (admin.key is None) == (admin.hash is None):
            raise ConfigError(src, f"admin.keys[{i}]", "give exactly one of `key` or `hash`")
        if admin.key is not None and len(admin.key) < 16:
            raise ConfigError(src, f"admin.keys[{i}].key", "must be at least 16 characters")
        if admin.hash is not None and not re.fullmatch(_HASH, admin.hash):
            raise ConfigError(src, f"admin.keys[{i}].hash", _HASH_SHAPE)
    admin_names: set[str] = set()
    inference = {k.digest() for k in s.auth.keys}
    for i, admin in enumerate(s.admin.keys):
        if not admin.name or admin.name in admin_names:
            raise ConfigError(src, f"admin.keys[{i}].name", f"must be unique and not empty ({admin.name!r})")
        admin_names.add(admin.name)
        if admin.digest() in inference:
            raise ConfigError(
                src, f"admin.keys[{i}]", "is also an inference key in [auth] keys; admin keys must differ"
            )
    p = s.policy
    if p.lease_ttl_seconds <= 0:
        raise ConfigError(src, "policy.lease_ttl_seconds", "must be positive")
    for field in ("output_reserve_tokens", "settle_batch_max", "usage_stream_maxlen", "audit_stream_maxlen"):
        if getattr(p, field) < 1:
            raise ConfigError(src, f"policy.{field}", "must be at least 1")
    for field in ("cache_ttl_seconds", "default_rotation_grace_seconds"):
        if getattr(p, field) < 0:
            raise ConfigError(src, f"policy.{field}", "must not be negative")
    if not 0.0 <= s.telemetry.otel_sample_ratio <= 1.0:
        raise ConfigError(src, "telemetry.otel_sample_ratio", "must be between 0 and 1")


def _check_providers(s: Settings) -> dict[str, ProviderSettings]:
    src = s.source
    providers: dict[str, ProviderSettings] = {}
    for i, p in enumerate(s.providers):
        where = f"providers[{i}]"
        if not p.name:
            raise ConfigError(src, f"{where}.name", "must not be empty")
        if p.name in providers:
            raise ConfigError(src, f"{where}.name", f"duplicate provider name {p.name!r}")
        if not p.base_url.startswith(("http://", "https://")):
            raise ConfigError(src, f"{where}.base_url", "must start with http:// or https://")
        for field in ("connect", "startup", "idle", "request"):
            if getattr(p.timeouts, field) <= 0:
                raise ConfigError(src, f"{where}.timeouts.{field}", "must be positive")
        if p.max_connections < 1:
            raise ConfigError(src, f"{where}.max_connections", "must be at least 1")
        if p.retry.max_attempts < 1:
            raise ConfigError(src, f"{where}.retry.max_attempts", "must be at least 1")
        if p.kind is ProviderKind.ANTHROPIC and p.tool_schema_target is not SchemaTarget.ANTHROPIC:
            # The Messages API's `input_schema` is validated by Anthropic's rules whatever model
            # serves it; another target would let through schemas it refuses.
            raise ConfigError(
                src,
                f"{where}.schema_target",
                'an anthropic provider takes only "anthropic" (or leave it out)',
            )
        for field in ("initial_delay", "max_delay", "budget_seconds"):
            if getattr(p.retry, field) < 0:
                raise ConfigError(src, f"{where}.retry.{field}", "must not be negative")
        if p.max_malformed_events < 1:
            raise ConfigError(src, f"{where}.max_malformed_events", "must be at least 1")
        _check_breaker(src, where, p)
        providers[p.name] = p
    return providers


def _check_breaker(src: str, where: str, p: ProviderSettings) -> None:
    b = p.breaker
    if b.failures < 1:
        raise ConfigError(src, f"{where}.breaker.failures", "must be at least 1")
    for field in ("window_seconds", "cooldown_seconds"):
        if not getattr(b, field) > 0:
            raise ConfigError(src, f"{where}.breaker.{field}", "must be positive")
    if b.health_check_seconds < 0:
        raise ConfigError(src, f"{where}.breaker.health_check_seconds", "must not be negative (0: off)")
    if b.health_check_seconds > 0 and not p.models_path:
        raise ConfigError(
            src, f"{where}.breaker.health_check_seconds", "needs the provider's models_path (it is empty)"
        )


def _check_models(s: Settings, providers: dict[str, ProviderSettings]) -> None:
    src = s.source
    public = {m.name for m in s.models}
    for i, m in enumerate(s.models):
        where = f"models[{i}]"
        if not m.name:
            raise ConfigError(src, f"{where}.name", "must not be empty")
        provider = providers.get(m.provider)
        if provider is None:
            raise ConfigError(src, f"{where}.provider", f"unknown provider {m.provider!r}")
        api = upstream_api(m, provider)
        if provider.kind is ProviderKind.ANTHROPIC and api is not UpstreamApi.ANTHROPIC:
            raise ConfigError(src, f"{where}.api", "an anthropic provider speaks only the `anthropic` API")
        if provider.kind is not ProviderKind.ANTHROPIC and api is UpstreamApi.ANTHROPIC:
            raise ConfigError(
                src, f"{where}.api", f"provider {m.provider!r} does not speak the anthropic API"
            )
        if m.context_window is not None and m.context_window <= 0:
            raise ConfigError(src, f"{where}.context_window", "must be a positive integer")
        for j, fb in enumerate(m.fallbacks):
            if fb not in public:
                raise ConfigError(src, f"{where}.fallbacks[{j}]", f"unknown model {fb!r}")
            if fb == m.name:
                raise ConfigError(src, f"{where}.fallbacks[{j}]", "a model cannot fall back to itself")

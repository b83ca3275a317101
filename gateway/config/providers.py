"""Upstream providers and the public models they serve (deployments), with their prices."""

from __future__ import annotations

import enum
from types import MappingProxyType

import msgspec

from gateway.config.bounds import NonNegative, PositiveInt


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


class OpenAIRoute(enum.StrEnum):
    """The OpenAI routes beyond chat and responses, as a provider serves them (``routes``)."""

    EMBEDDINGS = "embeddings"
    COMPLETIONS = "completions"
    MODERATIONS = "moderations"
    IMAGES = "images"
    AUDIO = "audio"
    FILES = "files"  # files and the batches made of them


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
    # A deployment that sent nothing within the startup guard (or, for a non-streaming call, no
    # response headers within the request timeout) is not tried again for the request while its
    # plan has another deployment or fallback left: the next one is tried at once. True: such a
    # silent deployment is retried like any other retryable failure first.
    retry_startup_timeout: bool = False


class Continuation(enum.StrEnum):
    """How a deployment of a provider can continue a broken stream's partial assistant message."""

    PREFILL = "prefill"  # the partial answer as a trailing assistant message (Anthropic prefill,
    # vLLM-style `continue_final_message` on openai-compatible servers)
    NONE = "none"


class BreakerSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A circuit breaker per deployment of this provider, shared by every replica through Redis."""

    enabled: bool = True
    # Consecutive retryable failures, each within `window_seconds` of the first, that open it.
    failures: int = 5
    window_seconds: float = 60.0
    # How long an open breaker keeps routing away from the deployment (the upstream's
    # Retry-After, when longer, is used instead); then one request fleet-wide probes it.
    cooldown_seconds: float = 30.0
    # While open: check the provider's `models_path` this often (0: no active checks); an answer
    # ends the cooldown early, so the next request probes.
    health_check_seconds: float = 0.0


class ProviderSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    name: str
    kind: ProviderKind
    base_url: str
    api_key: str = ""
    timeouts: Timeouts = Timeouts()
    retry: RetrySettings = RetrySettings()
    headers: dict[str, str] = {}
    # Upstream connections per worker; a stream holds one for its whole length, so this is also
    # the number of concurrent streams to this provider before new ones wait for a free one.
    max_connections: int = 1024
    # Anthropic: the `anthropic-version` header and optional beta flags.
    anthropic_version: str = "2023-06-01"
    anthropic_beta: tuple[str, ...] = ()
    # The OpenAI routes beyond chat this provider serves; absent: all of them for kinds openai
    # and openai-compatible, none for anthropic. A route it does not serve is a 400 `not_supported`.
    routes: tuple[OpenAIRoute, ...] | None = None
    # Inputs per upstream embeddings request: a larger client batch is split into several
    # requests and the answers joined in order (OpenAI takes 2048; TEI's default is 32).
    embedding_batch_limit: PositiveInt = 2048
    # Where this provider lists its models (relative to base_url); "" disables the fetch.
    models_path: str = "/models"
    # Whose schema rules its tools are repaired for; absent: the one of its `kind`. Set it when
    # an OpenAI-compatible endpoint fronts another model family (Gemini's `/v1beta/openai`,
    # Anthropic's OpenAI SDK endpoint).
    schema_target: SchemaTarget | None = None
    # Continuing a broken stream on this provider's deployments: "prefill" or "none". Absent:
    # prefill for an anthropic provider, none for the others.
    continuation: Continuation | None = None
    # Malformed events (data that is not JSON) after a stream's commit point are dropped; this
    # many in a row end the stream as broken. Before the commit point, one fails the attempt.
    max_malformed_events: int = 3
    breaker: BreakerSettings = BreakerSettings()

    @property
    def continues(self) -> bool:
        """Its deployments can continue a partial assistant message."""
        if self.continuation is None:
            return self.kind is ProviderKind.ANTHROPIC
        return self.continuation is Continuation.PREFILL

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


_DEFAULT_API = MappingProxyType(
    {
        ProviderKind.OPENAI: UpstreamApi.CHAT,
        ProviderKind.OPENAI_COMPATIBLE: UpstreamApi.CHAT,
        ProviderKind.ANTHROPIC: UpstreamApi.ANTHROPIC,
    }
)


def upstream_api(model: ModelSettings, provider: ProviderSettings) -> UpstreamApi:
    """The API a deployment speaks: its own ``api``, or the one its provider's kind speaks."""
    return model.api or _DEFAULT_API[provider.kind]

"""Who may call the gateway and how much: inference keys, teams, admin keys, the policy."""

from __future__ import annotations

import hashlib
from typing import Literal

import msgspec

from gateway.config.bounds import NonNegative, PositiveInt


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

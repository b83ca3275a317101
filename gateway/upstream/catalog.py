"""Context windows read from each provider's model listing, shared across replicas via Redis.

At start-up, and every ``refresh_seconds`` after, every provider's listing is fetched and
parsed (``gateway.upstream.context_limit``); the windows go to Redis (one hash per provider, with a
TTL), so a replica that cannot reach a provider still knows what another replica read. A
listing that fails never stops the gateway: it is retried sooner and reported on
``/readyz``. A window configured on a model (``context_window``) always wins.

Listings are paged where the provider pages them: Anthropic (``has_more`` + ``last_id`` ->
``after_id``, asked for 1000 per page) and Gemini (``nextPageToken`` -> ``pageToken``; the page
size is whatever ``models_path`` asks, 50 by default); at most ``MAX_PAGES`` pages are read. A ``models_path`` that is an absolute URL
(Gemini's native listing next to its OpenAI-compatible endpoint) gets the provider's headers
too, so ``providers.headers`` (e.g. ``x-goog-api-key``) authenticates it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping

import httpx
import msgspec
import redis.asyncio as aioredis

from gateway.clock import Clock
from gateway.config import ProviderKind
from gateway.upstream.context_limit import parse_model_listing
from gateway.upstream.provider import Upstream
from gateway.upstream.router import Deployment

log = logging.getLogger("gateway.catalog")

CATALOG_REFRESH = "catalog_refresh"
MAX_PAGES = 50
PAGE_SIZE = 1000
_DECODER = msgspec.json.Decoder()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _next_page(body: object) -> dict[str, str] | None:
    """The query of the next page: Anthropic's ``after_id``, Gemini's ``pageToken``."""
    if not isinstance(body, dict):
        return None
    if body.get("has_more") is True and isinstance(body.get("last_id"), str) and body["last_id"]:
        return {"after_id": body["last_id"]}
    token = body.get("nextPageToken")
    if isinstance(token, str) and token:
        return {"pageToken": token}
    return None


class ListingStatus(msgspec.Struct):
    ok: bool
    fetched_at: float | None = None
    models: int = 0
    error: str | None = None


class ModelCatalog:
    def __init__(
        self,
        upstreams: Mapping[str, Upstream],
        redis: aioredis.Redis,
        clock: Clock,
        *,
        key_prefix: str,
        refresh_seconds: float = 600.0,
        retry_seconds: float = 30.0,
    ) -> None:
        self._upstreams = upstreams
        self._redis = redis
        self._clock = clock
        self._prefix = key_prefix
        self._refresh = refresh_seconds
        self._retry = retry_seconds
        self._windows: dict[str, dict[str, int]] = {}
        self.status: dict[str, ListingStatus] = {}

    def _key(self, provider: str) -> str:
        return f"{self._prefix}catalog:{{{provider}}}"

    def window(self, deployment: Deployment) -> int | None:
        """The context window of a deployment: configured, else from the provider's listing."""
        if deployment.settings.context_window:
            return deployment.settings.context_window
        return self._windows.get(deployment.provider, {}).get(deployment.upstream_model)

    def _listing_request(self, upstream: Upstream, params: Mapping[str, str]) -> httpx.Request:
        path = upstream.settings.models_path
        absolute = path.startswith(("http://", "https://"))
        base = upstream.request("GET", "" if absolute else path)
        url = httpx.URL(path) if absolute else base.url
        if params:
            url = url.copy_merge_params(params)
        headers = base.headers.copy()
        for name in ("host", "content-type"):
            headers.pop(name, None)
        return httpx.Request("GET", url, headers=headers, extensions=base.extensions)

    async def fetch(self, upstream: Upstream) -> dict[str, int]:
        """Every page of one provider's listing, parsed."""
        windows: dict[str, int] = {}
        params: dict[str, str] = {}
        if upstream.settings.kind is ProviderKind.ANTHROPIC:
            params["limit"] = str(PAGE_SIZE)
        for _ in range(MAX_PAGES):
            request = self._listing_request(upstream, params)
            response = await upstream.send(request, stream=False)
            if response.status_code != 200:
                raise RuntimeError(f"GET {request.url} answered {response.status_code}")
            body = _DECODER.decode(response.content)
            windows.update({model: w for model, w in parse_model_listing(body).items() if w})
            following = _next_page(body)
            if following is None:
                break
            params = {**params, **following}
        return windows

    async def refresh_once(self) -> bool:
        """Fetch every listing; returns True when all succeeded."""
        all_ok = True
        for name, upstream in self._upstreams.items():
            if not upstream.settings.models_path:
                continue
            try:
                windows = await self.fetch(upstream)
            except (httpx.HTTPError, msgspec.DecodeError, RuntimeError) as exc:
                all_ok = False
                self.status[name] = ListingStatus(ok=False, error=str(exc) or type(exc).__name__)
                log.warning("model listing of %s failed: %s", name, exc)
                await self._load_cached(name)
                continue
            self._windows[name] = windows
            self.status[name] = ListingStatus(ok=True, fetched_at=self._clock.now(), models=len(windows))
            await self._store(name, windows)
        return all_ok

    async def _store(self, provider: str, windows: dict[str, int]) -> None:
        key = self._key(provider)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(key)
                if windows:
                    pipe.hset(key, mapping={k: str(v) for k, v in windows.items()})
                    pipe.expire(key, int(self._refresh * 3))
                await pipe.execute()
        except Exception as exc:  # Redis trouble must not stop the listing refresh
            log.warning("cannot cache the model listing of %s in Redis: %s", provider, exc)

    async def _load_cached(self, provider: str) -> None:
        """What another replica (or an earlier run) read, when this one cannot fetch."""
        with contextlib.suppress(Exception):
            cached = await self._redis.hgetall(self._key(provider))
            if cached:
                self._windows[provider] = {_text(k): int(v) for k, v in cached.items()}

    async def run(self) -> None:
        """Refresh forever (a lifespan task): soon after a failure, then every refresh period."""
        while True:
            ok = await self.refresh_once()
            await self._clock.sleep(self._refresh if ok else self._retry, name=CATALOG_REFRESH)

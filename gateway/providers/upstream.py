"""One configured provider: its pooled HTTP client and how to address it.

Adapters never see Litestar; controllers never see httpx. An ``Upstream`` knows the base URL,
the credentials and the headers of its dialect, and sends already-encoded bodies.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from gateway.config import ProviderKind, ProviderSettings, Settings
from gateway.providers.transport import AiohttpTransport


class Upstream:
    """A provider and its one pooled client."""

    __slots__ = ("_headers", "base_url", "client", "kind", "name", "settings")

    def __init__(self, settings: ProviderSettings, client: httpx.AsyncClient) -> None:
        self.settings = settings
        self.name = settings.name
        self.kind = settings.kind
        self.base_url = settings.base_url.rstrip("/")
        self.client = client
        headers = {"content-type": "application/json", "accept-encoding": "identity"}
        if settings.kind is ProviderKind.ANTHROPIC:
            if settings.api_key:
                headers["x-api-key"] = settings.api_key
            headers["anthropic-version"] = settings.anthropic_version
            if settings.anthropic_beta:
                headers["anthropic-beta"] = ",".join(settings.anthropic_beta)
        elif settings.api_key:
            headers["authorization"] = f"Bearer {settings.api_key}"
        headers.update({k.lower(): v for k, v in settings.headers.items()})
        self._headers = headers

    @property
    def classifier_key(self) -> str:
        """The provider key the error classifier knows (for display names)."""
        return str(self.kind)

    def request(
        self, method: str, path: str, body: bytes | None = None, *, headers: Mapping[str, str] | None = None
    ) -> httpx.Request:
        merged = self._headers if not headers else {**self._headers, **headers}
        timeouts = self.settings.timeouts
        return self.client.build_request(
            method,
            self.base_url + path,
            content=body,
            headers=merged,
            # Read timeouts are enforced by the startup guard and the idle timer on the
            # injected clock; the socket-level read timeout is only a backstop.
            timeout=httpx.Timeout(
                connect=timeouts.connect, read=None, write=timeouts.connect, pool=timeouts.connect
            ),
        )

    async def send(self, request: httpx.Request, *, stream: bool) -> httpx.Response:
        return await self.client.send(request, stream=stream)


def make_client(
    settings: ProviderSettings, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=transport or AiohttpTransport(max_connections=settings.max_connections),
        follow_redirects=False,
    )


def build_upstreams(
    settings: Settings, transports: Mapping[str, httpx.AsyncBaseTransport] | None = None
) -> dict[str, Upstream]:
    """One Upstream per configured provider; ``transports`` overrides by provider name (tests)."""
    transports = transports or {}
    return {p.name: Upstream(p, make_client(p, transports.get(p.name))) for p in settings.providers}

"""One configured provider: its pooled transport and how to address it.

An ``Upstream`` knows the base URL, the credentials and the headers of its dialect, and sends
already-encoded bodies straight to its transport (the gateway's HTTP/1.1 transport, or the
one a test hands to ``build_upstreams``).
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from gateway.clock import Clock
from gateway.config import ProviderKind, ProviderSettings, Settings
from gateway.upstream.http11_transport import (
    JOIN_LIMIT,
    BodyPieces,
    Http11Transport,
    Origin,
    WireRequest,
    origin_of,
)

# Headers that say how a request is framed or addressed (httpx adds its own otherwise).
_FRAMING = frozenset({"host", "content-length", "transfer-encoding"})
# Request heads kept per upstream (method, path and the callers' extra headers); past this many,
# requests with a new combination are built by the general path.
HEADS_KEPT = 256
# A kept head: the URL, where it goes, the headers (less the length) and their bytes.
Head = tuple[httpx.URL, Origin, dict[str, str], bytes]


class Upstream:
    """A provider and its one pooled transport."""

    __slots__ = (
        "_framed",
        "_headers",
        "_heads",
        "_timeout",
        "_transport",
        "_urls",
        "base_url",
        "kind",
        "name",
        "schema_target",
        "settings",
    )

    def __init__(self, settings: ProviderSettings, transport: httpx.AsyncBaseTransport) -> None:
        self.settings = settings
        self._transport = transport
        self._urls: dict[str, httpx.URL] = {}
        # Per (method, path, extra headers): the URL, where it goes, the headers and the head's
        # bytes up to the body's length; None where the head cannot be written ahead (a scheme,
        # a framing header or a value that only httpx's path handles). At most HEADS_KEPT.
        self._heads: dict[tuple[str, str, tuple[tuple[str, str], ...]], Head | None] = {}
        timeouts = settings.timeouts
        # Read timeouts are enforced by the startup guard and the idle timer on the injected
        # clock; the socket-level read timeout is only a backstop.
        self._timeout = httpx.Timeout(
            connect=timeouts.connect, read=None, write=timeouts.connect, pool=timeouts.connect
        ).as_dict()
        self.name = settings.name
        self.kind = settings.kind
        # Whose rules its tools' schemas are repaired for (`providers.schema_target`).
        self.schema_target = settings.tool_schema_target
        self.base_url = settings.base_url.rstrip("/")
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
        self._framed = any(name in _FRAMING for name in headers)

    @property
    def classifier_key(self) -> str:
        """The provider key the error classifier knows (for display names)."""
        return str(self.kind)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | BodyPieces | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Request:
        """A request for this upstream. Built directly (no client defaults to merge) with the
        URL parsed once per path: this runs once per attempt on the hot path. A body in
        :class:`BodyPieces` is sent as its pieces (never joined)."""
        if body and type(body) is bytes and len(body) <= JOIN_LIMIT and not self._framed:
            # The hot path: the head written once per method, path and extra headers (a Messages
            # client's ``anthropic-version``, say), only the length and body added.
            key = (method, path, tuple(headers.items()) if headers else ())
            try:
                head = self._heads[key]
            except KeyError:
                head = self._head(method, path, headers)
                if len(self._heads) < HEADS_KEPT:
                    self._heads[key] = head
            if head is not None:
                url, origin, fields, start = head
                size = str(len(body))
                return WireRequest(
                    method,
                    url,
                    origin,
                    {**fields, "Content-Length": size},
                    b"".join((start, size.encode("ascii"), b"\r\n\r\n", body)),
                    body,
                    {"timeout": self._timeout},
                )
        url = self._url(path)
        merged = self._headers if not headers else {**self._headers, **headers}
        if isinstance(body, BodyPieces):
            merged = {"host": origin_host(url), **merged, "content-length": str(body.size)}
            return httpx.Request(
                method, url, stream=body, headers=merged, extensions={"timeout": self._timeout}
            )
        if self._framed or (headers and any(name.lower() in _FRAMING for name in headers)):
            # Headers that frame the request themselves: httpx decides what to add.
            return httpx.Request(
                method, url, content=body, headers=merged, extensions={"timeout": self._timeout}
            )
        # The headers ``httpx.Request(content=body)`` would send, in its order (Host first; a
        # body's length last, an empty POST's right after Host), built in one pass: httpx
        # builds them twice.
        host = origin_host(url)
        if body:
            fields = {"Host": host, **merged, "Content-Length": str(len(body))}
        elif method in ("POST", "PUT", "PATCH"):
            fields = {"Host": host, "Content-Length": "0", **merged}
        else:
            fields = {"Host": host, **merged}
        request = httpx.Request(
            method,
            url,
            stream=httpx.ByteStream(body or b""),
            headers=fields,
            extensions={"timeout": self._timeout},
        )
        request.read()  # its content, as httpx.Request(content=...) has it
        return request

    def _url(self, path: str) -> httpx.URL:
        url = self._urls.get(path)
        if url is None:
            url = self._urls[path] = httpx.URL(self.base_url + path)
        return url

    def _head(self, method: str, path: str, extra: Mapping[str, str] | None) -> Head | None:
        """The headers of a request with a body, and the bytes of its head up to its
        ``Content-Length`` value, in the order and case :meth:`request` gives them (Host first,
        the length last). None when httpx must decide the framing or cannot write a value."""
        if extra and any(name.lower() in _FRAMING for name in extra):
            return None
        url = self._url(path)
        origin = origin_of(url)
        if origin is None:
            return None
        fields = {"Host": origin_host(url), **self._headers, **(extra or {})}
        lines = [f"{method} ", "", " HTTP/1.1\r\n"]
        lines += [f"{name}: {value}\r\n" for name, value in fields.items()]
        lines.append("Content-Length: ")
        try:
            encoded = [line.encode("ascii") for line in lines]
        except UnicodeEncodeError:
            return None
        encoded[1] = url.raw_path
        return url, origin, fields, b"".join(encoded)

    async def send(self, request: httpx.Request, *, stream: bool) -> httpx.Response:
        """Straight to the transport: no auth, redirect, cookie or event-hook layers to pay for."""
        response = await self._transport.handle_async_request(request)
        if not stream:
            try:
                await response.aread()
            finally:
                await response.aclose()
        return response

    async def aclose(self) -> None:
        """Close the transport and its pooled connections (at shutdown)."""
        await self._transport.aclose()


def origin_host(url: httpx.URL) -> str:
    """The ``Host`` header of a request to ``url``."""
    return url.netloc.decode("ascii")


def make_transport(settings: ProviderSettings, clock: Clock) -> httpx.AsyncBaseTransport:
    return Http11Transport(clock, max_connections=settings.max_connections)


def build_upstreams(
    settings: Settings, clock: Clock, transports: Mapping[str, httpx.AsyncBaseTransport] | None = None
) -> dict[str, Upstream]:
    """One Upstream per configured provider; ``transports`` overrides by provider name (tests)."""
    transports = transports or {}
    upstreams: dict[str, Upstream] = {}
    for p in settings.providers:
        transport = transports.get(p.name) or make_transport(p, clock)
        upstreams[p.name] = Upstream(p, transport)
    return upstreams

"""Classifying exceptions: httpx's tree, the builtins, and errors that carry a classification."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import httpx

from gateway.errors._classify import build_error, classify_lowered, classify_response, with_provider
from gateway.errors._model import ClassifiedError, ErrorKind, UpstreamError

# httpx errors that mean the deployment's settings are wrong (URL, scheme, a header value
# such as an API key with a newline in it, a redirect loop).
_CONFIG_ERRORS: tuple[type[BaseException], ...] = (
    httpx.UnsupportedProtocol,
    httpx.LocalProtocolError,
    httpx.InvalidURL,
    httpx.TooManyRedirects,
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, then its causes and contexts, each once."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _describe(exc: BaseException) -> tuple[str, str]:
    """(detail, text to classify) for an exception: its message, its type, its URL."""
    message = str(exc).strip()
    detail = message or type(exc).__name__
    parts = [type(exc).__name__, message]
    if isinstance(exc, httpx.RequestError):
        with contextlib.suppress(RuntimeError):  # no request attached
            parts.append(str(exc.request.url))
    return detail, " ".join(part for part in parts if part).lower()


def _response_body(response: httpx.Response) -> bytes:
    try:
        return response.content
    except httpx.ResponseNotRead:
        return b""


def classify_exception(exc: BaseException, *, provider: str, now: float = 0.0) -> ClassifiedError:
    """Classify an exception raised while talking to an upstream.

    * an :class:`UpstreamError` anywhere in the chain: its classification;
    * ``asyncio.CancelledError``: canceled;
    * ``httpx.HTTPStatusError``: the response it carries (``now`` for Retry-After dates);
    * httpx timeouts and transport errors, and the builtin ``ConnectionError`` family:
      a retryable timeout, whatever their text says;
    * httpx errors about the request's own URL, scheme or headers: config;
    * a bare ``TimeoutError`` (``asyncio.timeout``, ``wait_for``): the caller's own
      deadline, a timeout that is not retryable;
    * anything else: the text pipeline on "<TypeName> <message>".
    """
    for link in _chain(exc):
        if isinstance(link, UpstreamError):
            return with_provider(link.error, provider)
    if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        return classify_exception(exc.exceptions[0], provider=provider, now=now)
    detail, text = _describe(exc)
    if isinstance(exc, asyncio.CancelledError):
        return build_error(ErrorKind.CANCELED, provider=provider, detail=detail)
    if isinstance(exc, httpx.HTTPStatusError):
        response = exc.response
        return classify_response(
            response.status_code, response.headers, _response_body(response), provider=provider, now=now
        )
    if isinstance(exc, _CONFIG_ERRORS):
        return build_error(ErrorKind.CONFIG, provider=provider, detail=detail)
    if isinstance(exc, httpx.TimeoutException | httpx.TransportError | ConnectionError):
        return classify_lowered(text, provider=provider, detail=detail, transport=True)
    if isinstance(exc, TimeoutError):
        return classify_lowered(text, provider=provider, detail=detail, deadline=True)
    return classify_lowered(text, provider=provider, detail=detail)

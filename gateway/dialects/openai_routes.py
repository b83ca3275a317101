"""The OpenAI routes beyond chat and responses (embeddings, completions, moderations, images,
audio, files and batches), as upstreams serve them.

They are one wire format: OpenAI's own, which OpenAI-compatible servers (vLLM, Ollama, TEI's
OpenAI route, ...) copy at the same paths under their base URL. A provider serves every one of
them unless its ``routes`` setting lists fewer; an Anthropic provider serves none. A deployment
whose provider does not serve a route is left out of the plan; a plan left empty is the
client's 400 ``not_supported`` naming the model and the route, never an upstream 404 or a 500.

An upstream call of these routes whose answer is not an event stream is :func:`call_whole`
(a whole answer of any content type: JSON, text, subtitles) or :func:`open_body` (a body
streamed back as it arrives: speech, a file's content). Their failures are classified as for
chat: an HTTP error status with its body, a connection error, a timer that ran out
(``request_timeout`` for a whole answer, ``startup_guard`` until a streamed body's headers),
and a 200 whose JSON body is an ``error`` object; each is an :class:`AttemptFailed` the failover
loop retries or fails over, before anything reached the client.
"""

from __future__ import annotations

import asyncio

import httpx
import msgspec

from gateway.clock import STARTUP_GUARD, Clock
from gateway.config import ProviderKind
from gateway.config.providers import OpenAIRoute
from gateway.errors import AttemptFailed, classify_exception, startup_timeout_error
from gateway.errors.client import InvalidRequest
from gateway.pricing import Usage
from gateway.upstream import Deployment, Router, Upstream
from gateway.upstream.call import TimedSend, classified_answer, read_whole, request_timed_out
from gateway.upstream.failover import Attempt


def serves(upstream: Upstream, route: OpenAIRoute) -> bool:
    """``upstream`` answers ``route`` (its ``routes`` setting, or its kind's default)."""
    routes = upstream.settings.routes
    if routes is None:
        return upstream.kind is not ProviderKind.ANTHROPIC
    return route in routes


def not_supported(model: str, path: str) -> InvalidRequest:
    return InvalidRequest(
        f"The model '{model}' is not served on {path} by this gateway: its provider does not offer that route.",
        param="model",
        code="not_supported",
    )


def served(plan: list[Deployment], router: Router, route: OpenAIRoute, *, path: str) -> list[Deployment]:
    """The deployments of ``plan`` whose provider serves ``route``; a 400 when none does."""
    kept = [d for d in plan if serves(router.upstream(d), route)]
    if not kept:
        raise not_supported(plan[0].public_model, path)
    return kept


class _Usage(msgspec.Struct):
    prompt_tokens: int | None = None  # embeddings, completions
    completion_tokens: int = 0
    input_tokens: int | None = None  # images (gpt-image-1), transcriptions (gpt-4o-transcribe)
    output_tokens: int = 0


class _WithUsage(msgspec.Struct):
    usage: _Usage | None = None


_USAGE = msgspec.json.Decoder(_WithUsage)


def usage_of(body: bytes) -> Usage | None:
    """The ``usage`` of a JSON answer in either of OpenAI's spellings (``prompt_tokens`` /
    ``completion_tokens`` or ``input_tokens`` / ``output_tokens``); None when it has none or
    is not JSON. Nothing but the usage is built."""
    try:
        found = _USAGE.decode(body).usage
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    if found is None:
        return None
    if found.prompt_tokens is not None:
        return Usage(input_tokens=found.prompt_tokens, output_tokens=found.completion_tokens)
    if found.input_tokens is not None:
        return Usage(input_tokens=found.input_tokens, output_tokens=found.output_tokens)
    return None


class _Envelope(msgspec.Struct):
    error: msgspec.Raw = msgspec.Raw()


_ENVELOPE = msgspec.json.Decoder(_Envelope)


def _error_under_200(response: httpx.Response, attempt: Attempt, clock: Clock) -> AttemptFailed | None:
    """A 200 JSON answer whose top level is a non-null ``error``: a failure in disguise,
    classified like an error status (None for any other answer)."""
    if "json" not in response.headers.get("content-type", ""):
        return None
    content = response.content
    if b'"error"' not in content:
        return None
    try:
        raw = _ENVELOPE.decode(content).error
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    if len(raw) == 0 or bytes(raw) == b"null":
        return None
    return classified_answer(200, response, content, attempt, clock)


async def call_whole(attempt: Attempt, request: httpx.Request, clock: Clock) -> httpx.Response:
    """A whole answer, read; any content type."""

    def check(response: httpx.Response) -> AttemptFailed | None:
        return _error_under_200(response, attempt, clock)

    return await read_whole(attempt, request, clock, check, headless=request_timed_out)


async def open_body(attempt: Attempt, request: httpx.Request, clock: Clock) -> httpx.Response:
    """A streamed answer up to its headers (its commit point): a 2xx whose body is still to
    come. A JSON ``error`` answer under a 200 is read and classified like an error status."""
    provider = attempt.upstream.classifier_key
    timed = TimedSend(attempt, clock, attempt.upstream.settings.timeouts.startup, STARTUP_GUARD)
    try:
        response = await timed.send(request)
        if "json" in response.headers.get("content-type", ""):
            # Speech and file contents are not JSON: a JSON answer is read whole and checked.
            await response.aread()
            failure = _error_under_200(response, attempt, clock)
            if failure is not None:
                await response.aclose()
                raise failure
        return response
    except asyncio.CancelledError:
        if timed.guard.absorb():
            if timed.response is not None:
                await timed.response.aclose()
            raise AttemptFailed(startup_timeout_error(provider)) from None
        raise
    except httpx.HTTPError as exc:
        if timed.response is not None:
            await timed.response.aclose()
        raise AttemptFailed(classify_exception(exc, provider=provider)) from None
    finally:
        timed.end()

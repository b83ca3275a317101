"""Rescuing a broken committed stream: continue the answer elsewhere, seamlessly.

When a committed stream is cut, stalls past the idle timeout, fails in-band with a retryable
failure or sends too many malformed events, and the plan has a deployment that can continue an
assistant message (its provider's ``continuation``: prefill), the client's stream is not ended.
The gateway sends the original request again with what the client has received so far as a
trailing assistant message (Anthropic prefill; ``continue_final_message`` on openai-compatible
servers), reads the answer back as Chat chunks whatever the deployment's dialect, and relays
only the rest, in the client's dialect and as part of the same answer (same ids, no second
role chunk or message start). The client receives one complete stream. The request is the
client's translated to Chat Completions, except on deployments that speak the client's own
dialect when the endpoint says so (``native_api``: Messages clients on Claude deployments get
their own request, prefilled).

The rules:

* Candidates are the plan's deployments after the broken one (other deployments of the model,
  then its fallbacks) whose provider continues; they go through the failover loop (retries,
  breakers) like any attempt. The deployment whose stream broke is not asked again.
* Only text is continued. A partial answer with a tool call in it, or with several choices, is
  not: a tool call's arguments cannot be prefilled, and restarting the call would hand the
  client a second copy of it. Such a stream ends with its error as before.
* A continuation that is refused (a 400 to the prefill) or fails before its first event leaves
  the original failure to be sent: the refusal never replaces it. A continuation that breaks
  after its own commit may be rescued again; at most :data:`MAX_RESCUES` per request.
* The usage of every attempt is settled: the broken stream's (estimated from the prompt and
  the text sent when it reported none; its output at least that text's estimate when it
  reported only its start) and each continuation's.
* A stream that breaks with a failure that is not retryable (a content filter in-band) is not
  rescued.

An endpoint supplies a :class:`Continuer`: how to read the partial answer from what its client
received, the request as a Chat Completions body, and a :class:`Splice` that writes the rest
(:class:`ChatContinuer` for Chat Completions clients; the Responses and Messages endpoints have
their own). The relay must have held its failure (``hold``) so that nothing was sent yet. A
request that cannot be built (``chat`` raises: a request Chat cannot express, a store that
cannot be read) is not continued, except by ``native_api`` deployments.
"""

from __future__ import annotations

import logging
from typing import Any, NamedTuple, Protocol

import msgspec

from gateway.clock import Watchdog
from gateway.config import UpstreamApi
from gateway.dialects import ChunkReader, ConversationCall, dialect_for
from gateway.errors import AttemptFailed, ClassifiedError
from gateway.policy.usage import usage_from_dict
from gateway.pricing import Usage
from gateway.services import Services
from gateway.token_estimate import text_tokens
from gateway.upstream import Deployment
from gateway.upstream.call import OpenedStream, open_stream
from gateway.upstream.committed import Relay, SendChunk, run_committed
from gateway.upstream.failover import Attempt, Failover, Trace
from gateway.upstream.sse import DONE_FRAME, data_frame

log = logging.getLogger("gateway.exchange.rescue")

MAX_RESCUES = 2
_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder()


class Partial(NamedTuple):
    """What the client has received of the answer: its text, and the first chunk's identity
    fields (``id``, ``created``, ``model``...) for the continuation's chunks to carry."""

    text: str
    head: dict[str, Any]


class Splice(Protocol):
    """Chat chunks of a continuation in, the client's frames out (through ``send``)."""

    usage: Usage | None  # what the continuation reported

    async def feed(self, chunks: list[dict[str, Any]], send: SendChunk) -> None: ...

    async def end(self, send: SendChunk) -> None:
        """After the continuation finished: the clean end of the client's stream."""
        ...

    async def release(self, relay: Relay, send: SendChunk) -> None:
        """After the continuation broke and nothing continued it: the held failure
        (``relay.failure``) in the client's dialect, after what this continuation sent."""
        ...


class Continuer(Protocol):
    """What an endpoint supplies so that its broken streams can be continued."""

    @property
    def native_api(self) -> UpstreamApi | None:
        """Deployments of this API are asked for the rest in the client's own dialect
        (:meth:`native_call`: the client's request as it came, with what it has received as
        the last assistant turn); the others get :meth:`chat`'s request through their dialect."""
        ...

    def native_call(self, attempt: Attempt, text: str) -> ConversationCall:
        """The continuation request on a deployment of :attr:`native_api`."""
        ...

    def partial(self, sent: bytes, relay: Relay) -> Partial | None:
        """The answer so far, from the bytes the client received; None when it cannot be
        continued (a tool call in it, several choices, a relay whose answer cannot take more)."""
        ...

    async def chat(self) -> dict[str, Any]:
        """The request as a Chat Completions body (its messages, tools and parameters). May
        raise when the request cannot be expressed so (then only :attr:`native_api`'s
        deployments may continue)."""
        ...

    def splice(self, partial: Partial, relay: Relay) -> Splice:
        """How the rest reaches the client (``relay``: the broken stream's, whose state the
        rest may continue)."""
        ...


class FirstText:
    """The first text of a continuation loses the whitespace the client already has: a
    prefill is sent without it, so the upstream may send it again."""

    def __init__(self, partial: Partial) -> None:
        text = partial.text
        self._space = text[len(text.rstrip()) :]
        self._first = True

    def __call__(self, piece: str) -> str:
        if not self._first:
            return piece
        self._first = False
        if self._space and piece.startswith(self._space):
            return piece[len(self._space) :]
        return piece.lstrip() if self._space else piece


# -- Chat Completions clients ------------------------------------------------------------------


def _frames(sent: bytes) -> list[dict[str, Any]]:
    chunks: list[dict[str, Any]] = []
    for line in sent.split(b"\n"):
        if line.startswith(b"data:"):
            payload = line[5:].strip()
            if payload == b"[DONE]":
                continue
            try:
                chunk = _DECODER.decode(payload)
            except msgspec.DecodeError:
                continue
            if isinstance(chunk, dict):
                chunks.append(chunk)
    return chunks


def chat_partial(sent: bytes) -> Partial | None:
    """The text of a Chat Completions stream the client received (None: not continuable)."""
    text: list[str] = []
    head: dict[str, Any] = {}
    for chunk in _frames(sent):
        if "error" in chunk:
            continue
        if not head and chunk.get("id"):
            head = {
                k: chunk[k] for k in ("id", "object", "created", "model", "system_fingerprint") if k in chunk
            }
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                return None
            delta = choice.get("delta") or {}
            if delta.get("tool_calls") or delta.get("function_call"):
                return None
            piece = delta.get("content")
            if isinstance(piece, str):
                text.append(piece)
    return Partial("".join(text), head)


class ChatSplice:
    """Continuation chunks as the rest of the client's Chat Completions stream: the original
    chunk's ``id``/``created``/``model``, no role-only or empty chunks, reasoning left out (the
    client saw the first attempt's), whitespace the client already has not repeated, usage
    only when the client asked for it, ``[DONE]`` at the end."""

    def __init__(self, partial: Partial, *, include_usage: bool) -> None:
        self._head = {"object": "chat.completion.chunk", **partial.head}
        self._include_usage = include_usage
        self._text = FirstText(partial)
        self.usage: Usage | None = None

    async def feed(self, chunks: list[dict[str, Any]], send: SendChunk) -> None:
        out: list[bytes] = []
        for chunk in chunks:
            usage = chunk.get("usage")
            if isinstance(usage, dict):
                self.usage = usage_from_dict(usage) or self.usage
            choices = []
            for choice in chunk.get("choices") or ():
                delta = choice.get("delta") or {}
                kept: dict[str, Any] = {}
                piece = delta.get("content")
                if isinstance(piece, str) and piece:
                    piece = self._text(piece)
                    if piece:
                        kept["content"] = piece
                for field in ("tool_calls", "refusal"):
                    if delta.get(field):
                        kept[field] = delta[field]
                finish = choice.get("finish_reason")
                if kept or finish:
                    choices.append({"index": 0, "delta": kept, "finish_reason": finish})
            frame: dict[str, Any] | None = {**self._head, "choices": choices} if choices else None
            if isinstance(usage, dict) and self._include_usage:
                if frame is None:
                    frame = {**self._head, "choices": []}
                frame["usage"] = usage
            if frame is not None:
                out.append(data_frame(_ENCODER.encode(frame)))
        if out:
            await send(b"".join(out))

    async def end(self, send: SendChunk) -> None:
        await send(DONE_FRAME)

    async def release(self, relay: Relay, send: SendChunk) -> None:
        await relay.release(send)


class ChatContinuer:
    """Continues a Chat Completions client's stream (whatever the upstream dialects)."""

    native_api = None

    def __init__(self, data: dict[str, Any], *, include_usage: bool) -> None:
        self._data = data
        self._include_usage = include_usage

    def partial(self, sent: bytes, relay: Relay) -> Partial | None:
        return chat_partial(sent)

    async def chat(self) -> dict[str, Any]:
        return self._data

    def native_call(self, attempt: Attempt, text: str) -> ConversationCall:
        raise NotImplementedError  # every deployment takes the Chat request

    def splice(self, partial: Partial, relay: Relay) -> Splice:
        return ChatSplice(partial, include_usage=self._include_usage)


# -- the rescue --------------------------------------------------------------------------------


def _with_output(usage: Usage | None, estimate: int) -> Usage | None:
    """A broken stream's reported usage with at least ``estimate`` output tokens: a stream cut
    before its end may have reported only its start (Anthropic's ``message_start``)."""
    if usage is None or usage.output_tokens >= estimate:
        return usage
    return msgspec.structs.replace(usage, output_tokens=estimate, source="estimated")


def continues(services: Services, deployment: Deployment) -> bool:
    return services.router.upstream(deployment).settings.continues


class Rescue:
    """Tries to continue one request's broken stream; see the module docstring."""

    def __init__(
        self,
        services: Services,
        trace: Trace,
        plan: list[Deployment],
        continuer: Continuer,
        send: SendChunk,
    ) -> None:
        self._services = services
        self._trace = trace
        self._plan = plan
        self._continuer = continuer
        self._send = send
        self.usage: Usage | None = None  # of the continuations
        self.broken_text = ""  # what the broken stream had sent when it broke (first rescue)
        self.broken_usage: Usage | None = None  # what the broken stream reported, if anything
        self._chat_request: dict[str, Any] | None = None

    @staticmethod
    def possible(services: Services, plan: list[Deployment]) -> bool:
        """Whether any deployment of the plan could continue a stream (worth keeping the tape)."""
        return any(continues(services, d) for d in plan)

    async def run(self, relay: Relay, broken: Deployment, sent: list[bytes]) -> None:
        """After ``relay`` ended with a held failure: continue elsewhere, or release it."""
        health = self._services.router.health
        failure = relay.failure
        self.broken_usage = relay.usage
        rescues = 0
        owner: Splice | None = None  # the continuation whose failure is the one left
        while failure is not None:
            provider = broken.provider
            self._services.router.breakers.failed(broken.provider, broken.upstream_model, failure)
            if not (failure.retryable and failure.failover) or rescues >= MAX_RESCUES:
                health.rescue(provider, "not_continuable")
                break
            partial = self._continuer.partial(b"".join(sent), relay)
            if partial is None:
                health.rescue(provider, "not_continuable")
                break
            candidates = [d for d in self._candidates(broken) if continues(self._services, d)]
            if not candidates:
                health.rescue(provider, "no_candidate")
                break
            chat = await self._chat(candidates)
            if chat is None:  # only the deployments that take the client's own request are left
                candidates = [d for d in candidates if d.api is self._continuer.native_api]
                if not candidates:
                    health.rescue(provider, "not_continuable")
                    break
            if not rescues:
                self.broken_text = partial.text
                self.broken_usage = _with_output(self.broken_usage, text_tokens(partial.text))
            rescues += 1
            outcome = await self._continue(partial, candidates, relay, chat)
            if isinstance(outcome, ClassifiedError):  # refused or failed before its commit
                health.rescue(provider, "refused" if not outcome.retryable else "failed")
                log.warning(
                    "broken stream not continued: provider=%s kind=%s; continuation: kind=%s status=%s",
                    provider,
                    failure.kind,
                    outcome.kind,
                    outcome.status_code,
                )
                break
            deployment, new_failure, splice = outcome
            health.rescue(provider, "continued")
            log.info(
                "broken stream continued: from=%s/%s to=%s/%s chars=%d",
                broken.provider,
                broken.upstream_model,
                deployment.provider,
                deployment.upstream_model,
                len(partial.text),
            )
            broken, failure, owner = deployment, new_failure, splice
        relay.failure = failure
        if failure is not None:
            await (owner.release(relay, self._send) if owner is not None else relay.release(self._send))

    async def _chat(self, candidates: list[Deployment]) -> dict[str, Any] | None:
        """The request as Chat, when a candidate needs it; None when it cannot be built (a
        request Chat cannot express, a store that cannot be read)."""
        if self._chat_request is not None:
            return self._chat_request
        native = self._continuer.native_api
        if all(d.api is native for d in candidates):
            return None
        try:
            self._chat_request = await self._continuer.chat()
        except Exception:
            log.warning("continuation request not built as Chat", exc_info=True)
        return self._chat_request

    def _candidates(self, broken: Deployment) -> list[Deployment]:
        plan = self._plan
        index = next((i for i, d in enumerate(plan) if d == broken), len(plan))
        return [d for d in plan[index + 1 :] if d != broken]

    async def _continue(
        self, partial: Partial, candidates: list[Deployment], relay: Relay, chat: dict[str, Any] | None
    ) -> ClassifiedError | tuple[Deployment, ClassifiedError | None, Splice]:
        services = self._services
        clock = services.clock

        async def attempt(attempt: Attempt) -> tuple[OpenedStream, ChunkReader, Deployment]:
            api = attempt.deployment.api
            if api is self._continuer.native_api:
                call = self._continuer.native_call(attempt, partial.text)
            else:
                assert chat is not None  # the candidates without it were left out
                call = dialect_for(api).continuation_call(attempt, chat, partial.text)
            opened = await open_stream(attempt, call.request, call.roles, clock)
            return opened, call.reader(clock), attempt.deployment

        failover: Failover[tuple[OpenedStream, ChunkReader, Deployment]] = Failover(
            services.router, clock, self._trace
        )
        try:
            opened, reader, deployment = await failover.run(candidates, attempt)
        except AttemptFailed as failed:
            return failed.classified
        splice = self._continuer.splice(partial, relay)
        failures: list[ClassifiedError] = []
        send = self._send

        async def take(chunks: list[dict[str, Any]]) -> bool:
            await splice.feed(chunks, send)
            return bool(reader.finished)

        async def body(idle: Watchdog) -> None:
            finished = False
            for event, _, payload in opened.events:
                finished = finished or await take(reader.feed(event, payload))
            if not finished:
                async for chunk in opened.chunks:
                    idle.touch()
                    for event in opened.decoder.feed(chunk):
                        finished = finished or await take(reader.feed(event, None))
                    if finished:
                        break
            if not finished:
                for event in opened.decoder.flush():
                    finished = finished or await take(reader.feed(event, None))
            if not finished:
                await take(reader.end())  # raises StreamTruncated for an unfinished answer
            await splice.end(send)

        async def fail(failure: ClassifiedError) -> None:
            failures.append(failure)

        upstream = services.router.upstream(deployment)
        await run_committed(
            opened,
            body,
            fail,
            provider=upstream.classifier_key,
            clock=clock,
            idle_timeout=upstream.settings.timeouts.idle,
        )
        if splice.usage is not None:
            self.usage = splice.usage.plus(self.usage)
        return deployment, failures[0] if failures else None, splice

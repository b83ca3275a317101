"""The post-commit relays: in-band errors, truncation and stalls never end like a success."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx

from gateway.clock import ManualClock
from gateway.dialects.chat_completions import ChatEventRoles as ChatStreamDialect
from gateway.errors import chat_stream_error_frame
from gateway.upstream.call import OpenedStream
from gateway.upstream.relay import PassthroughRelay
from gateway.upstream.sse import DONE_FRAME, SSEDecoder

ROLE = b'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}\n\n'
HELLO = b'data: {"choices":[{"index":0,"delta":{"content":"Hel"}}]}\n\n'
LO = b'data: {"choices":[{"index":0,"delta":{"content":"lo"}}]}\n\n'
ERROR = b'data: {"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}\n\n'


async def chunks_of(*parts: bytes, hang: bool = False) -> AsyncIterator[bytes]:
    for part in parts:
        yield part
    if hang:
        await asyncio.get_running_loop().create_future()


def opened(buffered: list[bytes], rest: AsyncIterator[bytes]) -> OpenedStream:
    return OpenedStream(httpx.Response(200), rest, buffered, [], SSEDecoder())


def relay(clock: ManualClock) -> PassthroughRelay:
    return PassthroughRelay(
        roles=ChatStreamDialect(),
        done_marker=DONE_FRAME[:-2],
        error_frames=chat_stream_error_frame,
        provider="openai",
        clock=clock,
        idle_timeout=30.0,
    )


async def run(stream: OpenedStream, clock: ManualClock) -> tuple[bytes, PassthroughRelay]:
    sent: list[bytes] = []

    async def send(chunk: bytes) -> None:
        sent.append(chunk)

    r = relay(clock)
    await r.run(stream, send)
    return b"".join(sent), r


def last_error(body: bytes) -> dict[str, object]:
    frames = [f for f in body.split(b"\n\n") if f]
    payload = json.loads(frames[-1].removeprefix(b"data: "))
    assert isinstance(payload["error"], dict)
    return payload["error"]


async def test_clean_stream_is_relayed_byte_for_byte() -> None:
    body, r = await run(opened([ROLE, HELLO], chunks_of(LO, DONE_FRAME)), ManualClock())
    assert body == ROLE + HELLO + LO + DONE_FRAME
    assert r.failure is None


async def test_inband_error_after_commit_is_classified_and_nothing_follows() -> None:
    # The error shares a read with content: the content is forwarded, the error replaced.
    body, r = await run(opened([ROLE, HELLO], chunks_of(LO + ERROR, DONE_FRAME)), ManualClock())
    assert body.startswith(ROLE + HELLO + LO)
    assert DONE_FRAME not in body
    error = last_error(body)
    assert (error["kind"], error["code"], error["provider"]) == (
        "rate_limit",
        "rate_limit_exceeded",
        "openai",
    )
    assert r.failure is not None


async def test_missing_done_is_a_truncated_stream() -> None:
    body, _ = await run(opened([ROLE, HELLO], chunks_of(LO)), ManualClock())
    assert body.startswith(ROLE + HELLO + LO)
    assert last_error(body)["code"] == "stream_truncated"


async def test_done_split_across_reads_still_counts() -> None:
    body, r = await run(opened([ROLE, HELLO], chunks_of(b"data: [DO", b"NE]\n\n")), ManualClock())
    assert body.endswith(b"data: [DONE]\n\n")
    assert r.failure is None


async def test_stall_hits_the_idle_timer() -> None:
    clock = ManualClock()
    task = asyncio.ensure_future(run(opened([ROLE, HELLO], chunks_of(LO, hang=True)), clock))
    timer = await clock.wait_for_timer("stream_idle")
    assert timer.deadline - timer.armed_at == 30.0
    clock.advance(30.0)
    body, _ = await asyncio.wait_for(task, 2)
    assert last_error(body)["code"] == "stream_idle_timeout"
    assert DONE_FRAME not in body


async def test_activity_pushes_the_idle_deadline_back() -> None:
    clock = ManualClock()
    release = asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield LO
        await release.wait()
        yield DONE_FRAME

    task = asyncio.ensure_future(run(opened([ROLE], slow()), clock))
    await clock.wait_for_timer("stream_idle")
    clock.advance(20.0)
    release.set()
    body, r = await asyncio.wait_for(task, 2)
    assert r.failure is None
    assert body.endswith(DONE_FRAME)


async def test_a_corrupted_event_after_commit_ends_with_an_inband_error() -> None:
    broken = b'data: {"choices":[{"index":0,"delta":{"content":"lo"}}\n\n'  # cut JSON
    body, r = await run(opened([ROLE, HELLO], chunks_of(LO + broken, LO, DONE_FRAME)), ManualClock())
    # What came before the broken event is forwarded; the broken event and the rest are not.
    assert body.startswith(ROLE + HELLO + LO)
    assert broken not in body
    assert DONE_FRAME not in body
    error = last_error(body)
    assert (error["kind"], error["provider"], error["retryable"]) == ("generic", "openai", True)
    assert error["detail"] == "An upstream stream event was not valid JSON."
    assert r.failure is not None


async def test_a_cut_that_still_ends_in_a_brace_is_caught() -> None:
    broken = b'data: {"choices":[{"index":0,"delta":{}\n\n'
    body, r = await run(opened([ROLE, HELLO], chunks_of(broken, DONE_FRAME)), ManualClock())
    assert DONE_FRAME not in body
    assert r.failure is not None


async def test_events_split_across_reads_are_sent_whole() -> None:
    sent: list[bytes] = []

    async def send(chunk: bytes) -> None:
        sent.append(chunk)

    stream = opened([ROLE], chunks_of(HELLO[:10], HELLO[10:30], HELLO[30:] + LO[:5], LO[5:], DONE_FRAME))
    r = relay(ManualClock())
    await r.run(stream, send)
    assert sent == [ROLE, HELLO, LO, DONE_FRAME]
    assert r.failure is None


async def test_legal_sse_variants_pass_untouched() -> None:
    multi_line = b'data: {"choices":[{"index":0,\ndata: "delta":{"content":"x"}}]}\n\n'
    crlf = b'data: {"choices":[{"index":0,"delta":{"content":"y"}}]}\r\n\r\n'
    comment = b": keep-alive\n\n"
    no_space = b'data:{"choices":[{"index":0,"delta":{"content":"z"}}]}\n\n'
    parts = (multi_line, crlf, comment, no_space, DONE_FRAME)
    body, r = await run(opened([ROLE], chunks_of(*parts)), ManualClock())
    assert body == ROLE + b"".join(parts)
    assert r.failure is None


async def test_a_last_event_without_its_blank_line_counts() -> None:
    body, r = await run(opened([ROLE, HELLO], chunks_of(b"data: [DONE]")), ManualClock())
    assert body == ROLE + HELLO + b"data: [DONE]\n\n"
    assert r.failure is None
    body, r = await run(opened([ROLE, HELLO], chunks_of(b'data: {"choices":[')), ManualClock())
    assert body.startswith(ROLE + HELLO + b'data: {"error":')
    assert r.failure is not None and r.failure.detail == "An upstream stream event was not valid JSON."


def test_what_does_not_commit_a_stream_or_disarm_the_startup_guard() -> None:
    """Keep-alive comments produce no event; role-only chunks, ``ping``, ``message_start`` and
    ``response.created``/``in_progress`` are harmless; content is what commits."""
    from gateway.dialects.anthropic import AnthropicEventRoles as AnthropicStreamDialect
    from gateway.dialects.responses import ResponsesEventRoles as ResponsesStreamDialect
    from gateway.upstream.call import EventRole

    decoder = SSEDecoder()
    assert decoder.feed(b": keep-alive\n\n:\n\n") == []
    chat = ChatStreamDialect()
    [role_only] = decoder.feed(ROLE)
    assert chat.role(role_only)[0] is EventRole.HARMLESS
    [hello] = decoder.feed(HELLO)
    assert chat.role(hello)[0] is EventRole.MEANINGFUL
    anthropic = AnthropicStreamDialect()
    frames = (
        b'event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":3}}}\n\n'
        b'event: ping\ndata: {"type": "ping"}\n\n'
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
        b'"delta":{"type":"text_delta","text":"Hi"}}\n\n'
        b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    )
    roles = [anthropic.role(e)[0] for e in decoder.feed(frames)]
    assert roles == [EventRole.HARMLESS, EventRole.HARMLESS, EventRole.MEANINGFUL, EventRole.ERROR]
    responses = ResponsesStreamDialect()
    frames = b"".join(
        b"event: " + t.encode() + b'\ndata: {"type":"' + t.encode() + b'"}\n\n'
        for t in ("response.created", "response.in_progress", "response.output_text.delta", "error")
    )
    roles = [responses.role(e)[0] for e in decoder.feed(frames)]
    assert roles == [EventRole.HARMLESS, EventRole.HARMLESS, EventRole.MEANINGFUL, EventRole.ERROR]

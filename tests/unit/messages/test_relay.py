"""The translated stream's outer relay: Chat frames in, Anthropic events out; errors and pings."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec

from gateway.clock import ManualClock
from gateway.errors import ClassifiedError, ErrorKind, chat_stream_error_frame
from gateway.messages.relay import PING_FRAME, PING_TIMER, MessagesRelay
from gateway.pricing import Usage
from gateway.translate.messages_chat import MessagesContext
from gateway.translate.messages_stream import ChatToMessagesStream
from gateway.upstream.committed import SendChunk


def frame(payload: dict[str, Any]) -> bytes:
    return b"data: " + msgspec.json.encode(payload) + b"\n\n"


TEXT = frame({"model": "m", "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": None}]})
STOP = frame({"model": "m", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
FAILURE = ClassifiedError(
    kind=ErrorKind.OVERLOADED, provider="openai", status_code=503, retryable=True, message="Overloaded."
)


class Inner:
    """A stand-in for the dialect's relay: sends the given frames, waiting where told."""

    def __init__(self, frames: list[bytes | asyncio.Event], failure: ClassifiedError | None = None) -> None:
        self.frames = frames
        self.fail_with = failure
        self.failure: ClassifiedError | None = None
        self.hold = False
        self.usage: Usage | None = Usage(input_tokens=3)
        self.model: str | None = "m"

    async def run(self, opened: Any, send: SendChunk) -> None:
        for item in self.frames:
            if isinstance(item, asyncio.Event):
                await item.wait()
            else:
                await send(item)
        if self.fail_with is not None:
            self.failure = self.fail_with
            await send(chat_stream_error_frame(self.fail_with))

    async def release(self, send: SendChunk) -> None:
        pass


def relay(inner: Inner, clock: ManualClock) -> MessagesRelay:
    stream = ChatToMessagesStream(model="m", input_tokens=10, context=MessagesContext())
    return MessagesRelay(inner, stream, clock)  # type: ignore[arg-type]


def events(sent: list[bytes]) -> list[str]:
    body = b"".join(sent).decode()
    return [line[7:] for line in body.splitlines() if line.startswith("event: ")]


async def test_a_clean_stream_ends_with_message_stop() -> None:
    sent: list[bytes] = []

    async def send(chunk: bytes) -> None:
        sent.append(chunk)

    outer = relay(Inner([TEXT, STOP, b"data: [DONE]\n\n"]), ManualClock())
    await outer.run(None, send)  # type: ignore[arg-type]
    assert events(sent) == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert outer.failure is None and outer.usage == Usage(input_tokens=3) and outer.model == "m"


async def test_a_failure_is_an_error_event_from_the_same_classification_and_no_message_stop() -> None:
    sent: list[bytes] = []

    async def send(chunk: bytes) -> None:
        sent.append(chunk)

    outer = relay(Inner([TEXT], failure=FAILURE), ManualClock())
    await outer.run(None, send)  # type: ignore[arg-type]
    assert events(sent)[-1] == "error"
    assert "message_stop" not in events(sent)
    last = msgspec.json.decode(sent[-1].split(b"data: ", 1)[1])
    assert last == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": last["error"]["message"]},
    }
    assert outer.failure is FAILURE


async def test_pings_go_out_while_the_upstream_is_silent() -> None:
    clock = ManualClock()
    sent: list[bytes] = []

    async def send(chunk: bytes) -> None:
        sent.append(chunk)

    more = asyncio.Event()
    outer = relay(Inner([TEXT, more, STOP]), clock)
    task = asyncio.create_task(outer.run(None, send))  # type: ignore[arg-type]
    for _ in range(100):
        await asyncio.sleep(0)
        if clock.pending(PING_TIMER):
            break
    clock.advance(9.9)
    await asyncio.sleep(0)
    assert PING_FRAME not in sent
    clock.advance(0.2)
    for _ in range(10):
        await asyncio.sleep(0)
    assert sent.count(PING_FRAME) == 1
    clock.advance(10.0)
    for _ in range(10):
        await asyncio.sleep(0)
    assert sent.count(PING_FRAME) == 2
    more.set()
    await task
    assert events(sent)[-1] == "message_stop"
    assert not clock.pending(PING_TIMER)

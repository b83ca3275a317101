"""The stream rules after the commit point: malformed events are dropped (a run of them ends the
stream), a finished answer without ``[DONE]`` is complete, and a relay may hold its failure
back for a rescue."""

from __future__ import annotations

import httpx
import pytest

from gateway.clock import ManualClock
from gateway.upstream.call import GuardedDecoder, OpenedStream
from gateway.upstream.relay import EventFramer
from gateway.upstream.sse import DONE_FRAME
from gateway.upstream.stream_errors import MalformedGuard, StreamFailure
from tests.unit.upstream.test_relay import HELLO, LO, ROLE, chunks_of, last_error, relay

BAD = b'data: {"choices":[{"index":0,"delta":{"con\n\n'
FINISH = b'data: {"choices":[{"index":0,"delta":{},"finish_reason": "stop"}]}\n\n'


class Counted:
    def __init__(self) -> None:
        self.count = 0

    def malformed(self, provider: str) -> None:
        self.count += 1


def guard(limit: int = 3, sink: Counted | None = None) -> MalformedGuard:
    return MalformedGuard(provider="openai", name="p", limit=limit, sink=sink or Counted())


def guarded(rest: list[bytes], limit: int = 3, sink: Counted | None = None) -> OpenedStream:
    decoder = GuardedDecoder()
    decoder.guard = guard(limit, sink)
    return OpenedStream(httpx.Response(200), chunks_of(*rest), [ROLE, HELLO], [], decoder)


async def run(stream: OpenedStream, *, hold: bool = False) -> tuple[bytes, object]:
    sent: list[bytes] = []

    async def send(chunk: bytes) -> None:
        sent.append(chunk)

    r = relay(ManualClock())
    r.hold = hold
    await r.run(stream, send)
    return b"".join(sent), r


def test_the_framer_drops_a_malformed_event_and_keeps_the_rest_of_the_read() -> None:
    sink = Counted()
    framer = EventFramer(guard(sink=sink))
    whole, failure = framer.feed(HELLO + BAD + LO)
    assert (whole, failure) == (HELLO + LO, None)
    assert sink.count == 1


def test_the_framer_ends_the_stream_at_the_limit_with_what_came_before() -> None:
    framer = EventFramer(guard(limit=2))
    whole, failure = framer.feed(HELLO + BAD + LO + BAD + BAD + LO)
    assert whole == HELLO + LO  # one bad dropped, a valid one reset the run, two in a row end it
    assert isinstance(failure, StreamFailure)
    assert failure.classified.detail == "An upstream stream event was not valid JSON."


def test_the_guarded_decoder_drops_what_is_not_json() -> None:
    sink = Counted()
    decoder = GuardedDecoder()
    decoder.guard = guard(sink=sink)
    events = decoder.feed(HELLO + BAD + DONE_FRAME)
    assert [e.data for e in events] == [HELLO[6:-2].decode(), "[DONE]"]
    assert sink.count == 1
    with pytest.raises(StreamFailure):
        decoder.feed(BAD * 3)


async def test_one_malformed_event_is_skipped_by_the_passthrough_relay() -> None:
    sink = Counted()
    body, r = await run(guarded([BAD, LO, FINISH, DONE_FRAME], sink=sink))
    assert body == ROLE + HELLO + LO + FINISH + DONE_FRAME
    assert r.failure is None
    assert sink.count == 1


async def test_a_finished_answer_without_done_is_complete_and_gets_its_marker() -> None:
    body, r = await run(guarded([LO, FINISH]))
    assert body == ROLE + HELLO + LO + FINISH + DONE_FRAME
    assert r.failure is None


async def test_an_unfinished_answer_without_done_is_truncated() -> None:
    body, _ = await run(guarded([LO]))
    assert last_error(body)["code"] == "stream_truncated"
    assert b"[DONE]" not in body


async def test_a_held_failure_is_sent_only_on_release() -> None:
    body, r = await run(guarded([LO]), hold=True)
    assert body == ROLE + HELLO + LO
    failure = r.failure
    assert failure is not None and failure.code == "stream_truncated"
    released: list[bytes] = []

    async def send(chunk: bytes) -> None:
        released.append(chunk)

    await r.release(send)  # type: ignore[attr-defined]
    assert last_error(b"".join(released))["code"] == "stream_truncated"

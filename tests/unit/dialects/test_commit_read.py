"""The read that commits a stream: the events after the commit point in that same read are
checked (JSON, no in-band failure) without being decoded, and a failure among them still fails
the attempt, in every dialect; a relay forwards such a read without checking it again."""

from __future__ import annotations

import pytest
import respx

from gateway.clock import ManualClock
from gateway.dialects.anthropic import ROLES as ANTHROPIC
from gateway.dialects.chat_completions import ROLES as CHAT
from gateway.dialects.responses import ROLES as RESPONSES
from gateway.errors import AttemptFailed
from gateway.upstream.call import EventRoles, OpenedStream
from gateway.upstream.relay import EventFramer
from gateway.upstream.stream_errors import MalformedGuard, NoSink
from tests.unit.dialects.conftest import BASE, attempt_on, opened, sse
from tests.unit.upstream.test_relay import HELLO, LO, ROLE, chunks_of, run

FINISH = b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
DONE = b"data: [DONE]\n\n"
BAD = b'data: {"choices":[{"index":0,"delta":{"con\n\n'
CHAT_ERROR = (
    b'data: {"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}\n\n'
)
PATHS = {"chat": "/chat/completions", "responses": "/responses", "anthropic": "/messages"}


async def open_one_read(api: str, body: bytes, roles: EventRoles) -> OpenedStream:
    clock = ManualClock()
    with respx.MockRouter() as router:
        router.post(f"{BASE}{PATHS[api]}").mock(return_value=sse(body))
        attempt = attempt_on(api, router, clock)
        request = attempt.upstream.request("POST", PATHS[api], b"{}")
        return await opened(attempt, request, roles, clock)


async def test_events_after_the_commit_point_are_checked_not_decoded() -> None:
    stream = await open_one_read("chat", ROLE + HELLO + LO + FINISH + DONE, CHAT)
    assert stream.clean
    events = stream.events
    assert [e.data for e, _, _ in events] == [f[6:-2].decode() for f in (ROLE, HELLO, LO, FINISH, DONE)]
    # The role chunk and the committing one decoded; what follows them only checked.
    assert [payload is not None for _, _, payload in events] == [True, True, False, False, False]


async def test_the_read_that_commits_is_relayed_whole_without_checking_it_again() -> None:
    stream = await open_one_read("chat", ROLE + HELLO + LO + FINISH + DONE, CHAT)
    stream.chunks = chunks_of()
    body, relay = await run(stream, ManualClock())
    assert body == ROLE + HELLO + LO + FINISH + DONE
    assert relay.failure is None


@pytest.mark.parametrize(
    ("api", "body", "roles", "code"),
    [
        ("chat", ROLE + HELLO + LO + CHAT_ERROR, CHAT, "rate_limit_exceeded"),
        (
            "anthropic",
            b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
            b'"delta":{"type":"text_delta","text":"Hi"}}\n\n'
            b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n',
            ANTHROPIC,
            None,
        ),
        (
            "responses",
            b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":"Hi"}\n\n'
            b'event: response.failed\ndata: {"type":"response.failed","response":{"id":"resp_1",'
            b'"status":"failed","error":{"code":"server_error","message":"The model broke."}}}\n\n',
            RESPONSES,
            "server_error",
        ),
    ],
)
async def test_a_failure_later_in_the_committing_read_still_fails_the_attempt(
    api: str, body: bytes, roles: EventRoles, code: str | None
) -> None:
    with pytest.raises(AttemptFailed) as failed:
        await open_one_read(api, body, roles)
    classified = failed.value.classified
    assert classified.retryable
    if code is not None:
        assert classified.code == code


async def test_a_malformed_event_after_the_commit_point_is_dropped_from_the_committing_read() -> None:
    stream = await open_one_read("chat", ROLE + HELLO + BAD + LO + FINISH + DONE, CHAT)
    assert not stream.clean
    assert [e.data for e, _, _ in stream.events][2] == LO[6:-2].decode()
    stream.chunks = chunks_of()
    body, relay = await run(stream, ManualClock())
    assert body == ROLE + HELLO + LO + FINISH + DONE
    assert relay.failure is None


@pytest.mark.parametrize("sep", [b"\n\n", b"\r\n\r\n"])
def test_the_framer_cuts_judged_bytes_after_their_last_whole_event(sep: bytes) -> None:
    framer = EventFramer(MalformedGuard(provider="openai", name="p", limit=3, sink=NoSink()))
    first, second = b'data: {"a":1}' + sep, b'data: {"b":2}' + sep
    assert framer.feed(first + second[:5], check=False) == (first, None)
    assert framer.feed(second[5:-1], check=False) == (b"", None)
    # The rest of the cut event comes with the next (checked) read, whole; that read is checked.
    assert framer.feed(second[-1:] + b"data: not json" + sep) == (second, None)
    assert framer.guard.dropped == 1


def test_the_framer_leaves_bytes_without_a_whole_event_for_later() -> None:
    framer = EventFramer(MalformedGuard(provider="openai", name="p", limit=3, sink=NoSink()))
    assert framer.feed(b'data: {"a":', check=False) == (b"", None)
    assert framer.feed(b"1}\n\n") == (b'data: {"a":1}\n\n', None)

"""Faults below the HTTP error level: resets, silence, stalls, cuts, malformed and in-band errors, latency.

A hanging answer (silence, stall) waits on the fakes' clock without end: once that wait has begun
(a manual clock shows it), the answer has sent all it ever will, and the client, listening a moment
longer, gets nothing more. It ends when the client goes away: `/_fake/status` shows no answer still
running (polled with a deadline, never a fixed sleep). Latency (`slow`) waits on the manual clock
too, and the test moves it pause by pause.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import openai
import pytest

from fake_providers.clock import FIRST_PART, GAP, HANG
from fake_providers.testing import FakeProviders, parse_sse
from gateway.clock import ManualClock
from gateway.testing import poll_until

CHAT = "/openai/v1/chat/completions"
MESSAGES: Any = [{"role": "user", "content": "one two three four"}]
QUIET = 0.3  # how long a client listens for more once the fake's answer hangs


def no_answer_running(providers: FakeProviders) -> Callable[[], bool]:
    return lambda: providers.status()["active_replies"] == 0


def collect_lines(response: httpx.Response, into: list[str]) -> None:
    into.extend(line for line in response.iter_lines() if line)


def request(model: str, *, stream: bool) -> dict[str, object]:
    return {"model": model, "messages": MESSAGES, "stream": stream}


@pytest.mark.parametrize("stream", [False, True])
def test_reset_before_any_header(http: httpx.Client, stream: bool) -> None:
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)) as raised:
        http.post(CHAT, json=request("fault-reset", stream=stream))
    if isinstance(raised.value, httpx.ReadError):
        assert "reset" in str(raised.value).lower()


def test_reset_surfaces_as_a_connection_error_in_the_sdk(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="fault-reset", messages=MESSAGES)


async def hanging(clock: ManualClock) -> None:
    """Returns once the fake's answer has sent all it will send: its endless wait has begun."""
    await clock.wait_for_timer(HANG)


async def nothing_more(read: Awaitable[object]) -> None:
    """The client listens a moment longer and gets nothing (the fake hangs: nothing can come)."""
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(read, QUIET)


async def data_lines(response: httpx.Response) -> AsyncIterator[str]:
    async for line in response.aiter_lines():
        if line:
            yield line


@pytest.mark.parametrize("stream", [False, True])
async def test_silence_sends_headers_then_nothing_until_the_client_leaves(
    providers: FakeProviders, fake_clock: ManualClock, stream: bool
) -> None:
    async with (
        httpx.AsyncClient(base_url=providers.base_url, timeout=5.0) as http,
        http.stream("POST", CHAT, json=request("fault-silence", stream=stream)) as response,
    ):
        assert response.status_code == 200
        assert response.headers["x-request-id"].startswith("req_")
        assert providers.status()["active_replies"] == 1
        await hanging(fake_clock)
        await nothing_more(response.aread())
    poll_until(no_answer_running(providers))


async def test_stall_sends_some_chunks_then_nothing(
    providers: FakeProviders, fake_clock: ManualClock
) -> None:
    async with (
        httpx.AsyncClient(base_url=providers.base_url, timeout=5.0) as http,
        http.stream("POST", CHAT, json=request("fault-stall-3", stream=True)) as response,
    ):
        await hanging(fake_clock)
        lines = data_lines(response)
        received = [await anext(lines) for _ in range(3)]
        await nothing_more(anext(lines))
    chunks = [json.loads(line.removeprefix("data: ")) for line in received]
    assert [chunk["choices"][0]["delta"] for chunk in chunks] == [
        {"role": "assistant", "content": ""},
        {"content": "You "},
        {"content": "said: "},
    ]
    poll_until(no_answer_running(providers))


async def test_stall_of_a_json_answer_sends_half_the_body(
    providers: FakeProviders, fake_clock: ManualClock
) -> None:
    async with (
        httpx.AsyncClient(base_url=providers.base_url, timeout=5.0) as http,
        http.stream("POST", CHAT, json=request("fault-stall", stream=False)) as response,
    ):
        assert response.status_code == 200
        await hanging(fake_clock)
        pieces = response.aiter_raw()
        first = await anext(pieces)
        assert first.startswith(b'{"id":"chatcmpl-')
        assert len(first) < int(response.headers["content-length"])
        await nothing_more(anext(pieces))
    poll_until(no_answer_running(providers))


def test_cut_closes_the_stream_without_done(providers: FakeProviders) -> None:
    lines: list[str] = []
    with (
        httpx.Client(base_url=providers.base_url, timeout=5.0) as http,
        http.stream("POST", CHAT, json=request("fault-cut", stream=True)) as response,
    ):
        assert response.status_code == 200
        with pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"):
            collect_lines(response, lines)
    assert len(lines) == 2
    assert all(line.startswith("data: {") for line in lines)
    poll_until(no_answer_running(providers))


def test_cut_json_body_is_shorter_than_announced(http: httpx.Client) -> None:
    with pytest.raises(
        httpx.RemoteProtocolError, match="peer closed connection without sending complete message body"
    ):
        http.post(CHAT, json=request("fault-cut", stream=False))


def test_malformed_chunk_breaks_the_sdk_stream(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model="fault-malformed", messages=MESSAGES, stream=True)
    chunks = iter(stream)
    assert [next(chunks).choices[0].delta.content for _ in range(2)] == ["", "You "]
    with pytest.raises(json.JSONDecodeError):
        next(chunks)


def test_malformed_stream_on_the_wire(http: httpx.Client) -> None:
    events = parse_sse(http.post(CHAT, json=request("fault-malformed-1", stream=True)).text)
    assert json.loads(events[0].data)["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    with pytest.raises(json.JSONDecodeError):
        json.loads(events[1].data)
    assert events[1].data.startswith('{"id":"chatcmpl-')
    assert [json.loads(event.data)["choices"][0]["delta"].get("content") for event in events[2:-2]] == [
        "said: ",
        "one ",
        "two ",
        "three ",
        "four",
    ]
    assert events[-1].data == "[DONE]"


def test_malformed_json_answer(http: httpx.Client) -> None:
    response = http.post(CHAT, json=request("fault-malformed", stream=False))
    assert response.status_code == 200
    assert response.text.startswith('{"id":"chatcmpl-')
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_inband_error_after_the_role_chunk(http: httpx.Client) -> None:
    events = parse_sse(http.post(CHAT, json=request("fault-inband", stream=True)).text)
    assert len(events) == 2
    assert json.loads(events[0].data)["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert json.loads(events[1].data) == {
        "error": {
            "message": "The server had an error while processing your request. Sorry about that!",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    }


def test_inband_error_raises_in_the_sdk(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="fault-inband-context-length", messages=MESSAGES, stream=True
    )
    with pytest.raises(openai.APIError) as raised:
        list(stream)
    assert raised.value.message.startswith("This model's maximum context length is 4097 tokens.")
    assert raised.value.code == "context_length_exceeded"


def test_inband_on_a_json_request_is_a_200_error(http: httpx.Client) -> None:
    response = http.post(CHAT, json=request("fault-inband-529", stream=False))
    assert response.status_code == 200
    assert response.json()["error"]["type"] == "overloaded_error"


def test_slow_delays_the_first_chunk_and_the_gaps(http: httpx.Client, fake_clock: ManualClock) -> None:
    normal = parse_sse(http.post(CHAT, json=request("gpt-4o-mini", stream=True)).text)
    arrivals: list[str] = []

    def read() -> None:
        with http.stream("POST", CHAT, json=request("fault-slow-60ms-20ms", stream=True)) as response:
            collect_lines(response, arrivals)

    with ThreadPoolExecutor(1) as pool:
        reading = pool.submit(read)
        first = fake_clock.wait_for_timer_blocking(FIRST_PART)
        assert first.deadline - first.armed_at == pytest.approx(0.06)
        assert arrivals == []  # nothing before the clock moves
        fake_clock.advance(0.06)
        poll_until(lambda: len(arrivals) == 1, what="the first chunk")
        for sent in range(1, len(normal)):
            gap = fake_clock.wait_for_timer_blocking(GAP)
            assert gap.deadline - gap.armed_at == pytest.approx(0.02)
            assert len(arrivals) == sent  # each further chunk waits for its own gap
            fake_clock.advance(0.02)
            poll_until(lambda n=sent + 1: len(arrivals) == n, what=f"chunk {sent + 1}")
        reading.result(timeout=10)
    assert len(arrivals) == len(normal)
    assert fake_clock.pending() == []


def test_slow_json_answer_waits_before_the_headers(http: httpx.Client, fake_clock: ManualClock) -> None:
    headers = threading.Event()

    def read() -> httpx.Response:
        with http.stream("POST", CHAT, json=request("fault-slow-50ms", stream=False)) as response:
            headers.set()
            response.read()
            return response

    with ThreadPoolExecutor(1) as pool:
        reading = pool.submit(read)
        timer = fake_clock.wait_for_timer_blocking(FIRST_PART)
        assert timer.deadline - timer.armed_at == pytest.approx(0.05)
        assert not headers.is_set()
        fake_clock.advance(0.05)
        response = reading.result(timeout=10)
    assert response.json()["choices"][0]["message"]["content"] == "You said: one two three four"


def test_inband_error_after_some_content(http: httpx.Client) -> None:
    events = parse_sse(http.post(CHAT, json=request("fault-inband-429-after-3", stream=True)).text)
    assert [json.loads(event.data)["choices"][0]["delta"] for event in events[:3]] == [
        {"role": "assistant", "content": ""},
        {"content": "You "},
        {"content": "said: "},
    ]
    assert json.loads(events[3].data)["error"]["code"] == "rate_limit_exceeded"
    assert len(events) == 4

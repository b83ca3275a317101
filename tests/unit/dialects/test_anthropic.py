"""The Anthropic Messages dialect against recorded Anthropic answers."""

from __future__ import annotations

import json

import httpx
import respx

from gateway.clock import ManualClock
from gateway.config import UpstreamApi
from gateway.dialects import dialect_for
from gateway.upstream.call import call_json
from gateway.upstream.sse import SSEDecoder
from tests.unit.dialects.conftest import BASE, Turn, attempt_on, opened, recorded, sse

DIALECT = dialect_for(UpstreamApi.ANTHROPIC)
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


async def test_a_chat_request_becomes_a_messages_request_and_the_answer_a_completion(
    router: respx.MockRouter,
) -> None:
    clock = ManualClock()
    route = router.post(f"{BASE}/messages").mock(
        return_value=httpx.Response(200, content=recorded("anthropic_message.json"))
    )
    attempt = attempt_on("anthropic", router, clock)
    data = {
        "model": "m",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Capital of France?"},
        ],
    }
    call = DIALECT.chat_call(attempt, data, clock=clock, ask_usage=True)
    response = await call_json(attempt, call.request, clock)
    completion = json.loads(call.answer(response.content))
    request = route.calls.last.request
    assert request.headers["x-api-key"] == "sk-upstream"
    assert "authorization" not in request.headers
    sent = json.loads(request.content)
    assert (sent["model"], sent["max_tokens"], sent["system"]) == ("upstream-model", 4096, "Be brief.")
    assert "stream_options" not in sent  # asking for usage is a Chat Completions matter
    assert completion["object"] == "chat.completion"
    assert completion["choices"][0]["message"]["content"] == "Paris is the capital of France."
    assert completion["choices"][0]["finish_reason"] == "stop"
    assert (completion["usage"]["prompt_tokens"], completion["usage"]["completion_tokens"]) == (19, 10)


async def test_a_stream_is_translated_to_chat_chunks_with_its_usage(router: respx.MockRouter) -> None:
    clock = ManualClock()
    router.post(f"{BASE}/messages").mock(return_value=sse(recorded("anthropic_tool_stream.sse")))
    attempt = attempt_on("anthropic", router, clock)
    data = {
        "model": "m",
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
        "tools": [TOOL],
        "stream": True,
    }
    call = DIALECT.chat_call(attempt, data, clock=clock, ask_usage=False)
    assert json.loads(call.request.content)["tools"][0]["input_schema"]["required"] == ["city"]
    stream = await opened(attempt, call.request, call.roles, clock)
    relay = call.relay(clock, include_usage=True, tap=None)
    out: list[bytes] = []

    async def send(chunk: bytes) -> None:
        out.append(chunk)

    await relay.run(stream, send)
    assert relay.failure is None
    events = SSEDecoder().feed(b"".join(out))
    assert events[-1].data == "[DONE]"
    chunks = [json.loads(e.data) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Let me check."
    calls = [t for c in chunks if c["choices"] for t in c["choices"][0]["delta"].get("tool_calls", ())]
    assert calls[0]["id"] == "toolu_01T1x1fJ34qAmk2tNTrN7Up6"
    assert "".join(t["function"].get("arguments", "") for t in calls) == '{"city": "Paris"}'
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "tool_calls"
    assert chunks[-1]["usage"]["completion_tokens"] == 89
    assert relay.usage is not None and relay.usage.input_tokens == 472


async def test_a_conversation_reads_claude_as_chat_chunks(router: respx.MockRouter) -> None:
    clock = ManualClock()
    route = router.post(f"{BASE}/messages").mock(return_value=sse(recorded("anthropic_tool_stream.sse")))
    attempt = attempt_on("anthropic", router, clock)
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    call = DIALECT.conversation_call(attempt, messages, [TOOL], previous_response_id=None, store=True)
    stream = await opened(attempt, call.request, call.roles, clock)
    reader = call.reader(clock)
    chunks = [c for event, _, payload in stream.events for c in reader.feed(event, payload)]
    async for raw in stream.chunks:
        for event in stream.decoder.feed(raw):
            chunks += reader.feed(event, None)
    await stream.aclose()
    assert reader.finished and reader.response_id is None
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["prompt_tokens"] == 472
    sent = json.loads(route.calls.last.request.content)
    assert sent["stream"] is True and sent["tools"][0]["name"] == "get_weather"


async def test_a_responses_request_goes_through_chat_to_messages(router: respx.MockRouter) -> None:
    clock = ManualClock()
    route = router.post(f"{BASE}/messages").mock(
        return_value=httpx.Response(200, content=recorded("anthropic_message.json"))
    )
    attempt = attempt_on("anthropic", router, clock)
    turn = Turn({"model": "m", "input": "Capital of France?"})
    call = await DIALECT.responses_call(attempt, turn, clock=clock, native=False)
    produced = call.answer((await call_json(attempt, call.request, clock)).content)
    sent = json.loads(route.calls.last.request.content)
    assert sent["max_tokens"] == 1024  # the Responses setting, not the Chat default
    assert produced.upstream_id is None
    assert produced.response["id"] == "resp_gateway"
    assert produced.response["output"][0]["content"][0]["text"] == "Paris is the capital of France."

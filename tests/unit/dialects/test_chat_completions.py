"""The Chat Completions dialect against recorded OpenAI answers."""

from __future__ import annotations

import json

import httpx
import respx

from gateway.clock import ManualClock
from gateway.config import UpstreamApi
from gateway.dialects import dialect_for
from gateway.upstream.call import call_json
from tests.unit.dialects.conftest import BASE, Turn, attempt_on, opened, recorded, sse

DIALECT = dialect_for(UpstreamApi.CHAT)
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": None, "required": None},
    },
}


async def test_a_request_passes_through_with_the_deployments_model_and_repaired_tools(
    router: respx.MockRouter,
) -> None:
    clock = ManualClock()
    route = router.post(f"{BASE}/chat/completions").mock(
        return_value=httpx.Response(200, content=recorded("chat_completion.json"))
    )
    attempt = attempt_on("chat", router, clock)
    data = {
        "model": "m",
        "messages": [{"role": "user", "content": "Capital of France?"}],
        "tools": [TOOL],
        "seed": 7,
    }
    call = DIALECT.chat_call(attempt, data, clock=clock, ask_usage=False)
    response = await call_json(attempt, call.request, clock)
    assert call.answer(response.content) == recorded("chat_completion.json")  # byte for byte
    sent = json.loads(route.calls.last.request.content)
    assert sent["model"] == "upstream-model" and sent["seed"] == 7
    assert sent["tools"][0]["function"]["parameters"] == {"type": "object", "properties": {}}
    assert route.calls.last.request.headers["authorization"] == "Bearer sk-upstream"
    assert data["model"] == "m"  # the caller's request is not touched


async def test_a_stream_relays_byte_for_byte_and_asks_for_usage_when_told(router: respx.MockRouter) -> None:
    clock = ManualClock()
    router.post(f"{BASE}/chat/completions").mock(return_value=sse(recorded("chat_tool_stream.sse")))
    attempt = attempt_on("chat", router, clock)
    data = {"model": "m", "messages": [{"role": "user", "content": "Weather?"}], "stream": True}
    call = DIALECT.chat_call(attempt, data, clock=clock, ask_usage=True)
    assert json.loads(call.request.content)["stream_options"] == {"include_usage": True}
    stream = await opened(attempt, call.request, call.roles, clock)
    relay = call.relay(clock, include_usage=True, tap=None)
    out: list[bytes] = []

    async def send(chunk: bytes) -> None:
        out.append(chunk)

    await relay.run(stream, send)
    assert relay.failure is None
    assert b"".join(out) == recorded("chat_tool_stream.sse")


async def test_a_conversation_reads_the_stream_as_chunks_until_its_usage(router: respx.MockRouter) -> None:
    clock = ManualClock()
    route = router.post(f"{BASE}/chat/completions").mock(return_value=sse(recorded("chat_tool_stream.sse")))
    attempt = attempt_on("chat", router, clock)
    messages = [{"role": "user", "content": "Weather?"}]
    call = DIALECT.conversation_call(attempt, messages, [TOOL], previous_response_id=None, store=True)
    stream = await opened(attempt, call.request, call.roles, clock)
    reader = call.reader(clock)
    chunks = [c for event, _, payload in stream.events for c in reader.feed(event, payload)]
    async for raw in stream.chunks:
        for event in stream.decoder.feed(raw):
            chunks += reader.feed(event, None)
    await stream.aclose()
    assert reader.finished
    args = "".join(
        call["function"].get("arguments", "")
        for c in chunks
        for choice in c["choices"]
        for call in choice["delta"].get("tool_calls", ())
    )
    assert args == '{"city":"Paris"}'
    assert chunks[-1]["usage"]["total_tokens"] == 76
    sent = json.loads(route.calls.last.request.content)
    assert (sent["stream"], sent["stream_options"]) == (True, {"include_usage": True})


async def test_a_responses_request_is_translated_and_its_answer_back(router: respx.MockRouter) -> None:
    clock = ManualClock()
    route = router.post(f"{BASE}/chat/completions").mock(
        return_value=httpx.Response(200, content=recorded("chat_completion.json"))
    )
    attempt = attempt_on("chat", router, clock)
    turn = Turn({"model": "m", "input": "Capital of France?", "instructions": "Be brief."})
    call = await DIALECT.responses_call(attempt, turn, clock=clock, native=False)
    response = await call_json(attempt, call.request, clock)
    produced = call.answer(response.content)
    sent = json.loads(route.calls.last.request.content)
    assert sent["model"] == "upstream-model"
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France?"},
    ]
    assert produced.upstream_id is None
    answer = produced.response
    assert (answer["id"], answer["object"], answer["status"]) == ("resp_gateway", "response", "completed")
    assert answer["output"][0]["content"][0]["text"] == "Paris is the capital of France."
    assert answer["usage"]["input_tokens"] == 14 and answer["usage"]["output_tokens"] == 8

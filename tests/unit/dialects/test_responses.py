"""The Responses dialect against recorded OpenAI Responses answers."""

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

DIALECT = dialect_for(UpstreamApi.RESPONSES)


async def test_a_native_chain_sends_the_upstreams_parent_id_and_the_answer_is_the_gateways(
    router: respx.MockRouter,
) -> None:
    clock = ManualClock()
    route = router.post(f"{BASE}/responses").mock(
        return_value=httpx.Response(200, content=recorded("responses_response.json"))
    )
    attempt = attempt_on("responses", router, clock)
    turn = Turn(
        {"model": "m", "input": "And Spain?", "previous_response_id": "resp_gateway_parent"},
        parent_upstream_id="resp_parent_upstream",
    )
    call = await DIALECT.responses_call(attempt, turn, clock=clock, native=True)
    produced = call.answer((await call_json(attempt, call.request, clock)).content)
    sent = json.loads(route.calls.last.request.content)
    assert sent == {
        "model": "upstream-model",
        "input": "And Spain?",
        "previous_response_id": "resp_parent_upstream",
        "store": True,
    }
    assert produced.upstream_id == "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b"
    answer = produced.response
    assert (answer["id"], answer["previous_response_id"], answer["store"]) == (
        "resp_gateway",
        "resp_gateway_parent",
        True,
    )


async def test_a_replay_sends_the_history_instead_of_the_parent(router: respx.MockRouter) -> None:
    clock = ManualClock()
    route = router.post(f"{BASE}/responses").mock(
        return_value=httpx.Response(200, content=recorded("responses_response.json"))
    )
    attempt = attempt_on("responses", router, clock)
    turn = Turn({"model": "m", "input": "And Spain?", "previous_response_id": "resp_gateway_parent"})
    turn.history = [{"type": "message", "role": "user", "content": "Capital of France?"}]
    call = await DIALECT.responses_call(attempt, turn, clock=clock, native=False)
    await call_json(attempt, call.request, clock)
    sent = json.loads(route.calls.last.request.content)
    assert "previous_response_id" not in sent
    assert sent["input"] == [
        {"type": "message", "role": "user", "content": "Capital of France?"},
        {"type": "message", "role": "user", "content": "And Spain?"},
    ]


async def test_a_stream_is_reframed_and_its_terminal_event_held_back(router: respx.MockRouter) -> None:
    clock = ManualClock()
    router.post(f"{BASE}/responses").mock(return_value=sse(recorded("responses_tool_stream.sse")))
    attempt = attempt_on("responses", router, clock)
    turn = Turn({"model": "m", "input": "Weather in Paris?", "stream": True})
    call = await DIALECT.responses_call(attempt, turn, clock=clock, native=False)
    stream = await opened(attempt, call.request, call.roles, clock)
    converter = call.converter()
    frames = b""
    final = None
    seen = [(event, payload) for event, _, payload in stream.events]
    async for raw in stream.chunks:
        seen += [(event, None) for event in stream.decoder.feed(raw)]
    for event, payload in seen:
        emit = converter.event(event, payload)
        frames += emit.frames
        final = emit.final or final
    await stream.aclose()
    events = [json.loads(e.data) for e in SSEDecoder().feed(frames)]
    assert [e["type"] for e in events][:2] == ["response.created", "response.in_progress"]
    assert {e["response"]["id"] for e in events[:2]} == {"resp_gateway"}
    assert final is not None and final["type"] == "response.completed"
    assert final["response"]["id"] == "resp_gateway"
    assert converter.upstream_id == "resp_68af1"


async def test_a_conversation_reads_responses_events_as_chat_chunks(router: respx.MockRouter) -> None:
    clock = ManualClock()
    route = router.post(f"{BASE}/responses").mock(return_value=sse(recorded("responses_tool_stream.sse")))
    attempt = attempt_on("responses", router, clock)
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    call = DIALECT.conversation_call(attempt, messages, [tool], previous_response_id="resp_prev", store=False)
    stream = await opened(attempt, call.request, call.roles, clock)
    reader = call.reader(clock)
    chunks = [c for event, _, payload in stream.events for c in reader.feed(event, payload)]
    async for raw in stream.chunks:
        for event in stream.decoder.feed(raw):
            chunks += reader.feed(event, None)
    await stream.aclose()
    sent = json.loads(route.calls.last.request.content)
    assert (sent["previous_response_id"], sent["store"], sent["stream"]) == ("resp_prev", False, True)
    assert sent["input"] == [{"type": "message", "role": "user", "content": "Weather in Paris?"}]
    assert sent["tools"][0]["strict"] is False
    assert reader.finished and reader.response_id == "resp_68af1"
    deltas = [c["choices"][0]["delta"] for c in chunks]
    calls = [t for d in deltas for t in d.get("tool_calls", ())]
    assert (calls[0]["id"], calls[0]["function"]["name"]) == ("call_9XyZ", "get_weather")
    assert "".join(t["function"].get("arguments", "") for t in calls) == '{"city":"Paris"}'
    last = chunks[-1]
    assert last["choices"][0]["finish_reason"] == "tool_calls"
    assert last["usage"]["prompt_tokens_details"]["cached_tokens"] == 32
    assert last["usage"]["completion_tokens_details"]["reasoning_tokens"] == 4

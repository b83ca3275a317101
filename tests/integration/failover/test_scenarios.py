"""The fault scenarios of a gateway crash test, one test each, on real sockets: the fake
providers misbehave, a streaming client asks for the canonical 60-word answer through the
gateway, and each test asserts what the client received (the text compared exactly), the
attempts the fake saw (its journal) and the waits on the gateway's manual clock."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from fake_providers.testing import FakeProviders
from gateway.clock import ManualClock, ManualTimer
from tests.conftest import GATEWAY_KEY, AutoAdvance, GatewayFactory, poll_until
from tests.integration.failover.support import (
    FALLBACK,
    HELLO,
    OPENAI_CHAT,
    PRIMARY,
    TEXT,
    VLLM_CHAT,
    WORDS,
    config,
    metric,
    sent,
    stream,
    words,
)

ALL = words(1, 60)
BACKOFF = {"max_attempts": 3, "initial_delay": 1.0, "max_delay": 8.0, "budget_seconds": 60.0}


def assert_whole(answer: object) -> None:
    from tests.integration.failover.support import Answer

    assert isinstance(answer, Answer)
    assert answer.status == 200, answer.body
    assert answer.error is None, answer.error
    assert answer.text == TEXT
    assert answer.frames[-1] == "[DONE]"
    roles = [c for c in answer.chunks for ch in c["choices"] if ch["delta"].get("role")]
    assert len(roles) == 1  # one answer: a single role chunk
    assert len({c["id"] for c in answer.chunks}) == 1  # one id throughout


def test_429_with_retry_after_waits_at_least_that(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(config(fake, redis_url, retry=BACKOFF))
    fake.script(
        [{"fault": "429", "headers": {"retry-after": "2", "retry-after-ms": "2000"}}, {"reply": ALL}],
        model=PRIMARY,
    )
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(stream, gw)
        timer = gw.clock.fire("retry_backoff")
        answer = future.result(timeout=10)
    assert timer.deadline - timer.armed_at == 2.0  # Retry-After beats the 1 s backoff
    assert_whole(answer)
    assert len(sent(fake, OPENAI_CHAT)) == 2
    assert sent(fake, VLLM_CHAT) == []


def test_429_without_retry_after_is_not_hammered(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(config(fake, redis_url, retry=BACKOFF))
    fake.script(
        [{"fault": "429", "times": None, "headers": {"retry-after": "0", "retry-after-ms": "0"}}],
        model=PRIMARY,
    )
    fake.script([{"reply": ALL}], model=FALLBACK)
    waits = []
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(stream, gw)
        for _ in range(2):
            timer = gw.clock.fire("retry_backoff")
            waits.append(timer.deadline - timer.armed_at)
        answer = future.result(timeout=10)
    # Attempts at 0 s, 1 s and 3 s on the clock: two in the first 1.5 s, three in all.
    assert waits == [1.0, 2.0]
    assert len(sent(fake, OPENAI_CHAT)) == 3
    assert_whole(answer)
    assert [e.model for e in sent(fake, VLLM_CHAT)] == [FALLBACK]


def test_500_once_then_fine(gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str) -> None:
    gw = gateway_factory(config(fake, redis_url))
    fake.script([{"fault": "500"}, {"reply": ALL}], model=PRIMARY)
    answer = stream(gw)
    assert_whole(answer)
    assert len(sent(fake, OPENAI_CHAT)) == 2  # retried on the same deployment
    assert sent(fake, VLLM_CHAT) == []


def test_503_persistent_bounded_attempts_then_fallback(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(config(fake, redis_url))
    fake.script([{"fault": "503", "times": None}], model=PRIMARY)
    fake.script([{"reply": ALL}], model=FALLBACK)
    answer = stream(gw, stream_options={"include_usage": True})
    assert_whole(answer)
    assert len(sent(fake, OPENAI_CHAT)) == 3
    assert len(sent(fake, VLLM_CHAT)) == 1
    # The answer names the model that gave it, and carries its usage.
    assert {c["model"] for c in answer.chunks} == {FALLBACK}
    assert answer.chunks[-1]["usage"]["completion_tokens"] > 0
    assert answer.headers["x-gateway-provider"] == "fake-vllm"


def test_tcp_reset_before_any_byte(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(config(fake, redis_url))
    fake.script([{"fault": "reset"}, {"reply": ALL}], model=PRIMARY)
    assert_whole(stream(gw))
    assert len(sent(fake, OPENAI_CHAT)) == 2


def _silent_primary_fails_over(gw: object, fake: FakeProviders) -> None:
    from tests.conftest import RunningGateway

    assert isinstance(gw, RunningGateway)
    clock: ManualClock = gw.clock
    started = clock.monotonic()
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(stream, gw)
        poll_until(lambda: fake.status()["active_replies"] == 1)  # the primary is silent
        timer = clock.fire("startup_guard")
        answer = future.result(timeout=10)
    assert timer.deadline - timer.armed_at == 10.0
    assert clock.monotonic() - started == 10.0  # answered at startup + 0 s on the clock
    assert_whole(answer)
    assert len(sent(fake, OPENAI_CHAT)) == 1  # the silent deployment is not tried again
    assert [e.model for e in sent(fake, VLLM_CHAT)] == [FALLBACK]
    assert clock.history("startup_guard") == ["armed", "fired", "armed", "cancelled"]


def test_no_response_at_all_fails_over_after_the_first_startup_timeout(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(config(fake, redis_url))
    fake.script([{"fault": "silence", "times": None}], model=PRIMARY)
    fake.script([{"reply": ALL}], model=FALLBACK)
    _silent_primary_fails_over(gw, fake)


def test_slow_first_token_fails_over_after_the_first_startup_timeout(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str, fake_clock: ManualClock
) -> None:
    gw = gateway_factory(config(fake, redis_url))
    # Headers at once, the first chunk after 20 s (the fake's clock: it never gets there).
    fake.script([{"fault": "slow-20s-15ms", "times": None, "reply": ALL}], model=PRIMARY)
    fake.script([{"reply": ALL}], model=FALLBACK)
    _silent_primary_fails_over(gw, fake)
    assert fake_clock.pending("fake_first_part") == []  # the slow answer was abandoned


def test_silent_deployment_is_retried_when_configured(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    retry = {**BACKOFF, "initial_delay": 0.0, "max_delay": 0.0, "retry_startup_timeout": True}
    gw = gateway_factory(config(fake, redis_url, retry=retry))
    fake.script([{"fault": "silence"}, {"reply": ALL}], model=PRIMARY)
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(stream, gw)
        poll_until(lambda: fake.status()["active_replies"] == 1)
        gw.clock.fire("startup_guard")
        answer = future.result(timeout=10)
    assert_whole(answer)
    assert len(sent(fake, OPENAI_CHAT)) == 2
    assert sent(fake, VLLM_CHAT) == []


def _continued(answer: object, fake: FakeProviders, cut_after: int) -> None:
    """The client got the whole text; the fallback was asked to continue the first words."""
    assert_whole(answer)
    [primary] = sent(fake, OPENAI_CHAT)
    [continuation] = sent(fake, VLLM_CHAT)
    assert continuation.model == FALLBACK
    messages = continuation.body["messages"]
    assert messages[:-1] == primary.body["messages"]
    assert messages[-1] == {"role": "assistant", "content": " ".join(WORDS[:cut_after])}
    assert continuation.body["continue_final_message"] is True
    assert continuation.body["add_generation_prompt"] is False


def test_stream_cut_at_40_of_60_words_is_continued_by_the_fallback(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(config(fake, redis_url))
    fake.script([{"fault": "cut-41", "reply": ALL}], model=PRIMARY)  # the role chunk and 40 words
    fake.script([{"reply": words(41, 60)}], model=FALLBACK)
    answer = stream(gw)
    _continued(answer, fake, 40)
    assert metric(gw, "gw_stream_rescues_total", provider="fake-openai", result="continued") == 1.0


def test_stall_after_20_words_is_continued_by_the_fallback(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(config(fake, redis_url))
    fake.script([{"fault": "stall-21", "reply": ALL}], model=PRIMARY)
    fake.script([{"reply": words(21, 60)}], model=FALLBACK)
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(stream, gw)
        poll_until(lambda: fake.status()["active_replies"] == 1)
        started = gw.clock.monotonic()
        # Fire the primary's idle timer (10 s; the fallback's is 11 s) until it ends the stall:
        # a chunk read after the clock moved re-arms it for the rest of its window.

        def primary_idle() -> list[ManualTimer]:
            return [t for t in gw.clock.pending("stream_idle") if t.deadline - t.armed_at <= 10.0]

        while True:
            found = poll_until(lambda: "continued" if sent(fake, VLLM_CHAT) else primary_idle() or None)
            if found == "continued":
                break
            gw.clock.advance(max(0.0, found[0].deadline - gw.clock.monotonic()))
        answer = future.result(timeout=10)
    assert gw.clock.monotonic() - started <= 20.0  # at most two idle windows on the clock
    _continued(answer, fake, 20)


def test_one_malformed_event_is_skipped(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(config(fake, redis_url))
    fake.script([{"fault": "garbage-10", "reply": ALL}], model=PRIMARY)  # before word 9
    answer = stream(gw)
    assert_whole(answer)
    assert len(sent(fake, OPENAI_CHAT)) == 1
    assert sent(fake, VLLM_CHAT) == []
    assert metric(gw, "gw_stream_malformed_events_total", provider="fake-openai") == 1.0


def test_a_stream_of_garbage_still_fails(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    """A malformed event before the commit point fails the attempt (nothing reached the client),
    so a deployment that sends nothing valid is never taken for an answer."""
    gw = gateway_factory(config(fake, redis_url))
    fake.script([{"fault": "malformed-1", "times": None, "reply": ALL}], model=FALLBACK)
    answer = stream(gw, model="fallback")
    assert answer.status == 502
    assert answer.error is not None
    assert answer.error["detail"] == "An upstream stream event was not valid JSON."
    assert len(sent(fake, VLLM_CHAT)) == 3


def test_no_done_marker_is_a_success(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(config(fake, redis_url))
    fake.script([{"fault": "no-done", "reply": ALL}], model=PRIMARY)
    answer = stream(gw, stream_options={"include_usage": True})
    assert_whole(answer)  # [DONE] added for the client
    assert answer.chunks[-1]["usage"]["completion_tokens"] > 0
    assert len(sent(fake, OPENAI_CHAT)) == 1


def test_context_length_exceeded_goes_to_the_larger_fallback(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(config(fake, redis_url))
    fake.script([{"fault": "context-length", "times": None}], model=PRIMARY)
    fake.script([{"reply": ALL}], model=FALLBACK)
    assert_whole(stream(gw))
    assert len(sent(fake, OPENAI_CHAT)) == 1  # no retry of the same model
    assert len(sent(fake, VLLM_CHAT)) == 1


CONTENT_POLICY = {
    "error": {
        "message": "Your request was rejected as a result of our safety system.",
        "type": "invalid_request_error",
        "param": None,
        "code": "content_policy_violation",
    }
}


def test_content_policy_400_is_the_answer(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(config(fake, redis_url))
    fake.script([{"fault": "500", "times": None, "status": 400, "body": CONTENT_POLICY}], model=PRIMARY)
    answer = stream(gw)
    assert answer.status == 400
    assert answer.error is not None
    assert answer.error["code"] == "content_policy_violation"
    assert answer.error["message"] == CONTENT_POLICY["error"]["message"]
    assert len(sent(fake, OPENAI_CHAT)) == 1
    assert sent(fake, VLLM_CHAT) == []  # every peer would refuse it too


PREFILL_REFUSED = {
    "error": {
        "message": "This model does not support assistant message prefill.",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_prefill",
    }
}


def test_cut_stream_whose_fallback_refuses_prefill_keeps_the_original_error(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(config(fake, redis_url))
    fake.script([{"fault": "cut-41", "reply": ALL}], model=PRIMARY)
    fake.script([{"fault": "500", "status": 400, "body": PREFILL_REFUSED}], model=FALLBACK)
    answer = stream(gw)
    assert answer.status == 200
    assert answer.text == " ".join(WORDS[:40]) + " "
    assert answer.error is not None
    assert answer.error["code"] == "stream_truncated"  # not the prefill refusal
    assert "[DONE]" not in answer.frames
    [refused] = sent(fake, VLLM_CHAT)
    assert refused.body["messages"][-1]["role"] == "assistant"
    assert metric(gw, "gw_stream_rescues_total", provider="fake-openai", result="refused") == 1.0


def test_without_a_continuing_deployment_a_cut_stream_ends_in_band(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    cfg = config(fake, redis_url)
    cfg["providers"][1]["continuation"] = "none"
    gw = gateway_factory(cfg)
    fake.script([{"fault": "cut-41", "reply": ALL}], model=PRIMARY)
    answer = stream(gw)
    assert answer.text == " ".join(WORDS[:40]) + " "
    assert answer.error is not None and answer.error["code"] == "stream_truncated"
    assert sent(fake, VLLM_CHAT) == []


def test_primary_down_answers_from_the_fallback(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(config(fake, redis_url))
    fake.script([{"fault": "503", "times": None}], model=PRIMARY)
    fake.script([{"reply": ALL}], model=FALLBACK)
    with AutoAdvance(gw.clock):
        answer = stream(gw, stream_options={"include_usage": True})
    assert_whole(answer)
    assert {c["model"] for c in answer.chunks} == {FALLBACK}
    assert answer.chunks[-1]["usage"]["prompt_tokens"] > 0
    assert len(sent(fake, OPENAI_CHAT)) == 3


def test_json_call_without_headers_fails_over_after_the_first_request_timeout(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str, fake_clock: ManualClock
) -> None:
    """A non-streaming call that got no response headers within the request timeout is a silent
    deployment too: the fallback is asked at once, the primary not again."""
    cfg = config(fake, redis_url)
    cfg["providers"][0]["timeouts"]["request"] = 30.0
    gw = gateway_factory(cfg)
    # A JSON answer whose headers wait 20 s on the fake's clock (it never gets there).
    fake.script([{"fault": "slow-20s", "times": None, "reply": ALL}], model=PRIMARY)
    fake.script([{"reply": ALL}], model=FALLBACK)
    body = {"model": "primary", "messages": HELLO}
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(
            lambda: httpx.post(
                gw.base_url + "/chat/completions",
                headers={"authorization": f"Bearer {GATEWAY_KEY}"},
                json=body,
                timeout=30,
            )
        )
        poll_until(lambda: fake.status()["active_replies"] == 1)
        timer = gw.clock.fire("request_timeout")
        response = future.result(timeout=10)
    assert timer.deadline - timer.armed_at == 30.0
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == TEXT
    assert len(sent(fake, OPENAI_CHAT)) == 1
    assert [e.model for e in sent(fake, VLLM_CHAT)] == [FALLBACK]

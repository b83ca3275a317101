"""Every fault of the fakes' catalogue through the gateway: classification, retries, failover,
the startup guard, the stream commit point, and streams that never end like a success."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import openai
import pytest

from fake_providers.testing import FakeProviders
from tests.conftest import GATEWAY_KEY, AutoAdvance, GatewayFactory, RunningGateway, base_config, poll_until

HELLO = [{"role": "user", "content": "Hello there"}]
CHAT = "/openai/v1/chat/completions"

# fault -> (client status, error code, kind, upstream attempts, x-should-retry)
HTTP_FAULTS: dict[str, tuple[int, str, str, int, str]] = {
    "429": (429, "rate_limit_exceeded", "rate_limit", 3, "true"),
    "429-quota": (429, "insufficient_quota", "auth", 1, "false"),
    "401": (502, "upstream_authentication_failed", "auth", 1, "false"),
    "403": (502, "upstream_authentication_failed", "auth", 1, "false"),
    "404": (502, "upstream_model_not_found", "config", 1, "false"),
    "context-length": (400, "context_length_exceeded", "config", 1, "false"),
    "500": (502, "upstream_error", "generic", 3, "true"),
    "502": (503, "upstream_unavailable", "timeout", 3, "true"),
    "503": (503, "server_is_overloaded", "overloaded", 3, "true"),
    "529": (503, "server_is_overloaded", "overloaded", 3, "true"),
    "hidden-429": (429, "rate_limit_exceeded", "rate_limit", 3, "true"),
    "200-error": (502, "upstream_error", "generic", 3, "true"),
    "200-error-429": (429, "rate_limit_exceeded", "rate_limit", 3, "true"),
    "200-error-context-length": (400, "context_length_exceeded", "config", 1, "false"),
    "reset": (504, "upstream_timeout", "timeout", 3, "true"),
    # In-band errors after the harmless role chunk (a 200 with the error body without stream).
    "inband": (502, "upstream_error", "generic", 3, "true"),
    "inband-429": (429, "rate_limit_exceeded", "rate_limit", 3, "true"),
    "inband-503": (503, "server_is_overloaded", "overloaded", 3, "true"),
    "inband-401": (502, "upstream_authentication_failed", "auth", 1, "false"),
    "inband-context-length": (400, "context_length_exceeded", "config", 1, "false"),
    # The first chunk (or the JSON body) cut in half: not JSON.
    "malformed-1": (502, "upstream_error", "generic", 3, "true"),
    # The connection closes after the role chunk (or half the JSON body).
    "cut-1": (504, "upstream_timeout", "timeout", 3, "true"),
}


def post(gw: RunningGateway, body: dict[str, Any]) -> httpx.Response:
    with httpx.Client(timeout=30) as http:
        return http.post(
            gw.base_url + "/chat/completions", headers={"authorization": f"Bearer {GATEWAY_KEY}"}, json=body
        )


def generation_requests(fake: FakeProviders) -> list[Any]:
    """What the gateway sent upstream, without its model-listing reads."""
    return [e for e in fake.requests() if e.method == "POST"]


def sse_data(text: str) -> list[str]:
    return [frame.removeprefix("data: ") for frame in text.split("\n\n") if frame.startswith("data: ")]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("fault", list(HTTP_FAULTS))
def test_fault_is_classified_retried_and_answered(
    gateway: RunningGateway, fake: FakeProviders, fault: str, stream: bool
) -> None:
    status, code, kind, attempts, should_retry = HTTP_FAULTS[fault]
    fake.script([{"fault": fault, "times": None}], model="gpt-4o-mini")
    with AutoAdvance(gateway.clock):
        response = post(gateway, {"model": "gpt-4o-mini", "messages": HELLO, "stream": stream})

    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert (error["code"], error["kind"], error["provider"]) == (code, kind, "openai")
    assert error["retryable"] is (should_retry == "true")
    assert response.headers["x-should-retry"] == should_retry
    assert response.headers["x-gateway-attempts"] == str(attempts)
    assert len(fake.requests(path=CHAT)) == attempts
    if fault == "429":  # the fake's Retry-After reaches the client
        assert response.headers["retry-after"] == "1"
    if status == 502 and kind == "auth":
        # The provider's credentials failed, not the client's key: never a 401.
        assert "Authentication with OpenAI failed" in error["message"]
    if fault == "malformed-1":
        assert error["detail"] == (
            "An upstream stream event was not valid JSON."
            if stream
            else "The upstream answer was not a valid JSON object."
        )


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("fault", list(HTTP_FAULTS))
def test_fault_fails_over_to_the_second_deployment(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str, fault: str, stream: bool
) -> None:
    """Every fault on the first deployment ends on the second one (after its retries), except
    a prompt over the context window: another deployment of the same model has the same window."""
    status, code, _kind, attempts, _ = HTTP_FAULTS[fault]
    config = base_config(fake, redis_url)
    config["models"] = [
        {"name": "m", "provider": "fake-openai", "upstream_model": "gpt-4o-mini"},
        {"name": "m", "provider": "fake-vllm", "upstream_model": "second"},
    ]
    gw = gateway_factory(config)
    fake.script([{"fault": fault, "times": None}], model="gpt-4o-mini")
    with AutoAdvance(gw.clock):
        response = post(gw, {"model": "m", "messages": HELLO, "stream": stream})
    sent = [e.model for e in generation_requests(fake)]
    if code == "context_length_exceeded":
        assert response.status_code == status
        assert sent == ["gpt-4o-mini"]
        return
    assert response.status_code == 200, response.text
    assert sent == ["gpt-4o-mini"] * attempts + ["second"]
    assert response.headers["x-gateway-attempts"] == str(attempts + 1)
    assert response.headers["x-gateway-provider"] == "fake-vllm"
    text = (
        "".join(
            json.loads(d)["choices"][0]["delta"].get("content") or ""
            for d in sse_data(response.text)
            if d != "[DONE]" and json.loads(d)["choices"]
        )
        if stream
        else response.json()["choices"][0]["message"]["content"]
    )
    assert text == "You said: Hello there"
    if stream:
        assert sse_data(response.text)[-1] == "[DONE]"


# Faults that strike after content chunks. Whether the gateway has committed by then depends on
# how the fake's chunks fall into reads: if the bad event shares a read with the first content,
# nothing was sent yet and the attempt is retried. Either way the classification is the same and
# the answer never ends like a success.
POST_CONTENT_FAULTS: dict[str, tuple[int, str, str]] = {
    "malformed": (502, "upstream_error", "generic"),
    "inband-after-3": (502, "upstream_error", "generic"),
    "inband-429-after-3": (429, "rate_limit_exceeded", "rate_limit"),
    "inband-context-length-after-3": (400, "context_length_exceeded", "config"),
}


@pytest.mark.parametrize("fault", list(POST_CONTENT_FAULTS))
def test_fault_after_content_never_ends_like_a_success(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str, fault: str
) -> None:
    # The fakes' "malformed" fault replaces a chunk (its content is lost): with one malformed
    # event allowed in a row (the default drops up to two after the commit point) it ends the
    # stream. tests/integration/failover covers the default, with an event that loses nothing.
    config = base_config(fake, redis_url)
    config["providers"][0]["max_malformed_events"] = 1
    gateway = gateway_factory(config)
    status, code, kind = POST_CONTENT_FAULTS[fault]
    fake.script([{"fault": fault, "times": None}], model="gpt-4o-mini")
    with AutoAdvance(gateway.clock):
        response = post(gateway, {"model": "gpt-4o-mini", "messages": HELLO, "stream": True})
    attempts = int(response.headers["x-gateway-attempts"])
    assert len(fake.requests(path=CHAT)) == attempts
    if response.status_code == 200:  # committed: the last attempt's error is in-band
        data = sse_data(response.text)
        assert "[DONE]" not in data
        error = json.loads(data[-1])["error"]
        assert all("error" not in json.loads(d) for d in data[:-1])
    else:  # every attempt failed before its commit point
        assert response.status_code == status
        assert attempts == (1 if kind == "config" else 3)
        error = response.json()["error"]
    assert (error["code"], error["kind"], error["provider"]) == (code, kind, "openai")

    with pytest.raises(openai.APIError) as info, AutoAdvance(gateway.clock):
        list(gateway.openai().chat.completions.create(model="gpt-4o-mini", messages=HELLO, stream=True))
    assert info.value.code == code


@pytest.mark.parametrize("fault", ["silence", "stall"])
def test_json_request_that_never_completes_hits_the_request_timeout(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str, fault: str
) -> None:
    config = base_config(fake, redis_url)
    config["providers"][0]["retry"] = {"max_attempts": 2, "initial_delay": 0.0, "max_delay": 0.0}
    config["providers"][0]["timeouts"] = {"request": 120.0}
    gw = gateway_factory(config)
    fake.script([{"fault": fault, "times": None}], model="gpt-4o-mini")
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(post, gw, {"model": "gpt-4o-mini", "messages": HELLO})
        for attempt in (1, 2):
            poll_until(lambda n=attempt: len(fake.requests(path=CHAT)) == n)
            poll_until(lambda: fake.status()["active_replies"] == 1)
            timer = gw.clock.fire("request_timeout")
            assert timer.deadline - timer.armed_at == 120.0
        response = future.result(timeout=10)
    assert response.status_code == 504
    error = response.json()["error"]
    assert (error["kind"], error["code"], error["retryable"]) == ("timeout", "upstream_timeout", True)
    assert response.headers["x-gateway-attempts"] == "2"
    assert len(fake.requests(path=CHAT)) == 2
    poll_until(lambda: fake.status()["active_replies"] == 0)  # the hanging answers were abandoned


def test_retry_then_success_is_invisible_to_the_client(gateway: RunningGateway, fake: FakeProviders) -> None:
    fake.script([{"fault": "503", "times": 2}], model="gpt-4o-mini")
    with AutoAdvance(gateway.clock):
        raw = gateway.openai().chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=HELLO)
    assert raw.parse().choices[0].message.content == "You said: Hello there"
    assert raw.headers["x-gateway-attempts"] == "3"
    assert len(raw.headers["x-gateway-upstream-ms"].split(",")) == 3
    assert len(fake.requests(path=CHAT)) == 3


def test_backoff_waits_for_retry_after_on_the_clock(gateway: RunningGateway, fake: FakeProviders) -> None:
    """Retry-After (1 s from the fake) is the minimum wait; the backoff is a named timer."""
    fake.script([{"fault": "429", "times": 1}], model="gpt-4o-mini")
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(post, gateway, {"model": "gpt-4o-mini", "messages": HELLO})
        timer = gateway.clock.wait_for_timer_blocking("retry_backoff")
        assert timer.deadline - timer.armed_at == pytest.approx(1.0)
        assert len(fake.requests(path=CHAT)) == 1  # nothing retried before the clock moves
        gateway.clock.advance(1.0)
        response = future.result(timeout=10)
    assert response.status_code == 200
    assert len(fake.requests(path=CHAT)) == 2


def test_exponential_backoff_schedule(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    config = base_config(fake, redis_url)
    config["providers"][0]["retry"] = {"max_attempts": 4, "initial_delay": 1.0, "max_delay": 60.0}
    gw = gateway_factory(config)
    fake.script([{"fault": "500", "times": 3}], model="gpt-4o-mini")
    delays = []
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(post, gw, {"model": "gpt-4o-mini", "messages": HELLO})
        for _ in range(3):
            timer = gw.clock.fire("retry_backoff")
            delays.append(timer.deadline - timer.armed_at)
        assert future.result(timeout=10).status_code == 200
    assert delays == [1.0, 2.0, 4.0]


def test_fallback_model_after_the_deployment_is_spent(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    config = base_config(fake, redis_url)
    config["models"] = [
        {
            "name": "primary",
            "provider": "fake-openai",
            "upstream_model": "fault-503",
            "fallbacks": ["backup"],
        },
        {"name": "backup", "provider": "fake-vllm", "upstream_model": "backup-upstream"},
    ]
    gw = gateway_factory(config)
    with AutoAdvance(gw.clock):
        raw = gw.openai().chat.completions.with_raw_response.create(model="primary", messages=HELLO)
    assert raw.parse().choices[0].message.content == "You said: Hello there"
    sent = generation_requests(fake)
    assert [e.model for e in sent] == ["fault-503"] * 3 + ["backup-upstream"]
    assert sent[-1].path == "/vllm/v1/chat/completions"
    assert raw.headers["x-gateway-provider"] == "fake-vllm"


def test_second_deployment_after_a_credential_failure(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    config = base_config(fake, redis_url)
    config["models"] = [
        {"name": "m", "provider": "fake-openai", "upstream_model": "fault-401"},
        {"name": "m", "provider": "fake-vllm", "upstream_model": "second"},
    ]
    gw = gateway_factory(config)
    chunks = list(gw.openai().chat.completions.create(model="m", messages=HELLO, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "You said: Hello there"
    assert [e.model for e in generation_requests(fake)] == ["fault-401", "second"]


def test_client_caused_upstream_error_is_not_retried_or_failed_over(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    config = base_config(fake, redis_url)
    config["models"] = [
        {"name": "m", "provider": "fake-openai", "upstream_model": "gpt-4o-mini", "fallbacks": ["b"]}
    ]
    config["models"].append({"name": "b", "provider": "fake-vllm"})
    gw = gateway_factory(config)
    bad = [{"role": "tool", "content": "42", "tool_call_id": "call_x"}]
    with pytest.raises(openai.BadRequestError) as info:
        gw.openai().chat.completions.create(model="m", messages=bad)
    assert "must be a response to a preceeding message with 'tool_calls'" in info.value.message
    assert info.value.response.headers["x-should-retry"] == "false"
    assert len(generation_requests(fake)) == 1


def test_inband_error_after_a_harmless_first_chunk_is_retried(
    gateway: RunningGateway, fake: FakeProviders
) -> None:
    fake.script([{"fault": "inband-503", "times": 2}], model="gpt-4o-mini")
    with AutoAdvance(gateway.clock):
        chunks = list(
            gateway.openai().chat.completions.create(model="gpt-4o-mini", messages=HELLO, stream=True)
        )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "You said: Hello there"
    assert len(fake.requests(path=CHAT)) == 3


def test_cut_after_commit_ends_with_an_inband_error_not_done(
    gateway: RunningGateway, fake: FakeProviders
) -> None:
    fake.script([{"fault": "cut-3", "times": None}], model="gpt-4o-mini")
    response = post(gateway, {"model": "gpt-4o-mini", "messages": HELLO, "stream": True})
    assert response.status_code == 200
    data = sse_data(response.text)
    assert "[DONE]" not in data
    last = json.loads(data[-1])
    assert last["error"]["code"] == "stream_truncated"
    assert last["error"]["kind"] == "timeout"
    assert len(fake.requests(path=CHAT)) == 1  # committed: never retried

    with pytest.raises(openai.APIError):
        list(gateway.openai().chat.completions.create(model="gpt-4o-mini", messages=HELLO, stream=True))


def test_startup_guard_fires_when_nothing_arrives(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    config = base_config(fake, redis_url)
    config["providers"][0]["retry"] = {"max_attempts": 1, "initial_delay": 0.0, "max_delay": 0.0}
    gw = gateway_factory(config)
    fake.script([{"fault": "silence", "times": None}], model="gpt-4o-mini")
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(post, gw, {"model": "gpt-4o-mini", "messages": HELLO, "stream": True})
        timer = gw.clock.wait_for_timer_blocking("startup_guard")
        assert timer.deadline - timer.armed_at == 60.0
        gw.clock.advance(59.0)
        assert not future.done()
        gw.clock.advance(1.0)
        response = future.result(timeout=10)
    assert response.status_code == 504
    error = response.json()["error"]
    assert error["kind"] == "startup_timeout"
    assert error["code"] == "upstream_startup_timeout"
    assert error["message"] == "OpenAI did not start responding in time."
    assert gw.clock.history("startup_guard") == ["armed", "fired"]


def test_first_chunk_disarms_the_startup_guard(gateway: RunningGateway, fake: FakeProviders) -> None:
    chunks = list(gateway.openai().chat.completions.create(model="gpt-4o-mini", messages=HELLO, stream=True))
    assert chunks
    assert gateway.clock.history("startup_guard") == ["armed", "cancelled"]
    assert gateway.clock.pending("startup_guard") == []


def test_retry_after_a_startup_timeout_succeeds(gateway: RunningGateway, fake: FakeProviders) -> None:
    fake.script([{"fault": "silence", "times": 1}], model="gpt-4o-mini")
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(post, gateway, {"model": "gpt-4o-mini", "messages": HELLO, "stream": True})
        # Fire only once the silent answer is under way (the scripted step is then taken).
        poll_until(lambda: fake.status()["active_replies"] == 1)
        gateway.clock.fire("startup_guard")
        response = future.result(timeout=10)
    assert response.status_code == 200
    assert sse_data(response.text)[-1] == "[DONE]"
    assert len(fake.requests(path=CHAT)) == 2
    assert gateway.clock.history("startup_guard") == ["armed", "fired", "armed", "cancelled"]


def test_harmless_first_chunk_does_not_disarm_the_guard(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    """The role-only first chunk is like a keep-alive: the guard keeps running."""
    config = base_config(fake, redis_url)
    config["providers"][0]["retry"] = {"max_attempts": 1, "initial_delay": 0.0, "max_delay": 0.0}
    gw = gateway_factory(config)
    fake.script([{"fault": "stall-1", "times": None}], model="gpt-4o-mini")
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(post, gw, {"model": "gpt-4o-mini", "messages": HELLO, "stream": True})
        gw.clock.fire("startup_guard")
        response = future.result(timeout=10)
    assert response.status_code == 504
    assert response.json()["error"]["kind"] == "startup_timeout"


def test_stall_after_commit_hits_the_idle_timeout(gateway: RunningGateway, fake: FakeProviders) -> None:
    fake.script([{"fault": "stall-3", "times": None}], model="gpt-4o-mini")
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(post, gateway, {"model": "gpt-4o-mini", "messages": HELLO, "stream": True})
        timer = gateway.clock.fire("stream_idle")
        assert timer.deadline - timer.armed_at == 300.0
        # A chunk of the three that arrives after the clock moved counts as activity: the
        # watchdog re-arms itself for its window, and the test fires it again.
        gateway.clock.fire_until("stream_idle", future.done, timeout=10)
        response = future.result(timeout=10)
    data = sse_data(response.text)
    assert "[DONE]" not in data
    error = json.loads(data[-1])["error"]
    assert error["code"] == "stream_idle_timeout"
    assert len(fake.requests(path=CHAT)) == 1


def test_client_disconnect_cancels_the_upstream_request(gateway: RunningGateway, fake: FakeProviders) -> None:
    fake.script([{"fault": "silence", "times": None}], model="gpt-4o-mini")

    async def leave_while_upstream_is_silent() -> None:
        async with gateway.async_openai() as client:
            request = asyncio.ensure_future(
                client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, stream=True)
            )
            await asyncio.to_thread(poll_until, lambda: fake.status()["active_replies"] == 1)
            assert not request.done()  # nothing reached the client while the upstream is silent
            request.cancel()  # the client goes away: its connection closes
            with pytest.raises(asyncio.CancelledError):
                await request

    asyncio.run(leave_while_upstream_is_silent())
    poll_until(lambda: fake.status()["active_replies"] == 0)
    poll_until(lambda: gateway.clock.pending("startup_guard") == [])
    assert len(fake.requests(path=CHAT)) == 1


def test_error_answers_carry_each_header_once(gateway: RunningGateway, fake: FakeProviders) -> None:
    fake.script([{"fault": "401", "times": 1}], model="gpt-4o-mini")
    response = post(gateway, {"model": "gpt-4o-mini", "messages": HELLO})
    assert response.status_code == 502
    names = [name.lower() for name, _ in response.headers.raw]
    assert names.count(b"content-type") == 1
    assert names.count(b"x-request-id") == 1


def test_context_length_skips_the_models_other_deployments_but_not_its_fallback(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    config = base_config(fake, redis_url)
    config["models"] = [
        {
            "name": "m",
            "provider": "fake-openai",
            "upstream_model": "fault-context-length",
            "fallbacks": ["big"],
        },
        {"name": "m", "provider": "fake-vllm", "upstream_model": "same-window"},
        {"name": "big", "provider": "fake-vllm", "upstream_model": "larger-window"},
    ]
    gw = gateway_factory(config)
    raw = gw.openai().chat.completions.with_raw_response.create(model="m", messages=HELLO)
    assert raw.parse().choices[0].message.content == "You said: Hello there"
    assert [e.model for e in generation_requests(fake)] == ["fault-context-length", "larger-window"]

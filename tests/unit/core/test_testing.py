"""The testing kit (``gateway.testing``) as a user's test runs it: the README's example verbatim,
then each piece on its own."""

from __future__ import annotations

import inspect
import textwrap
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from fake_providers.testing import FakeProviders
from gateway import testing
from gateway.clock import ManualClock, RealClock
from gateway.testing import (
    GATEWAY_KEY,
    AutoAdvance,
    PollTimeout,
    add_anthropic,
    base_config,
    poll_until,
    redis_server,
    serve_gateway,
    settings_of,
)


# -- the README's example, as written there ---------------------------------------------------
async def test_my_code_through_the_gateway() -> None:
    with redis_server() as redis, FakeProviders() as fake:
        config = add_anthropic(base_config(fake, redis.url), fake)
        async with serve_gateway(config) as gw:
            client = gw.async_openai()
            answer = await client.chat.completions.create(
                model="claude", messages=[{"role": "user", "content": "Hello"}]
            )
            assert answer.choices[0].message.content == "You said: Hello"
            [sent] = fake.requests(path="/anthropic/v1/messages")
            assert sent.body["model"] == "claude-haiku-4-5"


def test_the_kit_s_docstring_shows_the_same_example() -> None:
    example = textwrap.indent(inspect.getsource(test_my_code_through_the_gateway), "    ")
    assert example in (testing.__doc__ or "")


# -- the pieces -------------------------------------------------------------------------------
def test_poll_until_returns_the_first_value_that_is_not_none_or_false() -> None:
    answers = iter([None, False, 0, 7])
    assert poll_until(lambda: next(answers)) == 0  # 0 is an answer; only None and False wait


def test_poll_until_names_what_it_waited_for() -> None:
    with pytest.raises(PollTimeout, match=r"timed out after 0.05s waiting for the moon"):
        poll_until(lambda: None, deadline=0.05, what="the moon")
    assert issubclass(PollTimeout, AssertionError)  # a failed test, not an error


def test_poll_until_sees_what_another_thread_does() -> None:
    done = threading.Event()
    threading.Timer(0.02, done.set).start()
    assert poll_until(done.is_set, what="the other thread") is True


def test_base_config_is_valid_and_each_call_has_its_own_redis_prefix(fake: FakeProviders) -> None:
    first = settings_of(base_config(fake, "redis://127.0.0.1:1/0"))
    second = settings_of(base_config(fake, "redis://127.0.0.1:1/0"))
    assert first.redis.key_prefix != second.redis.key_prefix
    assert [p.name for p in first.providers] == ["fake-openai", "fake-vllm"]
    assert [m.name for m in first.models] == ["gpt-4o-mini", "llama"]
    assert [k.key for k in first.auth.keys] == [GATEWAY_KEY, "sk-test-gateway-key-2"]
    assert settings_of(first) is first


def test_add_anthropic_adds_one_provider_and_one_model(fake: FakeProviders) -> None:
    config = add_anthropic(
        base_config(fake, "redis://127.0.0.1:1/0"),
        fake,
        model="sonnet",
        upstream_model="claude-sonnet-4-5",
        anthropic_version="2023-06-01",
        model_fields={"fallbacks": ["gpt-4o-mini"]},
    )
    provider = config["providers"][-1]
    assert provider == {
        "name": "fake-anthropic",
        "kind": "anthropic",
        "base_url": fake.anthropic_base_url + "/v1",
        "api_key": "sk-ant-upstream",
        "anthropic_version": "2023-06-01",
    }
    assert config["models"][-1] == {
        "name": "sonnet",
        "provider": "fake-anthropic",
        "upstream_model": "claude-sonnet-4-5",
        "fallbacks": ["gpt-4o-mini"],
    }
    settings_of(config)  # a config the gateway accepts


def test_serve_gateway_with_a_manual_clock_and_its_services(fake: FakeProviders, redis_url: str) -> None:
    clock = ManualClock()
    config = base_config(fake, redis_url)
    config["providers"][0]["retry"] = {"max_attempts": 2, "initial_delay": 1.0, "max_delay": 1.0}
    fake.script([{"fault": "503", "times": 1}], model="gpt-4o-mini")
    with serve_gateway(config, clock=clock) as gw, AutoAdvance(gw.clock) as auto:
        assert gw.clock is clock and gw.services.clock is clock
        assert gw.base_url == gw.root_url + "/v1"
        answer = gw.openai().chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "again"}]
        )
        assert answer.choices[0].message.content == "You said: again"
        with gw.http() as http:
            assert http.get("/v1/models").status_code == 200
        with gw.http(key="sk-wrong") as http:
            assert http.get("/v1/models").status_code == 401
    assert auto.fired == ["retry_backoff"]  # the backoff passed on the manual clock, at once
    with pytest.raises(httpx.ConnectError):
        httpx.get(gw.root_url + "/healthz")  # the port is closed on the way out


def test_serve_gateway_defaults_to_the_real_clock(fake: FakeProviders, redis_url: str) -> None:
    with serve_gateway(base_config(fake, redis_url)) as gw:
        assert isinstance(gw.clock, RealClock)
        assert httpx.get(gw.root_url + "/healthz").status_code == 200


def test_the_fakes_take_a_manual_clock_for_their_pauses(fake: FakeProviders, fake_clock: ManualClock) -> None:
    from concurrent.futures import ThreadPoolExecutor

    body: dict[str, Any] = {"model": "fault-slow-5s", "messages": [{"role": "user", "content": "hi"}]}
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(httpx.post, fake.openai_base_url + "/chat/completions", json=body, timeout=10)
        timer = fake_clock.wait_for_timer_blocking("fake_first_part")
        assert not answer.done()  # five seconds on the fakes' clock: only the test can end them
        fake_clock.advance(timer.deadline - timer.armed_at)
        assert answer.result(timeout=10).json()["choices"][0]["message"]["content"] == "You said: hi"


def test_the_readme_shows_the_same_example() -> None:
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text(encoding="utf-8")
    assert inspect.getsource(test_my_code_through_the_gateway) in readme

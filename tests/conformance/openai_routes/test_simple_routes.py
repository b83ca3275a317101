"""Moderations, images and audio through the official OpenAI SDK: the governed passthrough."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import openai
import pytest

from fake_providers.openai.media import heard, png, speech
from fake_providers.testing import FakeProviders
from gateway.testing import add_anthropic
from tests.conformance.openai_routes.support import metric_lines, surface_config, usage_events
from tests.conftest import AutoAdvance, GatewayFactory

AUDIO = b"RIFF" + bytes(range(256)) * 8  # 2052 bytes


def test_moderations_with_and_without_a_model(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(surface_config(fake, redis_url))
    client = gw.openai()
    flagged = client.moderations.create(input=["I will kill it", "a nice day"])
    assert [r.flagged for r in flagged.results] == [True, False]
    assert flagged.results[0].categories.violence is True
    # Without `model`, OpenAI's default model is the one routed (when it is configured).
    assert fake.requests(path="/openai/v1/moderations")[-1].body == {
        "input": ["I will kill it", "a nice day"],
        "model": "omni-moderation-latest",
    }
    named = client.moderations.create(
        model="omni-moderation-latest", input=[{"type": "text", "text": "idiot"}]
    )
    assert named.results[0].categories.harassment is True


def test_image_generation_edit_and_variation(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(surface_config(fake, redis_url))
    client = gw.openai()
    made = client.images.generate(prompt="a red fox", response_format="b64_json", size="256x256", n=2)
    assert [base64.b64decode(d.b64_json or "") for d in made.data] == [png("a red fox#0"), png("a red fox#1")]
    image = client.images.generate(model="gpt-image-1", prompt="a red fox")
    assert image.usage is not None and image.usage.input_tokens == 3
    [event] = [
        e for e in usage_events(gw, redis_url, "/v1/images/generations", 2) if e["model"] == "gpt-image-1"
    ]
    assert event["input_tokens"] == 3 and event["output_tokens"] == 272 and event["cost_nusd"] > 0

    edited = client.images.edit(
        image=("fox.png", png("x"), "image/png"), prompt="make it blue", response_format="url"
    )
    assert edited.data[0].url and edited.data[0].url.endswith(".png")
    sent = fake.requests(path="/openai/v1/images/edits")[-1]
    assert sent.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert 'name="model"' in sent.body and "dall-e-2" in sent.body  # OpenAI's default, added

    with pytest.deprecated_call():  # the SDK marks the route deprecated; it is still served
        varied = client.images.create_variation(image=("fox.png", png("x"), "image/png"), model="dall-e-2")
    assert varied.data[0].url
    with pytest.raises(openai.BadRequestError) as info:
        client.images.generate(prompt="a fox", size="13x13")
    assert info.value.body["param"] == "size"  # type: ignore[index]


def test_transcription_formats_and_repeated_fields_pass_through(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    config = surface_config(fake, redis_url)
    config["models"].append({"name": "whisper", "provider": "fake-openai", "upstream_model": "whisper-1"})
    gw = gateway_factory(config)
    client = gw.openai()
    text = client.audio.transcriptions.create(model="whisper", file=("a.wav", AUDIO))
    assert text.text == heard(len(AUDIO)) == "This file has two thousand fifty-two bytes."
    sent = fake.requests(path="/openai/v1/audio/transcriptions")[-1]
    assert 'name="model"\r\n\r\nwhisper-1\r\n' in sent.body  # the model swapped in place

    plain = client.audio.transcriptions.create(
        model="whisper-1", file=("a.wav", AUDIO), response_format="text"
    )
    assert plain.strip() == heard(len(AUDIO))
    verbose = client.audio.transcriptions.create(
        model="whisper-1",
        file=("a.wav", AUDIO),
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )
    assert verbose.words and verbose.segments
    body = fake.requests(path="/openai/v1/audio/transcriptions")[-1].body
    assert body.count('name="timestamp_granularities[]"') == 2

    with pytest.deprecated_call():
        translated = client.audio.translations.create(model="whisper-1", file=("a.wav", AUDIO))
    assert translated.text == heard(len(AUDIO))


def test_a_streamed_transcription(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(surface_config(fake, redis_url))
    events = list(
        gw.openai().audio.transcriptions.create(
            model="gpt-4o-mini-transcribe", file=("a.wav", AUDIO), stream=True
        )
    )
    assert events[-1].type == "transcript.text.done" and events[-1].text == heard(len(AUDIO))
    assert "".join(e.delta for e in events[:-1]).strip() == heard(len(AUDIO))  # type: ignore[union-attr]
    [event] = usage_events(gw, redis_url, "/v1/audio/transcriptions", 1)
    assert event["stream"] is True and event["status"] == 200


@pytest.mark.parametrize(
    ("response_format", "magic", "content_type"),
    [("mp3", b"ID3", "audio/mpeg"), ("wav", b"RIFF", "audio/wav")],
)
def test_speech_is_streamed_back_in_the_asked_format(
    gateway_factory: GatewayFactory,
    fake: FakeProviders,
    redis_url: str,
    response_format: Any,
    magic: bytes,
    content_type: str,
) -> None:
    gw = gateway_factory(surface_config(fake, redis_url))
    with gw.openai().audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input="Hello there", response_format=response_format
    ) as answer:
        assert answer.headers["content-type"] == content_type
        assert "text/event-stream" not in answer.headers.get_list("content-type")
        body = b"".join(answer.iter_bytes())
    assert body.startswith(magic) and body == speech("Hello there", response_format)


def test_a_speech_body_that_breaks_is_never_a_clean_end(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(surface_config(fake, redis_url))
    fake.script([{"fault": "cut-2"}], model="tts-1")
    with pytest.raises(httpx.HTTPError), gw.http() as http:
        http.post("/v1/audio/speech", json={"model": "tts-1", "voice": "alloy", "input": "Hello there"})
    lines = metric_lines(gw, "gw_requests_total", "/v1/audio/speech")
    assert any('error_type="upstream"' in line for line in lines), lines


def test_the_body_limit_applies_to_uploads(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    gw = gateway_factory(surface_config(fake, redis_url, server={"max_body_bytes": 1024}))
    with pytest.raises(openai.APIStatusError) as info:
        gw.openai().audio.transcriptions.create(model="whisper-1", file=("a.wav", AUDIO))
    assert info.value.status_code == 413
    assert fake.requests(path="/openai/v1/audio/transcriptions") == []


ROUTES: list[tuple[str, str, dict[str, Any]]] = [
    ("/v1/moderations", "omni-moderation-latest", {"input": "x"}),
    ("/v1/images/generations", "dall-e-2", {"prompt": "x"}),
    ("/v1/audio/speech", "tts-1", {"input": "x", "voice": "alloy"}),
    ("/v1/completions", "gpt-3.5-turbo-instruct", {"prompt": "x"}),
]


@pytest.mark.parametrize(("route", "model", "body"), ROUTES, ids=[r[0] for r in ROUTES])
def test_every_route_retries_a_fault_and_counts_the_request(
    gateway_factory: GatewayFactory,
    fake: FakeProviders,
    redis_url: str,
    route: str,
    model: str,
    body: dict[str, Any],
) -> None:
    gw = gateway_factory(surface_config(fake, redis_url))
    fake.script([{"fault": "429"}], model=model)
    with AutoAdvance(gw.clock), gw.http() as http:
        answer = http.post(route, json={"model": model, **body})
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-gateway-attempts"] == "2"
    [event] = usage_events(gw, redis_url, route, 1)
    assert event["status"] == 200 and event["attempts"] == 2 and event["provider"] == "fake-openai"
    assert any('status_class="2xx"' in line for line in metric_lines(gw, "gw_requests_total", route))


@pytest.mark.parametrize(("route", "model", "body"), ROUTES, ids=[r[0] for r in ROUTES])
def test_every_route_fails_over(
    gateway_factory: GatewayFactory,
    fake: FakeProviders,
    redis_url: str,
    route: str,
    model: str,
    body: dict[str, Any],
) -> None:
    config = surface_config(fake, redis_url)
    config["models"] = [
        {"name": "first", "provider": "fake-openai", "upstream_model": "fault-503", "fallbacks": ["second"]},
        {"name": "second", "provider": "fake-openai", "upstream_model": model},
    ]
    gw = gateway_factory(config)
    with AutoAdvance(gw.clock), gw.http() as http:
        answer = http.post(route, json={"model": "first", **body})
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-gateway-attempts"] == "4"
    assert fake.requests(path="/openai/v1" + route.removeprefix("/v1"))[-1].body["model"] == model


def test_a_provider_without_the_route_is_a_clear_400(
    gateway_factory: GatewayFactory, fake: FakeProviders, redis_url: str
) -> None:
    config = add_anthropic(surface_config(fake, redis_url), fake)
    config["providers"][1]["routes"] = ["embeddings"]
    config["models"].append({"name": "vllm-whisper", "provider": "fake-vllm", "upstream_model": "whisper"})
    gw = gateway_factory(config)
    client = gw.openai()
    for call in (
        lambda: client.moderations.create(model="claude", input="x"),
        lambda: client.audio.transcriptions.create(model="vllm-whisper", file=("a.wav", AUDIO)),
        lambda: client.completions.create(model="claude", prompt="x"),
    ):
        with pytest.raises(openai.BadRequestError) as info:
            call()
        assert info.value.body["code"] == "not_supported"  # type: ignore[index]
    assert "/v1/moderations" in str(info.value.message) or "/v1/completions" in str(info.value.message)
    assert fake.requests(path="/anthropic/v1/messages") == []

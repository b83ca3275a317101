"""The fake OpenAI surface beyond chat: realistic answers, validation and faults on every route."""

from __future__ import annotations

import base64
import struct
from typing import Any

import httpx
import openai
import pytest

from fake_providers.openai.media import heard, png, speech
from fake_providers.openai.vectors import vector_for
from fake_providers.testing import FakeProviders


def test_embeddings_in_both_encodings_and_the_fixed_behaviours(
    client: openai.OpenAI, http: httpx.Client
) -> None:
    floats = client.embeddings.create(
        model="text-embedding-3-small", input=["a", "b"], encoding_format="float"
    )
    assert [d.embedding for d in floats.data] == [vector_for("a", 1536), vector_for("b", 1536)]
    narrow = client.embeddings.create(
        model="text-embedding-3-large", input="a", dimensions=4, encoding_format="float"
    )
    assert narrow.data[0].embedding == vector_for("a", 4)
    raw = http.post(
        "/openai/v1/embeddings",
        headers={"authorization": "Bearer sk-x"},
        json={"model": "text-embedding-3-small", "input": "a", "encoding_format": "base64"},
    ).json()
    encoded = base64.b64decode(raw["data"][0]["embedding"])
    assert list(struct.unpack("<1536f", encoded)) == vector_for("a", 1536)
    for model, kind in (("x-embed-floats-only", list), ("x-embed-base64-only", str)):
        for encoding in ("float", "base64"):
            body = {"model": model, "input": "a", "encoding_format": encoding}
            answer = http.post("/vllm/v1/embeddings", headers={"authorization": "Bearer k"}, json=body).json()
            assert isinstance(answer["data"][0]["embedding"], kind)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"model": "whisper-1", "input": "a"}, "does not support embeddings"),
        ({"model": "text-embedding-3-small", "input": ""}, "'$.input' is invalid"),
        ({"model": "text-embedding-3-small", "input": ["a"] * 2049}, "Too many inputs"),
        (
            {"model": "text-embedding-ada-002", "input": "a", "dimensions": 8},
            "does not support specifying dimensions",
        ),
        ({"model": "text-embedding-3-small", "input": "a", "encoding_format": "hex"}, "Invalid value: 'hex'"),
    ],
)
def test_embeddings_validation(client: openai.OpenAI, body: dict[str, Any], message: str) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.post("/embeddings", body=body, cast_to=object)
    assert message in info.value.message


def test_a_chat_model_on_embeddings_is_openais_403(client: openai.OpenAI) -> None:
    with pytest.raises(openai.PermissionDeniedError) as info:
        client.embeddings.create(model="gpt-4o-mini", input="a")
    assert info.value.message.endswith("You are not allowed to generate embeddings from this model")
    assert info.value.body["type"] == "invalid_request_error"  # type: ignore[index]


def test_completions_moderations_images_and_audio(client: openai.OpenAI) -> None:
    completion = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Hello")
    assert completion.choices[0].text == "You said: Hello" and completion.choices[0].finish_reason == "stop"
    cut = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Hello there", max_tokens=2)
    assert cut.choices[0].text == "You said" and cut.choices[0].finish_reason == "length"
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="gpt-4o", prompt="Hello")
    assert client.moderations.create(input="kill").results[0].categories.violence
    image = client.images.generate(model="gpt-image-1", prompt="fox")
    assert base64.b64decode(image.data[0].b64_json or "") == png("fox#0")
    with pytest.raises(openai.BadRequestError):
        client.images.generate(model="gpt-image-1", prompt="fox", response_format="url")
    text = client.audio.transcriptions.create(model="whisper-1", file=("a.wav", b"x" * 21))
    assert text.text == heard(21) == "This file has twenty-one bytes."
    with pytest.raises(openai.BadRequestError):
        client.audio.transcriptions.create(model="whisper-1", file=("a.wav", b"x"), stream=True)
    spoken = client.audio.speech.create(model="tts-1", voice="nova", input="hi", response_format="flac")
    assert spoken.content == speech("hi", "flac") and spoken.content.startswith(b"fLaC")
    with pytest.raises(openai.BadRequestError):
        client.audio.speech.create(model="tts-1", voice="nobody", input="hi")  # type: ignore[arg-type]


def test_files_and_the_batch_state_machine(client: openai.OpenAI, providers: FakeProviders) -> None:
    line = b'{"custom_id": "1", "method": "POST", "url": "/v1/embeddings", "body": {"model": "text-embedding-3-small", "input": "a"}}\n'
    uploaded = client.files.create(file=("in.jsonl", line), purpose="batch")
    assert client.files.content(uploaded.id).content == line
    with pytest.raises(openai.BadRequestError):
        client.files.create(file=("in.jsonl", b"not json\n"), purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/embeddings", completion_window="24h"
    )
    with pytest.raises(openai.BadRequestError):
        client.batches.create(input_file_id=uploaded.id, endpoint="/v1/completions", completion_window="24h")
    statuses = []
    for _ in range(3):
        statuses.append(httpx.post(providers.url(f"/_fake/batches/{batch.id}/advance")).json()["status"])
    assert statuses == ["in_progress", "finalizing", "completed"]
    done = client.batches.retrieve(batch.id)
    assert done.output_file_id is not None
    assert b'"custom_id":"1"' in client.files.content(done.output_file_id).content
    assert [f.id for f in client.files.list(purpose="batch")] == [uploaded.id]
    assert client.files.delete(uploaded.id).deleted
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(uploaded.id)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/embeddings", {"input": "a"}),
        ("/completions", {"prompt": "a"}),
        ("/moderations", {"input": "a"}),
        ("/images/generations", {"prompt": "a"}),
        ("/audio/speech", {"input": "a", "voice": "alloy"}),
    ],
)
def test_faults_from_the_catalogue_strike_every_route(
    providers: FakeProviders, http: httpx.Client, path: str, body: dict[str, Any]
) -> None:
    answer = http.post(
        "/openai/v1" + path, headers={"authorization": "Bearer k"}, json={**body, "model": "fault-429"}
    )
    assert answer.status_code == 429 and answer.headers["retry-after"] == "1"
    providers.script([{"fault": "503"}])
    scripted = http.post(
        "/openai/v1/files",
        headers={"authorization": "Bearer k"},
        files={"file": ("a", b"x")},
        data={"purpose": "user_data"},
    )
    assert scripted.status_code == 503

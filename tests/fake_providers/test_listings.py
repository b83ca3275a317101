"""Model listings in each provider's shape, all from the catalogue, plus unknown-route answers."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from fake_providers.catalogue import CATALOGUE

FIRST = CATALOGUE[0]  # gpt-4o-mini, 128000 tokens, 16384 output


def test_openai_listing_has_no_context_metadata(client: openai.OpenAI, http: httpx.Client) -> None:
    body = http.get("/openai/v1/models").json()
    assert body["object"] == "list"
    assert body["data"][0] == {
        "id": "gpt-4o-mini",
        "object": "model",
        "created": FIRST.created,
        "owned_by": "openai",
    }
    assert all(set(entry) == {"id", "object", "created", "owned_by"} for entry in body["data"])
    assert [model.id for model in client.models.list()] == [model.id for model in CATALOGUE]
    assert client.models.retrieve("gpt-4o").id == "gpt-4o"


def test_openai_unknown_model_is_model_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as raised:
        client.models.retrieve("gpt-9")
    assert raised.value.body == {
        "message": "The model `gpt-9` does not exist or you do not have access to it.",
        "type": "invalid_request_error",
        "param": None,
        "code": "model_not_found",
    }


LISTINGS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "/openrouter/api/v1/models",
        "data",
        {
            "id": "openai/gpt-4o-mini",
            "canonical_slug": "openai/gpt-4o-mini",
            "name": "openai: GPT-4o mini",
            "created": FIRST.created,
            "description": "GPT-4o mini, served by the fake providers.",
            "context_length": 128000,
            "architecture": {
                "modality": "text->text",
                "input_modalities": ["text"],
                "output_modalities": ["text"],
                "tokenizer": "Other",
                "instruct_type": None,
            },
            "pricing": {"prompt": "0", "completion": "0"},
            "top_provider": {"context_length": 128000, "max_completion_tokens": 16384, "is_moderated": True},
            "per_request_limits": None,
            "supported_parameters": ["max_tokens", "temperature", "tool_choice", "tools"],
        },
    ),
    (
        "/groq/openai/v1/models",
        "data",
        {
            "id": "gpt-4o-mini",
            "object": "model",
            "created": FIRST.created,
            "owned_by": "openai",
            "active": True,
            "context_window": 128000,
            "public_apps": None,
            "max_completion_tokens": 16384,
        },
    ),
    (
        "/mistral/v1/models",
        "data",
        {
            "id": "gpt-4o-mini",
            "object": "model",
            "created": FIRST.created,
            "owned_by": "openai",
            "capabilities": {
                "completion_chat": True,
                "completion_fim": False,
                "function_calling": True,
                "fine_tuning": False,
                "vision": False,
                "classification": False,
            },
            "name": "gpt-4o-mini",
            "description": "GPT-4o mini",
            "max_context_length": 128000,
            "aliases": [],
            "deprecation": None,
            "default_model_temperature": 0.3,
            "type": "base",
        },
    ),
    (
        "/lmstudio/api/v0/models",
        "data",
        {
            "id": "gpt-4o-mini",
            "object": "model",
            "type": "llm",
            "publisher": "openai",
            "arch": "openai",
            "compatibility_type": "gguf",
            "quantization": "Q4_K_M",
            "state": "not-loaded",
            "max_context_length": 128000,
        },
    ),
    (
        "/gemini/v1beta/models",
        "models",
        {
            "name": "models/gpt-4o-mini",
            "version": "001",
            "displayName": "GPT-4o mini",
            "description": "GPT-4o mini, served by the fake providers.",
            "inputTokenLimit": 128000,
            "outputTokenLimit": 16384,
            "supportedGenerationMethods": ["generateContent", "countTokens"],
            "temperature": 1.0,
            "topP": 0.95,
            "topK": 64,
            "maxTemperature": 2.0,
        },
    ),
]


@pytest.mark.parametrize(("path", "envelope", "first"), LISTINGS, ids=[case[0] for case in LISTINGS])
def test_listing_shapes(http: httpx.Client, path: str, envelope: str, first: dict[str, Any]) -> None:
    response = http.get(path)
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body[envelope][0] == first
    assert len(body[envelope]) == len(CATALOGUE)
    assert set(body) == ({"object", "data"} if "object" in body else {envelope})


def test_vllm_listing_has_max_model_len(http: httpx.Client) -> None:
    body = http.get("/vllm/v1/models").json()
    entry = body["data"][0]
    assert body["object"] == "list"
    assert {key: entry[key] for key in ("id", "object", "owned_by", "root", "parent", "max_model_len")} == {
        "id": "gpt-4o-mini",
        "object": "model",
        "owned_by": "vllm",
        "root": "gpt-4o-mini",
        "parent": None,
        "max_model_len": 128000,
    }
    assert entry["permission"][0]["object"] == "model_permission"
    assert entry["permission"][0]["id"].startswith("modelperm-")
    windows = {model["id"]: model["max_model_len"] for model in body["data"]}
    assert windows == {model.id: model.context_window for model in CATALOGUE}


def test_single_model_lookups(http: httpx.Client) -> None:
    assert http.get("/gemini/v1beta/models/gemini-2.5-flash").json()["inputTokenLimit"] == 1048576
    assert http.get("/lmstudio/api/v0/models/qwen2.5-7b-instruct").json()["max_context_length"] == 32768
    missing = http.get("/gemini/v1beta/models/gemini-0")
    assert missing.status_code == 404
    assert missing.json()["error"]["status"] == "NOT_FOUND"
    assert http.get("/lmstudio/api/v0/models/nope").json() == {"error": "Model 'nope' not found"}


def test_unknown_openai_route_is_invalid_url(http: httpx.Client) -> None:
    for method, path, shown in (
        ("POST", "/openai/v1/completion", "POST /v1/completion"),
        ("GET", "/openai/v1/chat/completions", "GET /v1/chat/completions"),
        ("GET", "/groq/openai/v1/nothing", "GET /openai/v1/nothing"),
    ):
        response = http.request(method, path)
        assert response.status_code == 404
        assert response.json() == {
            "error": {
                "message": f"Invalid URL ({shown})",
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
        }
        assert response.headers["x-request-id"].startswith("req_")


def test_routes_outside_the_dialects_get_a_plain_404(http: httpx.Client) -> None:
    response = http.get("/nowhere")
    assert (response.status_code, response.json()) == (404, {"status_code": 404, "detail": "Not Found"})


def test_gemini_listing_is_paged(http: httpx.Client) -> None:
    names: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        params = {"pageSize": "4"} if token is None else {"pageSize": "4", "pageToken": token}
        body = http.get("/gemini/v1beta/models", params=params).json()
        pages += 1
        names += [model["name"] for model in body["models"]]
        assert len(body["models"]) <= 4
        token = body.get("nextPageToken")
        if token is None:
            break
    assert pages == 3
    assert names == [f"models/{model.id}" for model in CATALOGUE]
    whole = http.get("/gemini/v1beta/models").json()  # default page size 50: one page
    assert "nextPageToken" not in whole
    assert len(whole["models"]) == len(CATALOGUE)
    refused = http.get("/gemini/v1beta/models", params={"pageToken": "not a token!"})
    assert refused.status_code == 400
    assert refused.json()["error"]["status"] == "INVALID_ARGUMENT"

"""Gemini `GET /v1beta/models` and `/v1beta/models/{name}`: `{"models": [...]}` with `inputTokenLimit`."""

from __future__ import annotations

import msgspec

from fake_providers.catalogue import CATALOGUE, CatalogueModel, find_model

_ENCODER = msgspec.json.Encoder()


class GeminiModel(msgspec.Struct, rename="camel"):
    name: str
    version: str
    display_name: str
    description: str
    input_token_limit: int
    output_token_limit: int
    supported_generation_methods: list[str]
    temperature: float
    top_p: float
    top_k: int
    max_temperature: float


class GeminiList(msgspec.Struct):
    models: list[GeminiModel]


def _entry(model: CatalogueModel) -> GeminiModel:
    return GeminiModel(
        name=f"models/{model.id}",
        version="001",
        display_name=model.display_name,
        description=f"{model.display_name}, served by the fake providers.",
        input_token_limit=model.context_window,
        output_token_limit=model.max_output_tokens,
        supported_generation_methods=["generateContent", "countTokens"],
        temperature=1.0,
        top_p=0.95,
        top_k=64,
        max_temperature=2.0,
    )


def render_list() -> bytes:
    return _ENCODER.encode(GeminiList(models=[_entry(model) for model in CATALOGUE]))


def render_one(name: str) -> bytes | None:
    model = find_model(name)
    return _ENCODER.encode(_entry(model)) if model is not None else None

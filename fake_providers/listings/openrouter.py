"""OpenRouter `GET /api/v1/models`: `{"data": [...]}` with `context_length` and `top_provider`."""

from __future__ import annotations

import msgspec

from fake_providers.catalogue import CATALOGUE, CatalogueModel

_ENCODER = msgspec.json.Encoder()


class Architecture(msgspec.Struct):
    modality: str
    input_modalities: list[str]
    output_modalities: list[str]
    tokenizer: str
    instruct_type: None = None


class Pricing(msgspec.Struct):
    prompt: str
    completion: str


class TopProvider(msgspec.Struct):
    context_length: int
    max_completion_tokens: int
    is_moderated: bool


class OpenRouterModel(msgspec.Struct):
    id: str
    canonical_slug: str
    name: str
    created: int
    description: str
    context_length: int
    architecture: Architecture
    pricing: Pricing
    top_provider: TopProvider
    per_request_limits: None
    supported_parameters: list[str]


class OpenRouterList(msgspec.Struct):
    data: list[OpenRouterModel]


def _entry(model: CatalogueModel) -> OpenRouterModel:
    slug = f"{model.vendor}/{model.id}"
    return OpenRouterModel(
        id=slug,
        canonical_slug=slug,
        name=f"{model.vendor}: {model.display_name}",
        created=model.created,
        description=f"{model.display_name}, served by the fake providers.",
        context_length=model.context_window,
        architecture=Architecture(
            modality="text->text",
            input_modalities=["text"],
            output_modalities=["text"],
            tokenizer="Other",
        ),
        pricing=Pricing(prompt="0", completion="0"),
        top_provider=TopProvider(
            context_length=model.context_window,
            max_completion_tokens=model.max_output_tokens,
            is_moderated=model.vendor == "openai",
        ),
        per_request_limits=None,
        supported_parameters=["max_tokens", "temperature", "tool_choice", "tools"],
    )


def render_list() -> bytes:
    return _ENCODER.encode(OpenRouterList(data=[_entry(model) for model in CATALOGUE]))

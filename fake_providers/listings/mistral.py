"""Mistral `GET /v1/models`: the OpenAI list shape plus `max_context_length` and `capabilities`."""

from __future__ import annotations

import msgspec

from fake_providers.catalogue import CATALOGUE, CatalogueModel

_ENCODER = msgspec.json.Encoder()


class Capabilities(msgspec.Struct):
    completion_chat: bool
    completion_fim: bool
    function_calling: bool
    fine_tuning: bool
    vision: bool
    classification: bool


class MistralModel(msgspec.Struct):
    id: str
    object: str
    created: int
    owned_by: str
    capabilities: Capabilities
    name: str
    description: str
    max_context_length: int
    aliases: list[str]
    deprecation: None
    default_model_temperature: float
    type: str


class MistralList(msgspec.Struct):
    object: str
    data: list[MistralModel]


def _entry(model: CatalogueModel) -> MistralModel:
    return MistralModel(
        id=model.id,
        object="model",
        created=model.created,
        owned_by=model.vendor,
        capabilities=Capabilities(
            completion_chat=True,
            completion_fim=False,
            function_calling=True,
            fine_tuning=False,
            vision=False,
            classification=False,
        ),
        name=model.id,
        description=model.display_name,
        max_context_length=model.context_window,
        aliases=[],
        deprecation=None,
        default_model_temperature=0.3,
        type="base",
    )


def render_list() -> bytes:
    return _ENCODER.encode(MistralList(object="list", data=[_entry(model) for model in CATALOGUE]))

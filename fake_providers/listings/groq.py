"""Groq `GET /openai/v1/models`: the OpenAI list shape plus `context_window` and `active`."""

from __future__ import annotations

import msgspec

from fake_providers.catalogue import CATALOGUE, CatalogueModel

_ENCODER = msgspec.json.Encoder()


class GroqModel(msgspec.Struct):
    id: str
    object: str
    created: int
    owned_by: str
    active: bool
    context_window: int
    public_apps: None
    max_completion_tokens: int


class GroqList(msgspec.Struct):
    object: str
    data: list[GroqModel]


def _entry(model: CatalogueModel) -> GroqModel:
    return GroqModel(
        id=model.id,
        object="model",
        created=model.created,
        owned_by=model.vendor,
        active=True,
        context_window=model.context_window,
        public_apps=None,
        max_completion_tokens=model.max_output_tokens,
    )


def render_list() -> bytes:
    return _ENCODER.encode(GroqList(object="list", data=[_entry(model) for model in CATALOGUE]))

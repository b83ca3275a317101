"""LM Studio REST v0 `GET /api/v0/models` and `/api/v0/models/{id}`, with `max_context_length`."""

from __future__ import annotations

import msgspec

from fake_providers.catalogue import CATALOGUE, CatalogueModel, find_model

_ENCODER = msgspec.json.Encoder()


class LMStudioModel(msgspec.Struct):
    id: str
    object: str
    type: str
    publisher: str
    arch: str
    compatibility_type: str
    quantization: str
    state: str
    max_context_length: int


class LMStudioList(msgspec.Struct):
    object: str
    data: list[LMStudioModel]


def _entry(model: CatalogueModel) -> LMStudioModel:
    return LMStudioModel(
        id=model.id,
        object="model",
        type="llm",
        publisher=model.vendor,
        arch=model.vendor.split("-")[-1],
        compatibility_type="gguf",
        quantization="Q4_K_M",
        state="not-loaded",
        max_context_length=model.context_window,
    )


def render_list() -> bytes:
    return _ENCODER.encode(LMStudioList(object="list", data=[_entry(model) for model in CATALOGUE]))


def render_one(model_id: str) -> bytes | None:
    model = find_model(model_id)
    return _ENCODER.encode(_entry(model)) if model is not None else None

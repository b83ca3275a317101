"""OpenAI `GET /v1/models` and `GET /v1/models/{id}`: no context-window metadata, like the real one."""

from __future__ import annotations

import msgspec

from fake_providers.catalogue import CATALOGUE, CatalogueModel, find_model

_ENCODER = msgspec.json.Encoder()


class Model(msgspec.Struct):
    id: str
    object: str
    created: int
    owned_by: str


class ModelList(msgspec.Struct):
    object: str
    data: list[Model]


def _entry(model: CatalogueModel) -> Model:
    return Model(id=model.id, object="model", created=model.created, owned_by=model.vendor)


def render_list() -> bytes:
    return _ENCODER.encode(ModelList(object="list", data=[_entry(model) for model in CATALOGUE]))


def render_one(model_id: str) -> bytes | None:
    model = find_model(model_id)
    if model is None or model.id != model_id:
        return None
    return _ENCODER.encode(_entry(model))

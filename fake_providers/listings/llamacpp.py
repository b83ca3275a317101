"""llama.cpp's OpenAI-compatible server, `GET /v1/models`: the bare OpenAI list shape
(`owned_by: "me"`, an empty `permissions`)."""

from __future__ import annotations

import msgspec

from fake_providers.catalogue import CATALOGUE

_ENCODER = msgspec.json.Encoder()


class ModelCard(msgspec.Struct):
    id: str
    object: str
    owned_by: str
    permissions: list[str]


class ModelList(msgspec.Struct):
    object: str
    data: list[ModelCard]


def render_list() -> bytes:
    cards = [ModelCard(id=model.id, object="model", owned_by="me", permissions=[]) for model in CATALOGUE]
    return _ENCODER.encode(ModelList(object="list", data=cards))

"""vLLM `GET /v1/models`: the OpenAI list shape plus `max_model_len` and `permission`."""

from __future__ import annotations

import hashlib

import msgspec

from fake_providers.catalogue import CATALOGUE, CatalogueModel

_ENCODER = msgspec.json.Encoder()


class ModelPermission(msgspec.Struct):
    id: str
    object: str
    created: int
    allow_create_engine: bool
    allow_sampling: bool
    allow_logprobs: bool
    allow_search_indices: bool
    allow_view: bool
    allow_fine_tuning: bool
    organization: str
    group: None
    is_blocking: bool


class ModelCard(msgspec.Struct):
    id: str
    object: str
    created: int
    owned_by: str
    root: str
    parent: None
    max_model_len: int
    permission: list[ModelPermission]


class ModelList(msgspec.Struct):
    object: str
    data: list[ModelCard]


def _entry(model: CatalogueModel) -> ModelCard:
    permission = ModelPermission(
        id="modelperm-" + hashlib.sha256(model.id.encode()).hexdigest()[:32],
        object="model_permission",
        created=model.created,
        allow_create_engine=False,
        allow_sampling=True,
        allow_logprobs=True,
        allow_search_indices=False,
        allow_view=True,
        allow_fine_tuning=False,
        organization="*",
        group=None,
        is_blocking=False,
    )
    return ModelCard(
        id=model.id,
        object="model",
        created=model.created,
        owned_by="vllm",
        root=model.id,
        parent=None,
        max_model_len=model.context_window,
        permission=[permission],
    )


def render_list() -> bytes:
    return _ENCODER.encode(ModelList(object="list", data=[_entry(model) for model in CATALOGUE]))

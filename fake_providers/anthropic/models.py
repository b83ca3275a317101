"""Anthropic `GET /v1/models` and `GET /v1/models/{id}`: the catalogue's Claude models, with
`max_input_tokens` (the context window) and `max_tokens`. Paged by `limit`, `after_id`, `before_id`."""

from __future__ import annotations

import msgspec

from fake_providers.anthropic.dialect import rfc3339
from fake_providers.anthropic.wire import ModelInfo, ModelPage
from fake_providers.catalogue import CATALOGUE, CatalogueModel

_ENCODER = msgspec.json.Encoder()
VENDOR = "anthropic"
DEFAULT_LIMIT = 20
MAX_LIMIT = 1000


def _info(model: CatalogueModel) -> ModelInfo:
    return ModelInfo(
        type="model",
        id=model.id,
        display_name=model.display_name,
        created_at=rfc3339(model.created),
        max_input_tokens=model.context_window,
        max_tokens=model.max_output_tokens,
        lifecycle="active",
    )


def _models() -> list[ModelInfo]:
    # Newest first, as Anthropic lists them.
    chosen = [model for model in CATALOGUE if model.vendor == VENDOR]
    return [_info(model) for model in sorted(chosen, key=lambda model: model.created, reverse=True)]


def render_page(limit: int, after_id: str | None, before_id: str | None) -> bytes:
    models = _models()
    ids = [model.id for model in models]
    if after_id is not None:
        models = models[ids.index(after_id) + 1 :] if after_id in ids else []
        page, more = models[:limit], len(models) > limit
    elif before_id is not None:
        models = models[: ids.index(before_id)] if before_id in ids else []
        page, more = models[-limit:], len(models) > limit
    else:
        page, more = models[:limit], len(models) > limit
    return _ENCODER.encode(
        ModelPage(
            data=page,
            first_id=page[0].id if page else None,
            last_id=page[-1].id if page else None,
            has_more=more,
        )
    )


def render_one(model_id: str) -> bytes | None:
    found = next((model for model in _models() if model.id == model_id), None)
    return None if found is None else _ENCODER.encode(found)

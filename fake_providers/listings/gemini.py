"""Gemini `GET /v1beta/models` and `/v1beta/models/{name}`: `{"models": [...]}` with `inputTokenLimit`.

The listing is paged like Gemini's: `pageSize` (default 50, at most 1000) models per page, and
`nextPageToken` when more follow, to send back as `pageToken`. The token is opaque to clients (here
the base64 of the next position).
"""

from __future__ import annotations

import base64
import binascii

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


class GeminiList(msgspec.Struct, rename="camel", omit_defaults=True):
    models: list[GeminiModel]
    next_page_token: str | None = None


DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


class BadPage(ValueError):
    """A `pageSize` or `pageToken` Gemini refuses (400 INVALID_ARGUMENT)."""


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


def render_list(page_size: str | None = None, page_token: str | None = None) -> bytes:
    """One page of the listing; raises `BadPage` for a malformed `pageSize` or `pageToken`."""
    try:
        size = DEFAULT_PAGE_SIZE if page_size is None else int(page_size)
    except ValueError:
        raise BadPage(f"Invalid value at 'page_size' (TYPE_INT32), \"{page_size}\"") from None
    size = DEFAULT_PAGE_SIZE if size <= 0 else min(size, MAX_PAGE_SIZE)
    start = 0
    if page_token:
        try:
            start = int(base64.urlsafe_b64decode(page_token.encode()).decode())
        except (ValueError, binascii.Error):
            raise BadPage("Invalid page token.") from None
        if start < 0:
            raise BadPage("Invalid page token.")
    models = [_entry(model) for model in CATALOGUE]
    end = start + size
    following = base64.urlsafe_b64encode(str(end).encode()).decode() if end < len(models) else None
    return _ENCODER.encode(GeminiList(models=models[start:end], next_page_token=following))


def bad_page(message: str) -> bytes:
    return _ENCODER.encode({"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}})


def render_one(name: str) -> bytes | None:
    model = find_model(name)
    return _ENCODER.encode(_entry(model)) if model is not None else None

"""The built-in model catalogue: names and context windows behind every model listing.

Generation routes accept any model name; a catalogue model also gets its context window enforced
(`context_length_exceeded` when the estimated input is larger).
"""

from __future__ import annotations

import msgspec


class CatalogueModel(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    vendor: str  # OpenRouter-style author, e.g. `openai`, `meta-llama`
    display_name: str
    context_window: int  # input plus output tokens
    max_output_tokens: int
    created: int  # unix seconds


CATALOGUE: tuple[CatalogueModel, ...] = (
    CatalogueModel(
        id="gpt-4o-mini",
        vendor="openai",
        display_name="GPT-4o mini",
        context_window=128000,
        max_output_tokens=16384,
        created=1721172741,
    ),
    CatalogueModel(
        id="gpt-4o",
        vendor="openai",
        display_name="GPT-4o",
        context_window=128000,
        max_output_tokens=16384,
        created=1715367049,
    ),
    CatalogueModel(
        id="gpt-4.1",
        vendor="openai",
        display_name="GPT-4.1",
        context_window=1047576,
        max_output_tokens=32768,
        created=1744316542,
    ),
    CatalogueModel(
        id="gpt-3.5-turbo",
        vendor="openai",
        display_name="GPT-3.5 Turbo",
        context_window=4097,
        max_output_tokens=4096,
        created=1677610602,
    ),
    CatalogueModel(
        id="claude-sonnet-4-5",
        vendor="anthropic",
        display_name="Claude Sonnet 4.5",
        context_window=200000,
        max_output_tokens=64000,
        created=1759104000,
    ),
    CatalogueModel(
        id="claude-haiku-4-5",
        vendor="anthropic",
        display_name="Claude Haiku 4.5",
        context_window=200000,
        max_output_tokens=64000,
        created=1760486400,
    ),
    CatalogueModel(
        id="gemini-2.5-flash",
        vendor="google",
        display_name="Gemini 2.5 Flash",
        context_window=1048576,
        max_output_tokens=65536,
        created=1750118400,
    ),
    CatalogueModel(
        id="llama-3.1-8b-instant",
        vendor="meta-llama",
        display_name="Llama 3.1 8B Instant",
        context_window=131072,
        max_output_tokens=8192,
        created=1721692800,
    ),
    CatalogueModel(
        id="mistral-small-latest",
        vendor="mistralai",
        display_name="Mistral Small",
        context_window=32768,
        max_output_tokens=8192,
        created=1726790400,
    ),
    CatalogueModel(
        id="qwen2.5-7b-instruct",
        vendor="qwen",
        display_name="Qwen2.5 7B Instruct",
        context_window=32768,
        max_output_tokens=8192,
        created=1726617600,
    ),
)

_BY_ID = {model.id: model for model in CATALOGUE}


def find_model(name: str) -> CatalogueModel | None:
    """Look a model up by id, also as `models/<id>` (Gemini) or `<vendor>/<id>` (OpenRouter)."""
    found = _BY_ID.get(name)
    if found is None:
        found = _BY_ID.get(name.removeprefix("models/").rpartition("/")[2])
    return found

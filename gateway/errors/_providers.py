"""Provider keys: normalisation, display names, and detection from error text."""

from __future__ import annotations

from collections.abc import Mapping

# Aliases that normalise to another key. The gateway's own provider kind
# ``openai-compatible`` joins the other spellings of ``openai-compat``.
_ALIASES: Mapping[str, str] = {
    "azure openai": "azure",
    "azure-openai": "azure",
    "openai compat": "openai-compat",
    "openai compatible": "openai-compat",
    "openai_compat": "openai-compat",
    "openai-compatible": "openai-compat",
    "openai_compatible": "openai-compat",
}

_DISPLAY_NAMES: Mapping[str, str] = {
    "anthropic": "Anthropic",
    "azure": "Azure OpenAI",
    "bedrock": "AWS Bedrock",
    "google": "Google",
    "openai": "OpenAI",
    "openai-compat": "OpenAI Compatible",
    "openrouter": "OpenRouter",
    "vercel": "Vercel AI Gateway",
}

# Checked in this order; the first provider with a matching substring wins. ``openai``
# comes last because it is a substring of several of the others.
_TEXT_HINTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("openai-compat", ("openai-compat", "openai compatible")),
    ("azure", ("azure openai", "azure-openai")),
    ("openrouter", ("openrouter",)),
    ("bedrock", ("aws bedrock", "bedrock")),
    ("vercel", ("vercel ai gateway", "vercel")),
    ("anthropic", ("anthropic", "claude")),
    ("google", ("google", "gemini", "vertex")),
    ("openai", ("openai",)),
)

UNKNOWN_SUBJECT = "The AI provider"


def normalize_provider(provider: str) -> str:
    """Lower-case, trim, and fold known aliases (``"Azure OpenAI"`` -> ``"azure"``)."""
    key = provider.strip().lower()
    return _ALIASES.get(key, key)


def display_name(provider: str) -> str:
    """The provider's display name, or ``""`` when the key is not a known provider."""
    return _DISPLAY_NAMES.get(normalize_provider(provider), "")


def subject(provider: str) -> str:
    """The sentence subject used in messages: the display name or "The AI provider"."""
    return display_name(provider) or UNKNOWN_SUBJECT


def detect_provider(lower_text: str) -> str:
    """The provider named in already lower-cased text (URLs count), or ``""``."""
    for provider, needles in _TEXT_HINTS:
        if any(needle in lower_text for needle in needles):
            return provider
    return ""

"""Context-window limits from provider metadata and model listings.

Two layers:

* The key-word rules: :func:`is_context_limit_key` decides by the words of a key whether
  it names a context limit, :func:`context_limit_value` accepts only positive integers,
  and :func:`find_context_limit` walks nested maps and lists and returns the largest
  candidate. Usage counters such as ``context_tokens_used`` are rejected by the word
  rules.
* Model listings (``GET /models`` and its equivalents): :func:`context_window_from_listing_entry`
  reads one model entry of any dialect. It applies the key-word rules plus a short list of
  provider keys that the word rules deliberately do not accept (they lack the word
  "context", e.g. vLLM's ``max_model_len``); loosening the rules instead would let keys
  like ``max_tokens`` in. :func:`parse_model_listing` maps model ids to windows for the
  ``{"data": [...]}``, ``{"models": [...]}`` and bare-list envelopes.

Everything here is pure and allocation-light; no state is kept between calls.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any, Final

# Normalized keys (see normalize_metadata_key) accepted without looking at their words.
EXACT_CONTEXT_LIMIT_KEYS: Final = frozenset(
    {
        "contextlimit",
        "contextwindow",
        "contextlength",
        "maxcontext",
        "maxcontexttokens",
        "maxinputtokens",
        "maxinputtoken",
        "inputtokenlimit",
    }
)

# Provider keys for a context window that the word rules reject (they lack "context").
# Matched by exact key name anywhere inside one listing entry.
PROVIDER_CONTEXT_KEYS: Final[tuple[tuple[str, str], ...]] = (
    ("max_model_len", "vLLM GET /v1/models data[].max_model_len (absent for LoRA adapters)"),
    ("n_ctx_train", "llama.cpp server GET /v1/models data[].meta.n_ctx_train (trained window)"),
    ("max_total_tokens", "Hugging Face TGI GET /info (input plus output)"),
    ("max_input_length", "Hugging Face TGI GET /info, older name of max_input_tokens"),
)
# Runtime windows: what the server was started with. When present they win over every
# other value of the entry, even a larger trained one: a request beyond it fails.
RUNTIME_CONTEXT_KEYS: Final[tuple[tuple[str, str], ...]] = (
    ("n_ctx", "llama.cpp server data[].meta.n_ctx and GET /props default_generation_settings.n_ctx"),
)
# Ollama POST /api/show: model_info["<arch>.context_length"] (suffix match), and the
# runtime `num_ctx N` line of the `parameters` text, which wins when present.
OLLAMA_CONTEXT_KEY_SUFFIX: Final = ".context_length"
_OLLAMA_NUM_CTX: Final = re.compile(r"^\s*num_ctx\s+(\d+)\s*$", re.MULTILINE)

_PROVIDER_KEYS: Final = frozenset(key for key, _ in PROVIDER_CONTEXT_KEYS)
_RUNTIME_KEYS: Final = frozenset(key for key, _ in RUNTIME_CONTEXT_KEYS)

_NON_ALNUM: Final = re.compile(r"[^a-z0-9]+")
_INTEGER_TEXT: Final = re.compile(r"[+-]?[0-9]+")
_INT64_MAX: Final = 2**63 - 1
_MAX_WALK_DEPTH: Final = 64
_ID_FIELDS: Final = ("id", "name", "key", "model", "model_name", "model_group", "model_id")


def normalize_metadata_key(key: str) -> str:
    """Lower-case ASCII letters and keep only ``a-z`` and ``0-9`` (everything else is dropped)."""
    if key.isascii():
        return _NON_ALNUM.sub("", key.lower())
    return "".join(ch.lower() if "A" <= ch <= "Z" else ch for ch in key if ch.isascii() and ch.isalnum())


def metadata_key_words(key: str) -> list[str]:
    """Split a key into lower-case words.

    Every non-letter (digits, ``_``, ``-``, ``.``, spaces, ...) ends a word, and so does a
    lower-case letter followed by an upper-case one (camelCase).
    """
    words: list[str] = []
    current: list[str] = []
    previous_lower = False
    for ch in key:
        if not ch.isalpha():
            if current:
                words.append("".join(current))
                current = []
            previous_lower = False
            continue
        if ch.isupper() and previous_lower and current:
            words.append("".join(current))
            current = []
        current.append(ch.lower())
        previous_lower = ch.islower()
    if current:
        words.append("".join(current))
    return words


def is_context_limit_key(key: str) -> bool:
    """Whether a metadata key names a context limit: its normalized form is one of
    :data:`EXACT_CONTEXT_LIMIT_KEYS`, or its words hold "context" and "limit", "window" with
    "size" or "max", "length" with "max", or "token(s)" with "max" or "limit"."""
    normalized = normalize_metadata_key(key)
    if not normalized:
        return False
    if normalized in EXACT_CONTEXT_LIMIT_KEYS:
        return True
    words = metadata_key_words(key)
    if "context" not in words:
        return False
    if "limit" in words:
        return True
    if "window" in words:
        return "size" in words or "max" in words
    if "length" in words:
        return "max" in words
    return ("token" in words or "tokens" in words) and ("max" in words or "limit" in words)


def context_limit_value(value: object) -> int | None:
    """A positive integer limit from a metadata value, else None.

    Accepted: integers; floats with an integral value; strings holding a base-10 integer
    (surrounding whitespace allowed -- the equivalent of Go's ``json.Number``). Zero,
    negatives, fractions, values beyond int64, booleans, null and containers are not.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 < value <= _INT64_MAX else None
    if isinstance(value, float):
        if value.is_integer() and 0 < value < 2.0**63:
            return int(value)
        return None
    if isinstance(value, str):
        text = value.strip()
        if not _INTEGER_TEXT.fullmatch(text):
            return None
        number = int(text)
        return number if 0 < number <= _INT64_MAX else None
    return None


def _leaves(root: object) -> Iterator[tuple[str, object]]:
    """Every string key with its value that is not a map or a list, anywhere in nested maps and
    lists (no deeper than the walk's depth limit)."""
    stack: list[tuple[object, int]] = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > _MAX_WALK_DEPTH:
            continue
        if isinstance(node, Mapping):
            for key, child in node.items():
                if isinstance(child, Mapping | list | tuple):
                    stack.append((child, depth + 1))
                elif isinstance(key, str):
                    yield key, child
        elif isinstance(node, list | tuple):
            stack.extend((child, depth + 1) for child in node)


def _larger(best: int | None, found: int | None) -> int | None:
    return found if found is not None and (best is None or found > best) else best


def find_context_limit(metadata: object) -> int | None:
    """The largest context limit found anywhere in nested maps and lists, or None."""
    best: int | None = None
    for key, value in _leaves(metadata):
        if is_context_limit_key(key):
            best = _larger(best, context_limit_value(value))
    return best


def context_window_from_listing_entry(entry: Mapping[str, Any]) -> int | None:
    """The context window of one model entry of a provider's model listing, or None.

    Works for the entries of the providers' listings (OpenRouter, vLLM, Groq,
    Mistral, Together, DeepSeek, Anthropic, Gemini, LM Studio, llama.cpp, ...) and for
    single-model bodies such as Ollama ``/api/show``, llama.cpp ``/props`` or TGI
    ``/info``. A runtime window (llama.cpp ``n_ctx``, Ollama ``num_ctx``) wins when
    present; otherwise the largest value under the key-word rules or the provider keys.
    ``0``, ``null`` and non-integers count as unknown (Anthropic documents ``0``).
    """
    runtime: int | None = None
    best: int | None = None
    for key, value in _leaves(entry):
        if key in _RUNTIME_KEYS or (key == "parameters" and isinstance(value, str)):
            runtime = _larger(runtime, _runtime_value(key, value))
        elif key in _PROVIDER_KEYS or key.endswith(OLLAMA_CONTEXT_KEY_SUFFIX) or is_context_limit_key(key):
            best = _larger(best, context_limit_value(value))
    return runtime if runtime is not None else best


def _runtime_value(key: str, value: object) -> int | None:
    if key == "parameters":
        assert isinstance(value, str)
        values = [int(match) for match in _OLLAMA_NUM_CTX.findall(value)]
        positive = [v for v in values if 0 < v <= _INT64_MAX]
        return max(positive) if positive else None
    return context_limit_value(value)


def model_id_of(entry: Mapping[str, Any]) -> str | None:
    """The model id of a listing entry: ``id``; else ``name`` without Gemini's ``models/``
    prefix (Gemini, Ollama, Fireworks); else ``key`` (LM Studio REST v1); else ``model``,
    ``model_name``/``model_group`` (LiteLLM) or ``model_id`` (TGI ``/info``)."""
    for field in _ID_FIELDS:
        value = entry.get(field)
        if isinstance(value, str) and value:
            if field == "name" and value.startswith("models/"):
                return value[len("models/") :] or None
            return value
    return None


def parse_model_listing(body: object) -> dict[str, int | None]:
    """Model id -> context window (None when unknown) for a model-listing body.

    Envelopes: ``{"data": [...]}`` (OpenAI, vLLM, Groq, Mistral, OpenRouter, Anthropic,
    LM Studio v0, llama.cpp, ...), ``{"models": [...]}`` (Gemini, LM Studio v1, Ollama),
    a bare list (Together, one Mistral example), or a single model object. Entries
    without an id are skipped; when an id repeats, the larger known window is kept.
    """
    entries: object
    if isinstance(body, Mapping):
        entries = body.get("data")
        if not isinstance(entries, list):
            entries = body.get("models")
        if not isinstance(entries, list):
            entries = [body] if model_id_of(body) is not None else []
    elif isinstance(body, list):
        entries = body
    else:
        return {}
    assert isinstance(entries, list)
    out: dict[str, int | None] = {}
    for entry in entries:
        if not isinstance(entry, Mapping):
            continue
        model_id = model_id_of(entry)
        if model_id is None:
            continue
        window = context_window_from_listing_entry(entry)
        known = out.get(model_id)
        if model_id not in out or (window is not None and (known is None or window > known)):
            out[model_id] = window
    return out


__all__ = [
    "EXACT_CONTEXT_LIMIT_KEYS",
    "PROVIDER_CONTEXT_KEYS",
    "RUNTIME_CONTEXT_KEYS",
    "context_limit_value",
    "context_window_from_listing_entry",
    "find_context_limit",
    "is_context_limit_key",
    "metadata_key_words",
    "model_id_of",
    "normalize_metadata_key",
    "parse_model_listing",
]

"""Context-limit keys and values (chatd-spec §4.2-4.3) and model listings (api-semantics §6)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.upstream.context_limit import (
    context_limit_value,
    context_window_from_listing_entry,
    find_context_limit,
    is_context_limit_key,
    metadata_key_words,
    model_id_of,
    normalize_metadata_key,
    parse_model_listing,
)

# --- chatd-spec §4.3 tables -----------------------------------------------------------------

ACCEPTED_KEYS = [
    "context_limit",
    "context_window",
    "context_length",
    "max_context",
    "max_context_tokens",
    "max_input_tokens",
    "max_input_token",
    "input_token_limit",
    "Context-Window",
    "MAX_CONTEXT_TOKENS",
    "contextLimit",
    "modelContextLimit",
    "model_context_limit",
    "context_window_size",
    "context_length_max",
    "max_context_",
    "max_context_limit",
]
REJECTED_KEYS = [
    "max_context_version",
    "context_tokens_used",
    "context_length_used",
    "context_window_used",
    "context_id",
    "",
    "model_name",
    "rate_limit",
    "max_tokens",
    "context",
]


@pytest.mark.parametrize("key", ACCEPTED_KEYS)
def test_context_limit_keys_accepted(key: str) -> None:
    assert is_context_limit_key(key) is True


@pytest.mark.parametrize("key", REJECTED_KEYS)
def test_context_limit_keys_rejected(key: str) -> None:
    assert is_context_limit_key(key) is False


@pytest.mark.parametrize(
    ("key", "words"),
    [
        ("max_context_tokens", ["max", "context", "tokens"]),
        ("maxContextTokens", ["max", "context", "tokens"]),
        ("MAX_CONTEXT", ["max", "context"]),
        ("ContextWindow", ["context", "window"]),
        ("context2limit", ["context", "limit"]),
        ("", []),
        # Beyond the table: only a lower->upper step splits camel case.
        ("HTTPServerContext", ["httpserver", "context"]),
        ("inputTokenLimit", ["input", "token", "limit"]),
        ("llama.context_length", ["llama", "context", "length"]),
    ],
)
def test_metadata_key_words(key: str, words: list[str]) -> None:
    assert metadata_key_words(key) == words


@pytest.mark.parametrize(
    ("key", "normalized"),
    [
        ("camelCase", "camelcase"),
        ("kebab-case", "kebabcase"),
        ("snake_case", "snakecase"),
        ("UPPER", "upper"),
        ("with spaces", "withspaces"),
        ("", ""),
        ("123", "123"),
        ("Max_Context-Tokens", "maxcontexttokens"),
        ("context.limit", "contextlimit"),
        # Only ASCII letters and digits survive.
        ("Kontext\u00e9-L\u00c4nge", "kontextlnge"),
    ],
)
def test_normalize_metadata_key(key: str, normalized: str) -> None:
    assert normalize_metadata_key(key) == normalized


def test_word_rule_order() -> None:
    # `limit` wins outright; `window` needs size/max; `length` needs max; else tokens + max/limit.
    assert is_context_limit_key("context_window_limit")
    assert is_context_limit_key("context_window_tokens_max")  # window + max
    assert not is_context_limit_key("context_window_tokens")  # window without size/max
    assert is_context_limit_key("context_length_tokens_max")  # length + max
    assert not is_context_limit_key("context_length_tokens")
    assert is_context_limit_key("context_tokens_max")
    assert not is_context_limit_key("context_tokens")
    # Digits split words but are not words; "max" + "context" alone is not enough.
    assert is_context_limit_key("context2limit")
    assert not is_context_limit_key("max2context")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (128000.0, 128000),  # float64 with an integral value
        (1.5, None),
        (0.0, None),
        (-4096.0, None),
        (float("inf"), None),
        (float("nan"), None),
        (2.0**63, None),  # beyond int64
        (200000, 200000),  # int64 / int32 / int
        (0, None),
        (-1, None),
        (2**63 - 1, 2**63 - 1),
        (2**63, None),
        (" 4096 ", 4096),  # string, trimmed
        ("abc", None),
        ("", None),
        ("0", None),
        ("-1", None),
        ("+8192", 8192),
        ("8192", 8192),  # json.Number valid
        ("1.5", None),  # json.Number not an integer
        ("1e5", None),
        ("1_000", None),
        ("\u0661\u0662", None),  # Arabic-Indic digits are not ASCII digits
        ("9223372036854775808", None),
        (True, None),
        (False, None),
        (None, None),
        ([4096], None),
        ({"value": 4096}, None),
    ],
)
def test_context_limit_value(value: Any, expected: int | None) -> None:
    assert context_limit_value(value) == expected


# --- find_context_limit ---------------------------------------------------------------


def test_flat_map() -> None:
    assert find_context_limit({"context_limit": 200000, "model": "x"}) == 200000


def test_nested_maps() -> None:
    assert find_context_limit({"anthropic": {"model": {"context_window": 200000}}}) == 200000


def test_arrays_of_maps() -> None:
    assert find_context_limit({"models": [{"context_length": 8192}, {"context_length": 32768}]}) == 32768


def test_mixed_and_maximum_wins() -> None:
    metadata = {
        "max_input_tokens": "100000",
        "limits": [{"inputTokenLimit": 1048576.0}, {"context_window": 0}],
        "nested": {"Context-Window": 400000},
    }
    assert find_context_limit(metadata) == 1048576


def test_usage_counters_ignored() -> None:
    metadata = {"context_tokens_used": 999999, "context_window_used": 500000, "max_context_version": 7}
    assert find_context_limit(metadata) is None
    assert find_context_limit({**metadata, "context_limit": 8192}) == 8192


@pytest.mark.parametrize("metadata", [None, {}, [], "context_limit", {"context_limit": None}, [[[]]]])
def test_nothing_found(metadata: Any) -> None:
    assert find_context_limit(metadata) is None


def test_find_context_limit_keeps_the_spec_rules() -> None:
    # vLLM's key has no "context" word: the metadata rules do not accept it (listings do, below).
    assert find_context_limit({"max_model_len": 131072}) is None
    assert find_context_limit({"llama.context_length": 131072}) is None


# --- provider keys, one entry at a time (api-semantics §6) --------------------------------

PROVIDER_ENTRIES: list[tuple[str, dict[str, Any], int | None]] = [
    ("openai", {"id": "gpt-4o-mini", "object": "model", "created": 1686935002, "owned_by": "openai"}, None),
    (
        "anthropic",
        {
            "type": "model",
            "id": "claude-sonnet-4-5",
            "display_name": "Claude Sonnet 4.5",
            "max_input_tokens": 200000,
            "max_tokens": 64000,
            "capabilities": {"thinking": {"supported": True}},
        },
        200000,
    ),
    ("anthropic, documented zeros", {"id": "claude-x", "max_input_tokens": 0, "max_tokens": 0}, None),
    (
        "gemini",
        {"name": "models/gemini-2.5-flash", "inputTokenLimit": 1048576, "outputTokenLimit": 65536},
        1048576,
    ),
    (
        "openrouter",
        {
            "id": "openai/gpt-4o",
            "context_length": 128000,
            "top_provider": {"context_length": 128000, "max_completion_tokens": 16384, "is_moderated": True},
            "per_request_limits": None,
        },
        128000,
    ),
    (
        "openrouter, top_provider only",
        {"id": "x/y", "context_length": None, "top_provider": {"context_length": 32768}},
        32768,
    ),
    (
        "openrouter endpoints",
        {
            "id": "x/y",
            "endpoints": [{"context_length": 16000, "max_prompt_tokens": 12000}, {"context_length": 64000}],
        },
        64000,
    ),
    ("vllm", {"id": "meta-llama/Llama-3.1-8B-Instruct", "owned_by": "vllm", "max_model_len": 131072}, 131072),
    ("vllm lora adapter", {"id": "my-lora", "parent": "meta-llama/Llama-3.1-8B-Instruct"}, None),
    (
        "groq",
        {
            "id": "llama-3.3-70b-versatile",
            "active": True,
            "context_window": 131072,
            "max_completion_tokens": 32768,
        },
        131072,
    ),
    ("mistral", {"id": "mistral-large-latest", "max_context_length": 131072, "capabilities": {}}, 131072),
    ("together", {"id": "meta-llama/Llama-3.3-70B-Instruct-Turbo", "context_length": 131072}, 131072),
    ("fireworks", {"name": "accounts/fireworks/models/x", "contextLength": 131072}, 131072),
    ("deepseek", {"id": "deepseek-chat", "context_window": 131072, "max_output_tokens": 8192}, 131072),
    ("moonshot", {"id": "kimi-k2", "context_length": 262144, "supports_reasoning": True}, 262144),
    (
        "dashscope",
        {"model": "qwen-max", "model_info": {"context_window": 32768, "max_input_tokens": 30720}},
        32768,
    ),
    (
        "huggingface router",
        {
            "id": "m",
            "providers": [
                {"provider": "a", "context_length": 16384},
                {"provider": "b", "context_length": 32768},
            ],
        },
        32768,
    ),
    (
        "litellm",
        {"model_name": "gpt-4o", "model_info": {"max_input_tokens": 128000, "max_tokens": 16384}},
        128000,
    ),
    ("tgi /info", {"model_id": "bigscience/bloom", "max_input_tokens": 1024, "max_total_tokens": 2048}, 2048),
    ("tgi /info, older", {"model_id": "m", "max_input_length": 1000}, 1000),
    ("lm studio v0", {"id": "qwen2-vl-7b", "state": "not-loaded", "max_context_length": 32768}, 32768),
    (
        "lm studio v1",
        {
            "key": "qwen/qwen3-4b",
            "max_context_length": 32768,
            "loaded_instances": [{"id": "qwen/qwen3-4b", "config": {"context_length": 4096}}],
        },
        32768,
    ),
    ("llama.cpp trained only", {"id": "gemma", "meta": {"n_vocab": 262144, "n_ctx_train": 131072}}, 131072),
    ("llama.cpp runtime wins", {"id": "gemma", "meta": {"n_ctx_train": 131072, "n_ctx": 8192}}, 8192),
    ("llama.cpp /props", {"default_generation_settings": {"n_ctx": 4096}, "total_slots": 1}, 4096),
    (
        "ollama /api/show",
        {
            "parameters": 'stop                           "<|eot_id|>"',
            "model_info": {"general.architecture": "llama", "llama.context_length": 131072},
        },
        131072,
    ),
    (
        "ollama /api/show with num_ctx",
        {
            "parameters": 'num_ctx                        8192\nstop                           "<|eot_id|>"',
            "model_info": {"general.architecture": "llama", "llama.context_length": 131072},
        },
        8192,
    ),
    ("ollama /api/ps", {"name": "llama3:latest", "model": "llama3:latest", "context_length": 8192}, 8192),
    ("ollama /api/tags", {"name": "llama3:latest", "details": {"parameter_size": "8.0B"}}, None),
]


@pytest.mark.parametrize(
    ("entry", "expected"), [(e, w) for _, e, w in PROVIDER_ENTRIES], ids=[n for n, _, _ in PROVIDER_ENTRIES]
)
def test_context_window_from_listing_entry(entry: dict[str, Any], expected: int | None) -> None:
    assert context_window_from_listing_entry(entry) == expected


def test_listing_entry_never_reads_output_limits() -> None:
    entry = {"id": "m", "max_tokens": 64000, "outputTokenLimit": 8192, "max_completion_tokens": 4096}
    assert context_window_from_listing_entry(entry) is None


# --- whole listings --------------------------------------------------------------------


def test_openai_listing() -> None:
    body = {"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model", "owned_by": "openai"}]}
    assert parse_model_listing(body) == {"gpt-4o-mini": None}


def test_anthropic_listing() -> None:
    body = {
        "data": [
            {"type": "model", "id": "claude-opus-4-1", "max_input_tokens": 200000, "max_tokens": 32000},
            {"type": "model", "id": "claude-3-haiku", "max_input_tokens": 0, "max_tokens": 0},
        ],
        "first_id": "claude-opus-4-1",
        "last_id": "claude-3-haiku",
        "has_more": False,
    }
    assert parse_model_listing(body) == {"claude-opus-4-1": 200000, "claude-3-haiku": None}


def test_gemini_listing_strips_models_prefix() -> None:
    body = {
        "models": [
            {"name": "models/gemini-2.5-pro", "inputTokenLimit": 1048576, "outputTokenLimit": 65536},
            {"name": "models/embedding-001", "inputTokenLimit": 2048, "outputTokenLimit": 1},
        ],
        "nextPageToken": "abc",
    }
    assert parse_model_listing(body) == {"gemini-2.5-pro": 1048576, "embedding-001": 2048}


def test_vllm_listing() -> None:
    body = {
        "object": "list",
        "data": [
            {
                "id": "meta-llama/Llama-3.1-8B-Instruct",
                "object": "model",
                "owned_by": "vllm",
                "root": "meta-llama/Llama-3.1-8B-Instruct",
                "parent": None,
                "max_model_len": 131072,
                "permission": [{"id": "modelperm-1", "allow_sampling": True}],
            },
            {
                "id": "sql-lora",
                "object": "model",
                "root": "/adapters/sql",
                "parent": "meta-llama/Llama-3.1-8B-Instruct",
            },
        ],
    }
    assert parse_model_listing(body) == {"meta-llama/Llama-3.1-8B-Instruct": 131072, "sql-lora": None}


def test_openrouter_groq_mistral_listings() -> None:
    assert parse_model_listing(
        {"data": [{"id": "openai/gpt-4o", "name": "OpenAI: GPT-4o", "context_length": 128000}]}
    ) == {"openai/gpt-4o": 128000}
    assert parse_model_listing(
        {"object": "list", "data": [{"id": "llama-3.1-8b-instant", "context_window": 131072}]}
    ) == {"llama-3.1-8b-instant": 131072}
    assert parse_model_listing(
        {"object": "list", "data": [{"id": "codestral-latest", "max_context_length": 256000}]}
    ) == {"codestral-latest": 256000}


def test_bare_list_listing() -> None:
    # Together (and one Mistral docs example) answer with a bare array.
    body = [{"id": "a", "context_length": 8192}, {"id": "b"}, "junk", {"no_id": 1}]
    assert parse_model_listing(body) == {"a": 8192, "b": None}


def test_lm_studio_listings() -> None:
    v0 = {"object": "list", "data": [{"id": "qwen2-vl-7b", "type": "vlm", "max_context_length": 32768}]}
    v1 = {
        "models": [
            {"type": "llm", "key": "qwen/qwen3-4b", "max_context_length": 32768, "loaded_instances": []}
        ]
    }
    assert parse_model_listing(v0) == {"qwen2-vl-7b": 32768}
    assert parse_model_listing(v1) == {"qwen/qwen3-4b": 32768}


def test_ollama_listings() -> None:
    tags = {"models": [{"name": "llama3:latest", "model": "llama3:latest", "size": 4661224676}]}
    ps = {"models": [{"name": "llama3:latest", "model": "llama3:latest", "context_length": 8192}]}
    assert parse_model_listing(tags) == {"llama3:latest": None}
    assert parse_model_listing(ps) == {"llama3:latest": 8192}


def test_single_model_body() -> None:
    assert parse_model_listing({"id": "claude-x", "type": "model", "max_input_tokens": 200000}) == {
        "claude-x": 200000
    }


def test_duplicate_ids_keep_the_larger_known_window() -> None:
    body = {"data": [{"id": "m", "context_length": 4096}, {"id": "m"}, {"id": "m", "context_length": 8192}]}
    assert parse_model_listing(body) == {"m": 8192}


@pytest.mark.parametrize("body", [None, "x", 3, {}, {"data": "nope"}, {"object": "list"}])
def test_unusable_listing_bodies(body: Any) -> None:
    assert parse_model_listing(body) == {}


def test_model_id_of() -> None:
    assert model_id_of({"id": "a", "name": "models/b"}) == "a"
    assert model_id_of({"name": "models/b"}) == "b"
    assert model_id_of({"name": "models/"}) is None
    assert model_id_of({"key": "k"}) == "k"
    assert model_id_of({"id": ""}) is None

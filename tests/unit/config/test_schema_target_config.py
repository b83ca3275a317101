"""`providers.schema_target`: whose tool-schema rules a provider's tools are repaired for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.clock import ManualClock
from gateway.config import ConfigError, SchemaTarget, load_settings, settings_from_mapping
from gateway.upstream.provider import build_upstreams


def settings(**provider: Any) -> Any:
    return settings_from_mapping(
        {"providers": [{"name": "p", "base_url": "http://127.0.0.1:1/v1", **provider}]},
        source="t.toml",
        env={},
    )


@pytest.mark.parametrize(
    ("kind", "target"),
    [
        ("openai", SchemaTarget.OPENAI),
        ("openai-compatible", SchemaTarget.OPENAI_COMPATIBLE),
        ("anthropic", SchemaTarget.ANTHROPIC),
    ],
)
def test_absent_the_kind_decides(kind: str, target: SchemaTarget) -> None:
    provider = settings(kind=kind).providers[0]
    assert provider.schema_target is None
    assert provider.tool_schema_target is target


@pytest.mark.parametrize(
    ("kind", "target"),
    [
        ("openai-compatible", "gemini"),  # Gemini's /v1beta/openai
        ("openai", "gemini"),
        ("openai-compatible", "anthropic"),  # Anthropic's OpenAI SDK endpoint
        ("openai-compatible", "openai"),  # a proxy in front of OpenAI itself
        ("openai", "openai-compatible"),
        ("anthropic", "anthropic"),
    ],
)
def test_a_given_target_wins(kind: str, target: str) -> None:
    provider = settings(kind=kind, schema_target=target).providers[0]
    assert provider.tool_schema_target is SchemaTarget(target)


@pytest.mark.parametrize("target", ["openai", "openai-compatible", "gemini"])
def test_an_anthropic_provider_takes_only_anthropic(target: str) -> None:
    """The Messages API's `input_schema` is checked by Anthropic's rules whatever the target says."""
    with pytest.raises(ConfigError) as info:
        settings(kind="anthropic", schema_target=target)
    assert info.value.source == "t.toml"
    assert info.value.key == "providers[0].schema_target"
    assert info.value.reason == 'an anthropic provider takes only "anthropic" (or leave it out)'


@pytest.mark.parametrize("value", ["gemni", "openai-strict", "", 3])
def test_a_wrong_value_names_file_key_and_reason(tmp_path: Path, value: object) -> None:
    """`openai-strict` is a per-tool choice (`strict: true`), not a provider's target."""
    rendered = f'"{value}"' if isinstance(value, str) else str(value)
    path = tmp_path / "gw.toml"
    path.write_text(
        f'[[providers]]\nname = "p"\nkind = "openai-compatible"\nbase_url = "http://x"\nschema_target = {rendered}\n'
    )
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert info.value.source == str(path)
    assert info.value.key == "providers[0].schema_target"
    expected = "Expected `str | null`, got `int`" if value == 3 else f"Invalid enum value '{value}'"
    assert info.value.reason == expected
    assert str(info.value) == f"{path}: providers[0].schema_target: {expected}"


def test_the_upstream_carries_it() -> None:
    s = settings_from_mapping(
        {
            "providers": [
                {"name": "g", "kind": "openai-compatible", "base_url": "http://x", "schema_target": "gemini"},
                {"name": "v", "kind": "openai-compatible", "base_url": "http://x"},
            ]
        },
        env={},
    )
    upstreams = build_upstreams(s, ManualClock())
    assert upstreams["g"].schema_target is SchemaTarget.GEMINI
    assert upstreams["v"].schema_target is SchemaTarget.OPENAI_COMPATIBLE

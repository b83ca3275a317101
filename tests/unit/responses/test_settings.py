"""The ``[responses]`` settings: defaults like OpenAI's, and mistakes named by key."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.config import ConfigError, ResponsesSettings, settings_from_mapping


def test_defaults() -> None:
    settings = settings_from_mapping({}, env={})
    assert settings.responses == ResponsesSettings()
    assert settings.responses.ttl_seconds == 30 * 24 * 3600
    assert settings.responses.upstream_store is True
    assert settings.responses.max_chain_length == 10_000


@pytest.mark.parametrize("field", ["ttl_seconds", "max_chain_length", "anthropic_max_tokens"])
def test_non_positive_values_are_refused(field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_mapping({"responses": {field: 0}}, source="gw.toml", env={})
    assert str(caught.value) == f"gw.toml: responses.{field}: must be positive"


def test_unknown_keys_are_refused() -> None:
    data: dict[str, Any] = {"responses": {"ttl": 5}}
    with pytest.raises(ConfigError) as caught:
        settings_from_mapping(data, source="gw.toml", env={})
    assert caught.value.key == "responses.ttl"

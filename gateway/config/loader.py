"""Settings from TOML on disk or a mapping: ``${ENV}`` interpolation, then msgspec, then checks.

Every mistake is reported as :class:`ConfigError` naming the file, the key path and the
reason; the CLI turns it into exit status 2.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from gateway.config.checks import check_settings
from gateway.config.errors import ConfigError
from gateway.config.providers import Price
from gateway.config.settings import Settings

# `${NAME}` or `${NAME:-default}`; a variable that is unset and has no default is an error.
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_NAMED_FIELD = re.compile(r"Object (?:contains|missing) (unknown|required) field `([^`]*)`")


def load_settings(path: str | Path, *, env: Mapping[str, str] | None = None) -> Settings:
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(source, "", f"cannot read file: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, "", f"invalid TOML: {exc}") from None
    return settings_from_mapping(data, source=source, env=env)


def settings_from_mapping(
    data: Mapping[str, Any], *, source: str = "<settings>", env: Mapping[str, str] | None = None
) -> Settings:
    raw = _interpolate(dict(data), os.environ if env is None else env, source, "")
    raw["source"] = source
    prices = raw.get("prices")
    if isinstance(prices, dict):
        # msgspec names a mapping's entry `[...]`; check each price on its own to name the model.
        for name, price in prices.items():
            _convert(price, Price, source, f"prices.{_toml_key(name)}")
    settings: Settings = _convert(raw, Settings, source, "")
    check_settings(settings)
    return settings


def _interpolate(value: Any, env: Mapping[str, str], source: str, path: str) -> Any:
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise ConfigError(source, path, f"environment variable {name} is not set and has no default")

        return _VAR.sub(sub, value)
    if isinstance(value, dict):
        return {k: _interpolate(v, env, source, f"{path}.{k}" if path else k) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, env, source, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def _toml_key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_\-]+", name) else '"' + name.replace('"', '\\"') + '"'


def _key_path(msgspec_path: str) -> str:
    """`$.providers[0].kind` -> `providers[0].kind`."""
    return msgspec_path.removeprefix("$").removeprefix(".")


def _convert(raw: Any, kind: type[Any], source: str, prefix: str) -> Any:
    try:
        return msgspec.convert(raw, kind, str_keys=True)
    except msgspec.ValidationError as exc:
        message = str(exc)
        key = prefix
        if " - at `" in message:
            message, _, at = message.rpartition(" - at `")
            path = _key_path(at.rstrip("`"))
            key = f"{prefix}{'' if path.startswith('[') or not prefix else '.'}{path}" if path else prefix
        # An unknown or missing key is named in the path itself: `server.colour`, not `server`.
        named = _NAMED_FIELD.fullmatch(message)
        if named is not None:
            key = f"{key}.{named.group(2)}" if key else named.group(2)
            message = (
                "unknown setting (check its spelling and its section)"
                if named.group(1) == "unknown"
                else "required setting is missing"
            )
        raise ConfigError(source, key, message) from None

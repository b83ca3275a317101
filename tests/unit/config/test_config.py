"""Settings: TOML, ${ENV} interpolation, and errors that name the file, the key and the reason."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import msgspec
import pytest

from gateway.config import (
    ConfigError,
    ProviderKind,
    Settings,
    UpstreamApi,
    load_settings,
    settings_from_mapping,
    upstream_api,
)

ROOT = Path(__file__).resolve().parents[3]

MINIMAL = """
[[auth.keys]]
name = "k"
key = "${KEY:-sk-default-key}"

[[providers]]
name = "p"
kind = "openai"
base_url = "http://127.0.0.1:1/v1"
api_key = "${UPSTREAM_KEY}"

[[models]]
name = "m"
provider = "p"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gw.toml"
    path.write_text(text)
    return path


def test_example_config_is_valid() -> None:
    settings = load_settings(ROOT / "config.example.toml", env={})
    assert settings.redis.url is None  # embedded by default
    assert (settings.redis.max_connections, settings.redis.pool_timeout_seconds) == (64, 2.0)
    assert [p.name for p in settings.providers] == ["fake-openai", "fake-vllm", "fake-anthropic"]
    assert settings.auth.keys[0].key == "sk-gateway-dev-key"


# A commented-out setting in the example: `# key = value` or `# [table]` / `# [[array]]`.
_COMMENTED_SETTING = re.compile(r'^# ?(\[\[?[A-Za-z0-9_."\-]+\]\]?(\s|$)|[A-Za-z_][A-Za-z0-9_]* *=)')


def _example_with_comments_enabled() -> str:
    """config.example.toml with every commented-out setting and table switched on."""
    text = (ROOT / "config.example.toml").read_text()
    return "\n".join(
        line.removeprefix("#").removeprefix(" ") if _COMMENTED_SETTING.match(line) else line
        for line in text.splitlines()
    )


_SEQUENCE = (msgspec.inspect.ListType, msgspec.inspect.VarTupleType)


def _all_fields(info: Any, seen: set[type], out: set[tuple[str, str]]) -> None:
    """Every (Struct, field) reachable from a settings type."""
    if isinstance(info, msgspec.inspect.StructType):
        if info.cls in seen:
            return
        seen.add(info.cls)
        for f in info.fields:
            out.add((info.cls.__name__, f.encode_name))
            _all_fields(f.type, seen, out)
    elif isinstance(info, msgspec.inspect.UnionType):
        for member in info.types:
            _all_fields(member, seen, out)
    elif isinstance(info, _SEQUENCE):
        _all_fields(info.item_type, seen, out)
    elif isinstance(info, msgspec.inspect.DictType):
        _all_fields(info.value_type, seen, out)


def _fields_given(info: Any, value: Any, out: set[tuple[str, str]]) -> None:
    """Every (Struct, field) that a parsed TOML document sets."""
    if isinstance(info, msgspec.inspect.StructType) and isinstance(value, dict):
        for f in info.fields:
            if f.encode_name in value:
                out.add((info.cls.__name__, f.encode_name))
                _fields_given(f.type, value[f.encode_name], out)
    elif isinstance(info, msgspec.inspect.UnionType):
        for member in info.types:
            _fields_given(member, value, out)
    elif isinstance(info, _SEQUENCE) and isinstance(value, list):
        for item in value:
            _fields_given(info.item_type, item, out)
    elif isinstance(info, msgspec.inspect.DictType) and isinstance(value, dict):
        for item in value.values():
            _fields_given(info.value_type, item, out)


def test_example_config_documents_every_setting(tmp_path: Path) -> None:
    """Every settings field appears in config.example.toml (live or commented out, in its own
    section), and every commented-out setting there is valid once switched on."""
    enabled = _example_with_comments_enabled()
    path = tmp_path / "all.toml"
    path.write_text(enabled)
    # Misspelt or misplaced settings in the comments would be refused here.
    settings = load_settings(path, env={"REDIS_URL": "redis://127.0.0.1:6379/0"})
    assert settings.teams and settings.chats.mcp_servers and settings.prices  # the comments were switched on
    info = msgspec.inspect.type_info(Settings)
    expected: set[tuple[str, str]] = set()
    _all_fields(info, set(), expected)
    expected.discard(("Settings", "source"))  # set by the loader, not a setting
    given: set[tuple[str, str]] = set()
    _fields_given(info, tomllib.loads(enabled), given)
    assert sorted(expected - given) == []


def test_example_config_switch_on_sees_a_commented_setting() -> None:
    """The check above can fail: a setting only in prose is not switched on."""
    assert _COMMENTED_SETTING.match("# max_steps = 1200")
    assert _COMMENTED_SETTING.match('# [prices."gpt-4o-mini"]   # USD')
    assert _COMMENTED_SETTING.match("# [[chats.mcp_servers]]")
    assert not _COMMENTED_SETTING.match("# Give the key itself, or only its hash: hash = ...")
    assert not _COMMENTED_SETTING.match("# No `url`: the gateway starts a private redis-server")
    given: set[tuple[str, str]] = set()
    _fields_given(msgspec.inspect.type_info(Settings), {"chats": {"max_steps": 3}}, given)
    assert given == {("Settings", "chats"), ("ChatsSettings", "max_steps")}


def test_interpolation_with_and_without_defaults(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, MINIMAL), env={"UPSTREAM_KEY": "sk-up"})
    assert settings.providers[0].api_key == "sk-up"
    assert settings.auth.keys[0].key == "sk-default-key"
    settings = load_settings(write(tmp_path, MINIMAL), env={"UPSTREAM_KEY": "x", "KEY": "sk-from-env"})
    assert settings.auth.keys[0].key == "sk-from-env"


def test_missing_variable_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, MINIMAL), env={})
    assert info.value.key == "providers[0].api_key"
    assert "UPSTREAM_KEY is not set" in info.value.reason
    assert str(info.value).startswith(str(tmp_path / "gw.toml") + ": providers[0].api_key: ")


@pytest.mark.parametrize(
    ("patch", "key", "reason"),
    [
        ({"server": {"port": "80"}}, "server.port", "Expected `int`, got `str`"),
        ({"server": {"port": 70000}}, "server.port", "between 0 and 65535"),
        ({"server": {"colour": "red"}}, "server.colour", "unknown setting"),
        ({"colour": "red"}, "colour", "unknown setting"),
        ({"models": [{"name": "m"}]}, "models[0].provider", "required setting is missing"),
        ({"redis": {"url": "localhost:6379"}}, "redis.url", "redis://"),
        ({"redis": {"max_connections": 0}}, "redis.max_connections", "at least 1"),
        ({"redis": {"pool_timeout_seconds": 0}}, "redis.pool_timeout_seconds", "positive"),
        ({"redis": {"pool_timeout_seconds": "soon"}}, "redis.pool_timeout_seconds", "Expected `float`"),
        ({"server": {"models_refresh_seconds": 0}}, "server.models_refresh_seconds", "positive"),
        ({"server": {"websocket_compression": "yes"}}, "server.websocket_compression", "Expected `bool`"),
        (
            {"auth": {"keys": [{"name": "a", "key": "sk-12345678", "limits": {"rpm": 0}}]}},
            "auth.keys[0].limits.rpm",
            ">= 1",
        ),
        (
            {"teams": [{"id": "t", "limits": {"max_concurrency": -2}}]},
            "teams[0].limits.max_concurrency",
            ">= 1",
        ),
        (
            {"teams": [{"id": "t", "budgets": [{"window": "day", "limit_usd": -1}]}]},
            "teams[0].budgets[0].limit_usd",
            ">= 0",
        ),
        (
            {
                "auth": {
                    "keys": [
                        {"name": "a", "key": "sk-12345678", "budgets": [{"window": "year", "limit_usd": 1}]}
                    ]
                }
            },
            "auth.keys[0].budgets[0].window",
            "Invalid enum value 'year'",
        ),
        (
            {"auth": {"keys": [{"name": "a", "key": "sk-12345678", "team": "t"}]}},
            "auth.keys[0].team",
            "unknown team",
        ),
        ({"prices": {"m": {"input": -0.1, "output": 1}}}, "prices.m.input", ">= 0"),
        ({"policy": {"on_store_error": "maybe"}}, "policy.on_store_error", "Invalid enum value 'maybe'"),
        ({"policy": {"settle_batch_max": 0}}, "policy.settle_batch_max", "at least 1"),
        ({"policy": {"lease_ttl_seconds": 0}}, "policy.lease_ttl_seconds", "positive"),
        ({"policy": {"cache_ttl_seconds": -1}}, "policy.cache_ttl_seconds", "negative"),
        ({"telemetry": {"otel_sample_ratio": 2}}, "telemetry.otel_sample_ratio", "between 0 and 1"),
        ({"admin": {"keys": [{"name": "ops", "key": "short"}]}}, "admin.keys[0].key", "at least 16"),
        (
            {"admin": {"keys": [{"name": "a", "key": "x" * 16}, {"name": "a", "key": "y" * 16}]}},
            "admin.keys[1].name",
            "unique",
        ),
        (
            {
                "auth": {"keys": [{"name": "k", "key": "z" * 20}]},
                "admin": {"keys": [{"name": "ops", "key": "z" * 20}]},
            },
            "admin.keys[0]",
            "also an inference key",
        ),
        (
            {
                "providers": [
                    {"name": "p", "kind": "openai", "base_url": "http://x", "retry": {"max_attempts": 0}}
                ]
            },
            "providers[0].retry.max_attempts",
            "at least 1",
        ),
        (
            {"providers": [{"name": "p", "kind": "openai", "base_url": "http://x", "timeouts": {"idle": 0}}]},
            "providers[0].timeouts.idle",
            "positive",
        ),
        (
            {"providers": [{"name": "p", "kind": "openai", "base_url": "http://x", "max_connections": 0}]},
            "providers[0].max_connections",
            "at least 1",
        ),
        ({"teams": [{"id": "a b"}]}, "teams[0].id", "letters, digits"),
        (
            {"providers": [{"name": "p", "kind": "gemini", "base_url": "http://x"}]},
            "providers[0].kind",
            "Invalid enum",
        ),
        (
            {"providers": [{"name": "p", "kind": "openai", "base_url": "ftp://x"}]},
            "providers[0].base_url",
            "http://",
        ),
        ({"models": [{"name": "m", "provider": "nope"}]}, "models[0].provider", "unknown provider 'nope'"),
        (
            {"models": [{"name": "m", "provider": "p", "fallbacks": ["z"]}]},
            "models[0].fallbacks[0]",
            "unknown model",
        ),
        ({"models": [{"name": "m", "provider": "p", "api": "anthropic"}]}, "models[0].api", "does not speak"),
        ({"auth": {"keys": [{"name": "a", "key": "short"}]}}, "auth.keys[0].key", "at least 8"),
        ({"auth": {"keys": [{"name": "a"}]}}, "auth.keys[0]", "exactly one of"),
        ({"auth": {"keys": [{"name": "a", "hash": "md5:00"}]}}, "auth.keys[0].hash", "sha256:"),
    ],
)
def test_mistakes_name_key_and_reason(patch: dict[str, object], key: str, reason: str) -> None:
    data: dict[str, object] = {
        "providers": [{"name": "p", "kind": "openai", "base_url": "http://127.0.0.1:1/v1"}],
        "models": [{"name": "m", "provider": "p"}],
    }
    data.update(patch)
    with pytest.raises(ConfigError) as info:
        settings_from_mapping(data, source="t.toml", env={})
    assert info.value.key == key
    assert reason in info.value.reason
    assert info.value.source == "t.toml"


def test_hashed_keys_and_default_apis() -> None:
    digest = hashlib.sha256(b"sk-secret-value").hexdigest()
    settings = settings_from_mapping(
        {
            "auth": {"keys": [{"name": "h", "hash": f"sha256:{digest}"}]},
            "providers": [
                {"name": "a", "kind": "anthropic", "base_url": "https://api.anthropic.com/v1"},
                {"name": "o", "kind": "openai", "base_url": "https://api.openai.com/v1"},
            ],
            "models": [{"name": "c", "provider": "a"}, {"name": "g", "provider": "o", "api": "responses"}],
        },
        env={},
    )
    assert settings.auth.keys[0].digest() == hashlib.sha256(b"sk-secret-value").digest()
    assert settings.providers[0].kind is ProviderKind.ANTHROPIC
    assert upstream_api(settings.models[0], settings.providers[0]) is UpstreamApi.ANTHROPIC
    assert upstream_api(settings.models[1], settings.providers[1]) is UpstreamApi.RESPONSES


def test_check_config_command_exit_status(tmp_path: Path) -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "gateway", "check-config", str(ROOT / "config.example.toml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert "ok (3 providers, 3 model deployments" in ok.stdout
    broken = write(tmp_path, MINIMAL.replace('provider = "p"', 'provider = "q"'))
    bad = subprocess.run(
        [sys.executable, "-m", "gateway", "check-config", str(broken)],
        capture_output=True,
        text=True,
        check=False,
        env={"UPSTREAM_KEY": "x", "PATH": "/usr/bin:/bin"},
    )
    assert bad.returncode == 2
    assert bad.stderr.strip() == f"config error: {broken}: models[0].provider: unknown provider 'q'"
    assert bad.stdout == ""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[server\nport = 1\n", "invalid TOML: "),
        ("[server]\nport = 'x'\n", "server.port: Expected `int`, got `str`"),
        ("[server]\nprot = 1\n", "server.prot: unknown setting"),
        ("[policy]\non_store_error = 'open-ish'\n", "policy.on_store_error: Invalid enum value 'open-ish'"),
        (
            "[[auth.keys]]\nname = 'a'\nkey = 'sk-12345678'\nlimits = { rpm = 0 }\n",
            "auth.keys[0].limits.rpm: Expected `int` >= 1",
        ),
    ],
)
def test_check_config_reports_file_key_and_reason_with_status_2(
    tmp_path: Path, text: str, expected: str
) -> None:
    broken = write(tmp_path, text)
    bad = subprocess.run(
        [sys.executable, "-m", "gateway", "check-config", str(broken)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2, bad.stdout
    [line] = bad.stderr.strip().splitlines()  # one line, no traceback
    assert line.startswith(f"config error: {broken}: {expected}"), line


def test_serve_with_a_broken_or_missing_config_exits_2(tmp_path: Path) -> None:
    broken = write(tmp_path, "[server]\nport = 70000\n")
    for path, expected in (
        (broken, f"config error: {broken}: server.port: must be between 0 and 65535"),
        (tmp_path / "absent.toml", f"config error: {tmp_path / 'absent.toml'}: cannot read file: "),
    ):
        run = subprocess.run(
            [sys.executable, "-m", "gateway", "serve", "--config", str(path)],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert run.returncode == 2
        assert run.stderr.strip().splitlines()[-1].startswith(expected), run.stderr

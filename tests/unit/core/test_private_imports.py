"""A package's private modules (``_name.py``) are its own: no module outside the package imports
them, so a package can reshape its insides behind its public names."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("gateway", "fake_providers")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def _private_owner(imported: str) -> str | None:
    """The package that owns a private module named in ``imported``, if any."""
    parts = imported.split(".")
    for index, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__") and index > 0:
            return ".".join(parts[:index])
    return None


def _violations() -> list[str]:
    out: list[str] = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            importer = _module_name(path)
            for line, imported in _imports(path):
                owner = _private_owner(imported)
                if owner is None or not owner.startswith(PACKAGES):
                    continue
                if importer != owner and not importer.startswith(owner + "."):
                    out.append(f"{path.relative_to(ROOT)}:{line} imports {imported}")
    return out


def test_no_module_imports_another_packages_private_modules() -> None:
    assert _violations() == []


@pytest.mark.parametrize(
    ("imported", "owner"),
    [
        ("gateway.errors._model", "gateway.errors"),
        ("gateway.errors._model.ErrorKind", "gateway.errors"),
        ("gateway.errors.ClassifiedError", None),
        ("gateway.schema_fix._strict", "gateway.schema_fix"),
        ("gateway.__main__", None),
    ],
)
def test_private_owner(imported: str, owner: str | None) -> None:
    assert _private_owner(imported) == owner

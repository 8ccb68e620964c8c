"""Imports point down the layers only (STYLE rule 1), checked on the AST of every module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import containai

PACKAGE = Path(containai.__file__).parent
ASYNC_LIBS = {"anyio", "asyncio", "trio", "aiodocker", "asyncssh", "sniffio"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def _modules(sub: str) -> list[Path]:
    return sorted((PACKAGE / sub).rglob("*.py"))


def _top(name: str) -> str:
    return name.split(".")[0]


def _layer_violations(
    sub: str, forbidden: set[str], forbidden_prefixes: tuple[str, ...]
) -> list[str]:
    bad = []
    for path in _modules(sub):
        for name in _imports(path):
            if _top(name) in forbidden or name.startswith(forbidden_prefixes):
                bad.append(f"{path.relative_to(PACKAGE)} imports {name}")
    return bad


def test_fsm_imports_only_stdlib_msgspec_transitions() -> None:
    bad = _layer_violations(
        "fsm",
        ASYNC_LIBS | {"typer", "rich", "tomlkit"},
        ("containai.model", "containai.orchestrator", "containai.cli"),
    )
    assert bad == []


def test_model_is_synchronous_and_below_the_orchestrator() -> None:
    bad = _layer_violations(
        "model", ASYNC_LIBS | {"typer", "rich"}, ("containai.orchestrator", "containai.cli")
    )
    assert bad == []


def test_orchestrator_core_uses_anyio_only() -> None:
    bad = []
    for path in _modules("orchestrator"):
        rel = path.relative_to(PACKAGE / "orchestrator")
        if rel.parts[0] == "adapters":
            continue
        for name in _imports(path):
            if _top(name) in {"asyncio", "trio", "aiodocker", "asyncssh", "typer", "rich"}:
                bad.append(f"orchestrator/{rel} imports {name}")
            if name.startswith("containai.cli"):
                bad.append(f"orchestrator/{rel} imports {name}")
    assert bad == []


def test_adapters_are_the_only_importers_of_aiodocker_and_asyncssh() -> None:
    bad = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if rel.parts[:2] == ("orchestrator", "adapters"):
            continue
        for name in _imports(path):
            if _top(name) in {"aiodocker", "asyncssh"}:
                bad.append(f"{rel} imports {name}")
    assert bad == []


@pytest.mark.parametrize("sub", ["fsm", "model", "orchestrator"])
def test_lower_layers_never_import_the_cli(sub: str) -> None:
    assert _layer_violations(sub, set(), ("containai.cli",)) == []

"""The architecture as a test: imports go one way, and imports sit at the top of modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYER = {"core": 0, "cities": 1, "matching": 1, "sim": 2, "reports": 3, "harness": 4, "cli": 5}
"""Each package may import only packages of a lower layer (and itself)."""
SIBLINGS_APART = {("matching", "cities"), ("cities", "matching")}
"""Same-layer packages that must not import each other: the matcher contract stands alone."""

DEFERRED = "deferred:"
"""A function-level import must say why on its line or the line above (``# deferred: ...``)."""


def _modules() -> list[Path]:
    paths = [ROOT / "cli.py"]
    for pkg in LAYER:
        if pkg != "cli":
            paths += sorted((ROOT / pkg).rglob("*.py"))
    return [p for p in paths if not p.name.endswith(("_pb2.py", "_pb2_grpc.py"))]


def _package(path: Path) -> str:
    rel = path.relative_to(ROOT)
    return "cli" if rel.name == "cli.py" and len(rel.parts) == 1 else rel.parts[0]


def _imported(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.ImportFrom):
        return [] if node.level else [(node.module or "").split(".")[0]]
    return [alias.name.split(".")[0] for alias in node.names]


def test_packages_import_downward_only() -> None:
    """No package imports a package of its own layer or above (besides itself)."""
    wrong = []
    for path in _modules():
        pkg = _package(path)
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for target in _imported(node):
                if target not in LAYER or target == pkg:
                    continue
                if LAYER[target] >= LAYER[pkg] or (pkg, target) in SIBLINGS_APART:
                    wrong.append(f"{path.relative_to(ROOT)}:{node.lineno}: {pkg} -> {target}")
    assert wrong == []


def test_function_level_imports_say_why() -> None:
    """An import inside a function defers a heavy dependency on purpose and says so."""
    silent = []
    for path in _modules():
        lines = path.read_text().splitlines()
        for fn in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    here = lines[node.lineno - 1] + lines[node.lineno - 2]
                    if DEFERRED not in here:
                        silent.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert sorted(set(silent)) == []


@pytest.mark.parametrize("pkg", [p for p in LAYER if p != "cli"])
def test_every_package_has_a_test_folder(pkg: str) -> None:
    """tests/ mirrors the packages."""
    assert (ROOT / "tests" / pkg).is_dir()

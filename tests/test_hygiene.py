"""Source rules for every package: no global random state, no wall clock steering a run."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("sim", "matching", "cities", "reports")
ALLOWED_NP_RANDOM = {"default_rng", "Generator", "SeedSequence", "PCG64", "BitGenerator"}


def _sources() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")) + [ROOT / "cli.py"]


def test_no_global_random_state():
    """No `random` module and no np.random.* other than Generator construction anywhere."""
    bad = []
    for path in _sources():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names]
                module = getattr(node, "module", None)
                if "random" in names or module == "random":
                    bad.append(f"{path.name}:{node.lineno} imports random")
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Attribute)
                and node.value.attr == "random"
                and node.attr not in ALLOWED_NP_RANDOM
            ):
                bad.append(f"{path.name}:{node.lineno} uses np.random.{node.attr}")
    assert not bad, bad
    assert len(_sources()) >= 40  # the scan did look at the packages


def test_engine_never_reads_the_wall_clock_to_decide() -> None:
    """In the engine (sim/) wall-clock time is only measured (perf_counter around the matcher
    in sim/dispatcher.py), never read through time.time/datetime.now."""
    texts = {p.name: p.read_text() for p in sorted((ROOT / "sim").glob("*.py"))}
    assert not any("time.time(" in t or "datetime.now(" in t for t in texts.values())
    counts = {name: t.count("time.perf_counter()") for name, t in texts.items()}
    assert {n: c for n, c in counts.items() if c} == {"dispatcher.py": 2}  # matcher timing


def test_every_test_says_what_it_checks() -> None:
    """Each test function has a one-line docstring (the suite reads as a specification)."""
    silent = []
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                if not ast.get_docstring(node):
                    silent.append(f"{path.name}:{node.name}")
    assert silent == []

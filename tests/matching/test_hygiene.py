"""Source rules for matching/: no global random state."""

from __future__ import annotations

import ast
from pathlib import Path

import matching

ALLOWED_NP_RANDOM = {"default_rng", "Generator", "SeedSequence", "PCG64", "BitGenerator"}


def _sources() -> list[Path]:
    return sorted(Path(matching.__file__).parent.rglob("*.py"))


def test_no_global_random_state():
    """No `random` module and no np.random.* other than Generator construction in matching/."""
    bad = []
    for path in _sources():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names]
                module = getattr(node, "module", None)
                if "random" in names or module == "random":
                    bad.append(f"{path.name}:{node.lineno} imports random")
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
                    and node.value.attr == "random" and node.attr not in ALLOWED_NP_RANDOM):
                bad.append(f"{path.name}:{node.lineno} uses np.random.{node.attr}")
    assert not bad, bad
    assert len(_sources()) >= 8  # the scan did look at the package

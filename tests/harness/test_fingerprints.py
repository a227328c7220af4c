"""Behaviour fingerprints: refactors keep every byte of what reference runs write.

``fingerprints.json`` pins the sha256 of ``events.parquet``, ``metrics.json`` and
``surge.parquet`` of eight reference runs. Change it only in a commit that says which
behaviour changed and why (regenerate with ``python -m tests.harness.test_fingerprints``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from harness.run import run_scenario
from harness.scenario import load_scenario
from tests.shared import SHARED_DATA

ROOT = Path(__file__).resolve().parents[2]
PINNED = Path(__file__).with_name("fingerprints.json")
FILES = ("events.parquet", "metrics.json", "surge.parquet")
ONE_HOUR = {"time.duration_h": 1}
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "default": ("scenarios/default.toml", ONE_HOUR),
    "grid_small": ("scenarios/grid_small.toml", {}),
    "wild_goose_chase": ("scenarios/wild_goose_chase.toml", {}),
    "wild_goose_chase_surge": ("scenarios/wild_goose_chase_surge.toml", {}),
    "wild_goose_chase_assignment": ("scenarios/wild_goose_chase_assignment.toml", {}),
    "faults": (
        "scenarios/default.toml",
        {
            **ONE_HOUR,
            "faults.matcher_mtbf_h": 0.3,
            "faults.driver_crash_per_h": 0.5,
            "faults.matcher_outages": [{"start": "07:20", "minutes": 5}],
        },
    ),
    "sharded": ("scenarios/default.toml", {**ONE_HOUR, "dispatch.shards": 4}),
    "chicago_replay": ("scenarios/chicago_replay.toml", {}),
}
NEEDS_SHARED = {"chicago_replay"}


def fingerprint(name: str, out: Path, cache_dir: Path | None = None) -> dict[str, str]:
    """sha256 of each pinned file a fresh run of case ``name`` writes."""
    path, overrides = CASES[name]
    scenario_path = ROOT / path
    scenario = load_scenario(scenario_path, overrides=overrides)
    result = run_scenario(
        scenario,
        source=str(scenario_path),
        base_dir=scenario_path.parent,
        out=out,
        cache_dir=cache_dir,
    )
    return {
        f: hashlib.sha256((result.run_dir / f).read_bytes()).hexdigest()
        for f in FILES
        if (result.run_dir / f).exists()
    }


@pytest.mark.parametrize("name", sorted(CASES))
def test_run_outputs_match_pinned_fingerprints(name: str, tmp_path: Path) -> None:
    """A reference run writes byte-identical events, metrics and surge tables."""
    if name in NEEDS_SHARED and not SHARED_DATA.is_dir():
        pytest.skip(f"real data not available: {SHARED_DATA} does not exist")
    pinned = json.loads(PINNED.read_text())[name]
    assert fingerprint(name, tmp_path) == pinned


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps({n: fingerprint(n, Path(tmp)) for n in CASES}, indent=1, sort_keys=True))

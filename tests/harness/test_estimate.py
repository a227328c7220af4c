"""Resource estimates: figures that bound real runs, and refusals that name the field."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from core.errors import InputError
from harness import estimate as est_mod
from harness.estimate import estimate
from harness.run import run_scenario, validate_scenario
from tests.scenarios import run, small_scenario


def test_estimate_bounds_a_real_run(tmp_path: Path, cache_dir: Path) -> None:
    """The estimated riders match the drawn ones within 20%, and the estimated events bound
    the logged ones from above by at most 10x (repositioning and declines included)."""
    scenario = small_scenario(
        drivers={"reposition": "demand", "accept": "logit"},
        riders={"patience_s": 120},
    )
    result = run(scenario, tmp_path, cache_dir)
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    e = estimate(scenario)
    riders = manifest["counts"]["riders"]
    assert 0.8 * e.riders <= riders <= 1.2 * e.riders
    assert e.drivers == manifest["counts"]["drivers"]
    events = result.perf["events"]
    assert events <= e.events <= 10 * events
    assert e.disk_bytes >= (result.run_dir / "events.parquet").stat().st_size


HUGE: dict[str, tuple[dict[str, Any], str]] = {
    "requests": ({"demand": {"requests_per_h": 1e12}}, "demand.requests_per_h"),
    "multiplier": ({"demand": {"multiplier": 1e9}}, "demand.multiplier"),
    "fleet": ({"fleet": {"size": 2_000_000_000, "shifts": []}}, "fleet.size"),
    "duration": ({"time": {"start": "08:00", "duration_h": 1e9}}, "time.duration_h"),
    "crashes": ({"faults": {"driver_crash_per_h": 1e15}}, "faults.driver_crash_per_h"),
    "mtbf": (
        {"faults": {"matcher_mtbf_h": 1e-9, "matcher_mttr_min": 1e-9}},
        "faults.matcher_mtbf_h",
    ),
}


@pytest.mark.parametrize("case", sorted(HUGE))
def test_run_and_validate_refuse_what_cannot_fit(tmp_path: Path, case: str) -> None:
    """A scenario needing more memory than the machine has is refused by validate and by run
    before anything is built, naming the field and the estimate; nothing is written."""
    overrides, field = HUGE[case]
    scenario = small_scenario(**overrides)
    with pytest.raises(InputError) as err:
        validate_scenario(scenario, source="s.toml", base_dir=tmp_path)
    assert err.value.field == field, str(err.value)
    assert "memory" in str(err.value) and "available" in str(err.value)
    out = tmp_path / "runs"
    with pytest.raises(InputError) as err:
        run_scenario(scenario, source="s.toml", base_dir=tmp_path, out=out)
    assert err.value.field == field
    assert not out.exists()


def test_run_refuses_an_event_log_the_disk_cannot_hold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With (simulated) 1 MB free under --out, a run whose log needs more is refused with the
    disk figure named, before it starts."""
    real = shutil.disk_usage

    def tiny(path: Any) -> Any:
        usage = real(path)
        return type(usage)(usage.total, usage.total - 1_000_000, 1_000_000)

    monkeypatch.setattr(est_mod.shutil, "disk_usage", tiny)
    scenario = small_scenario(demand={"requests_per_h": 40_000})
    with pytest.raises(InputError, match="disk") as err:
        run_scenario(scenario, source="s.toml", base_dir=tmp_path, out=tmp_path / "runs")
    assert err.value.field == "demand.requests_per_h"
    assert not (tmp_path / "runs").exists()


def test_figures_read_as_sizes() -> None:
    """Byte figures print in the right unit (635 TB is not 0.62 TB)."""
    assert est_mod._bytes(635 * 1024**4) == "635 TB"
    assert est_mod._bytes(1.5 * 1024**3) == "1.5 GB"
    assert est_mod._bytes(512) == "512 B"

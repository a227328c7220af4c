"""Capacity planning: the load x shard grid and its recommendation rule."""

from __future__ import annotations

from pathlib import Path

from harness.capacity import plan_capacity

ROOT = Path(__file__).resolve().parents[2]
GRID = str(ROOT / "scenarios" / "grid_small.toml")


def test_capacity_plan_grid_and_recommendations(tmp_path: Path) -> None:
    """Every load x shard pair is measured; a generous budget picks the fewest shards, an
    impossible one the most (flagged as not fitting); files are written."""
    plan = plan_capacity(GRID, [1, 2], [1.0, 2.0], tmp_path, budget_fraction=1.0)
    assert len(plan.table) == 4 and set(plan.table.shards) == {1, 2}
    assert (plan.table.max_requests_per_call > 0).all()
    assert plan.recommendations.recommended_shards.tolist() == [1, 1]
    strict = plan_capacity(GRID, [1, 2], [1.0, 2.0], tmp_path, budget_fraction=1e-9)
    assert strict.recommendations.recommended_shards.tolist() == [2, 2]
    assert not strict.recommendations.fits_budget.any()
    for name in ("capacity.md", "capacity.csv", "capacity_recommendations.csv"):
        assert (tmp_path / name).is_file()

"""The batch capture/replay tool: bad flags, the skip without data, and a saved batch that
loads back as the same request."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bench import bench_batches
from matching.candidates import candidate_pairs
from matching.checks import random_instance


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["capture", "x", "--every", "0"], "--every"),
        (["capture", "x", "--hours", "25"], "--hours"),
        (["capture", "x", "--min-requests", "two"], "--min-requests"),
        (["replay", "x", "--repeats", "-1"], "--repeats"),
    ],
)
def test_bad_flags_exit_2(argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]):
    """A flag outside its range is a usage error naming the flag: exit 2."""
    with pytest.raises(SystemExit) as e:
        bench_batches.main(argv)
    assert e.value.code == 2
    assert needle in capsys.readouterr().err


def test_replay_of_an_empty_folder_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """Replaying a folder without captured batches says so in one line: exit 2."""
    with pytest.raises(SystemExit) as e:
        bench_batches.main(["replay", str(tmp_path)])
    assert e.value.code == 2
    assert "no captured batches" in capsys.readouterr().err


def test_skips_without_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """Without the Milan extract the tool skips (exit 0) and its last line is JSON."""
    assert bench_batches.main(["capture", str(tmp_path / "out"), "--data", str(tmp_path)]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["benchmark"] == "batches" and "not found" in figures["skipped"]


class _Scaled:
    """A travel-time function times a factor, as the engine hands it to the matcher."""

    def __init__(self, tt, factor: float) -> None:
        self.tt, self.factor = tt, factor

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return self.tt(a, b) * self.factor


@pytest.mark.parametrize("factor", [1.0, 1.37])
def test_saved_batch_loads_as_the_same_request(tmp_path: Path, factor: float):
    """Columns, scalars and ETAs (the congestion factor included) survive the round trip, so
    candidate search on the loaded batch returns exactly the original's pairs."""
    base = random_instance(4, 30, 80, "graph", max_pickup_eta_s=300.0)
    free_flow = base.travel_time
    request = replace(base, travel_time=_Scaled(free_flow, factor) if factor != 1 else free_flow)
    bench_batches.save_batch(tmp_path / "b1.npz", request)
    loaded = bench_batches.load_batch(tmp_path / "b1.npz", free_flow, None)
    for c in bench_batches.REQUEST_COLUMNS:
        assert np.array_equal(getattr(loaded.requests, c), getattr(request.requests, c))
    for c in bench_batches.DRIVER_COLUMNS:
        assert np.array_equal(getattr(loaded.drivers, c), getattr(request.drivers, c))
    assert (loaded.decision_time, loaded.seed, loaded.batch_id) == (
        request.decision_time,
        request.seed,
        request.batch_id,
    )
    want, got = candidate_pairs(request, 5), candidate_pairs(loaded, 5)
    for name in ("request_row", "driver_row", "pickup_eta_s"):
        assert np.array_equal(getattr(got, name), getattr(want, name))

"""Sweep curves: each KPI against the varied key, one line per scenario (e.g. the wild goose
chase: completed trips per hour and pickup wait as demand rises, with and without surge)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

CURVES = (
    ("completed_per_h", "completed trips per hour"),
    ("pickup_wait_mean_s", "mean pickup wait (s)"),
    ("utilisation", "driver utilisation"),
    ("requests", "requests"),
)


def sweep_figure(table: pd.DataFrame, x: str) -> Figure:
    """A 2x2 panel of KPI curves against ``x``; seeds of a point are averaged."""
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), constrained_layout=True)
    mean = table.groupby(["scenario", x], sort=True)[[c for c, _ in CURVES]].mean().reset_index()
    for ax, (col, label) in zip(axes.ravel(), CURVES, strict=True):
        for name, g in mean.groupby("scenario", sort=True):
            ax.plot(g[x], g[col], marker="o", label=name)
        ax.set_xlabel(x)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    return fig


def write_sweep_figures(table: pd.DataFrame, out: Path, x: str) -> list[Path]:
    """Write the curves as ``sweep.png`` under ``out``."""
    if x not in table.columns:
        raise ValueError(f"--plot {x}: not a varied key of this sweep ({', '.join(table.columns)})")
    fig = sweep_figure(table, x)
    path = out / "sweep.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]

"""Sweep curves: each KPI against the varied key, one line per scenario (e.g. the wild goose
chase: completed trips per hour and pickup wait as demand rises, with and without surge)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from reports.figures._style import compose, png_bytes, style_axes

CURVES = (
    ("completed_per_h", "completed trips per hour"),
    ("pickup_wait_mean_s", "mean pickup wait (s)"),
    ("utilisation", "driver utilisation"),
    ("requests", "requests"),
)


def draw_sweep_curve(ax: Axes, table: pd.DataFrame, x: str, column: str, label: str) -> None:
    """One KPI against ``x``, one line per scenario; seeds of a point are averaged."""
    mean = table.groupby(["scenario", x], sort=True)[column].mean().reset_index()
    for name, g in mean.groupby("scenario", sort=True):
        ax.plot(g[x], g[column], marker="o", label=name)
    style_axes(ax)
    ax.set_xlabel(x)
    ax.set_ylabel(label)


def sweep_figure(table: pd.DataFrame, x: str) -> Figure:
    """A 2x2 panel of KPI curves against ``x`` (legend on the first)."""
    panels = [
        (lambda ax, c=c, lab=lab: draw_sweep_curve(ax, table, x, c, lab)) for c, lab in CURVES
    ]
    fig = compose(panels, 10.0, 7.0, rows=2)
    fig.axes[0].legend(fontsize=8, frameon=False)
    return fig


def write_sweep_figures(table: pd.DataFrame, out: Path, x: str) -> list[Path]:
    """Write the curves as ``sweep.png`` under ``out``."""
    if x not in table.columns:
        raise ValueError(f"--plot {x}: not a varied key of this sweep ({', '.join(table.columns)})")
    path = out / "sweep.png"
    path.write_bytes(png_bytes(sweep_figure(table, x)))
    return [path]

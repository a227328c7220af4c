"""Driver income per online hour: its distribution, and the Lorenz curve of inequality."""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes

from reports.figures._style import GREEN, GREY, bars, empty_note, style_axes
from reports.market import income_basis, income_per_online_hour, lorenz
from reports.run import RunData
from reports.text import income_unit


def income_rates(run: RunData) -> np.ndarray:
    """Income per online hour of each driver online long enough to count."""
    return income_per_online_hour(run.drivers, income_basis(run.columns)).to_numpy()


def draw_income(ax: Axes, run: RunData) -> None:
    """Histogram of driver income per online hour (in the scenario's currency)."""
    rate = income_rates(run)
    style_axes(ax)
    ax.set_title("Driver income per online hour", loc="left")
    ax.set_xlabel(income_unit(run.metrics))
    ax.set_ylabel("drivers")
    if rate.size == 0:
        empty_note(ax, "no driver online long enough")
        return
    bars(ax, rate, 30, GREEN)


def draw_lorenz(ax: Axes, run: RunData) -> None:
    """The Lorenz curve of income per online hour, with the Gini coefficient."""
    rate = income_rates(run)
    style_axes(ax)
    ax.set_title("Lorenz curve", loc="left")
    if rate.size == 0:
        empty_note(ax, "no driver online long enough")
        return
    pop, share = lorenz(rate)
    ax.plot([0, 1], [0, 1], color=GREY, linestyle="--", linewidth=1, label="perfect equality")
    ax.plot(pop, share, color=GREEN, label="drivers")
    ax.fill_between(pop, share, pop, color=GREEN, alpha=0.15)
    g = run.metrics.get("fairness", {}).get("gini")
    if g is not None:
        ax.text(0.05, 0.85, f"Gini = {g:.2f}", transform=ax.transAxes)
    ax.set_xlabel("share of drivers (poorest first)")
    ax.set_ylabel("share of income")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.legend(frameon=False, loc="lower right", fontsize=8)

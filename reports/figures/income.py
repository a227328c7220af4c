"""Driver income per online hour: its distribution and the Lorenz curve of inequality."""

from __future__ import annotations

from matplotlib.figure import Figure

from reports.figures._style import GREEN, GREY, empty_note, new_figure, style_axes
from reports.market import income_basis, income_per_online_hour, lorenz
from reports.run import RunData


def income_figure(run: RunData) -> Figure:
    """Histogram of income per online hour, and the Lorenz curve with the Gini coefficient."""
    basis = income_basis(run.columns)
    rate = income_per_online_hour(run.drivers, basis).to_numpy()
    unit = (
        "income per online hour (fares after commission)"
        if basis == "fare"
        else "paid minutes per online hour (proxy: no fares logged)"
    )
    fig = new_figure(10.0, 3.6)
    hist, lor = fig.subplots(1, 2, width_ratios=[1.4, 1.0])
    style_axes(hist)
    style_axes(lor)
    hist.set_title("Driver income per online hour", loc="left")
    hist.set_xlabel(unit)
    hist.set_ylabel("drivers")
    lor.set_title("Lorenz curve", loc="left")
    if rate.size == 0:
        empty_note(hist, "no driver online long enough")
        empty_note(lor, "no driver online long enough")
        return fig
    hist.hist(rate, bins=30, color=GREEN, alpha=0.85)
    pop, share = lorenz(rate)
    lor.plot([0, 1], [0, 1], color=GREY, linestyle="--", linewidth=1, label="perfect equality")
    lor.plot(pop, share, color=GREEN, label="drivers")
    lor.fill_between(pop, share, pop, color=GREEN, alpha=0.15)
    g = run.metrics.get("fairness", {}).get("gini")
    if g is not None:
        lor.text(0.05, 0.85, f"Gini = {g:.3f}", transform=lor.transAxes)
    lor.set_xlabel("share of drivers (poorest first)")
    lor.set_ylabel("share of income")
    lor.set_xlim(0, 1)
    lor.set_ylim(0, 1)
    lor.set_aspect("equal")
    lor.legend(frameon=False, loc="lower right", fontsize=8)
    return fig

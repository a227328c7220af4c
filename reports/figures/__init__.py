"""Report figures, one per module; each is a function (run data -> matplotlib Figure).

Figures are built with :class:`matplotlib.figure.Figure` directly (never pyplot), so no global
figure state or interactive backend is involved; rendering uses Agg.
"""

from reports.figures.city_map import city_map_figure
from reports.figures.distributions import distributions_figure, wait_overlay_figure
from reports.figures.income import income_figure
from reports.figures.latency import latency_figure
from reports.figures.replay import replay_figure
from reports.figures.surge import surge_map_figure, surge_timeseries_figure
from reports.figures.timeseries import timeseries_figure

__all__ = [
    "city_map_figure",
    "distributions_figure",
    "income_figure",
    "latency_figure",
    "replay_figure",
    "surge_map_figure",
    "surge_timeseries_figure",
    "timeseries_figure",
    "wait_overlay_figure",
]

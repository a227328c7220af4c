"""Service-level objectives: targets from the scenario's ``slo`` table checked against metrics.

Key convention (the same one ``bench/budgets.toml`` uses): a key names a metric from
:data:`SLO_METRICS` plus the direction of its bound.

* ``<metric>_max``: upper bound, passes when value <= target (``cancel_rate_max = 0.05``);
* ``<metric>_min``: lower bound, passes when value >= target (``match_rate_min = 0.95``);
* a key that is itself a metric name ending in ``_s`` (seconds) is an upper bound: time is
  always better short (``time_to_match_p99_s = 60`` means p99 time to match <= 60 s).

A row's status is ``pass``, ``fail``, ``n/a`` (the metric has no value in this run, e.g. no
completed trips) or ``unknown`` (the key names no known metric). Without a scenario ``slo``
table, :data:`DEFAULT_SLO` applies.
"""

from __future__ import annotations

from typing import Any

DEFAULT_SLO: dict[str, float] = {
    "time_to_match_p99_s": 60.0,
    "pickup_wait_p95_s": 600.0,
    "match_rate_min": 0.95,
    "cancel_rate_max": 0.05,
    "eta_mae_s": 120.0,
    "conversion_min": 0.8,
    "driver_decline_rate_max": 0.25,
}


def _dist_metrics(prefix: str, section: str) -> dict[str, tuple[str, ...]]:
    return {f"{prefix}_{q}_s": (section, q) for q in ("mean", "p50", "p90", "p95", "p99", "max")}


SLO_METRICS: dict[str, tuple[str, ...]] = {
    **_dist_metrics("time_to_match", "time_to_match_s"),
    **_dist_metrics("pickup_wait", "pickup_wait_s"),
    **_dist_metrics("time_to_first_offer", "time_to_first_offer_s"),
    **_dist_metrics("in_vehicle", "in_vehicle_s"),
    **_dist_metrics("journey", "journey_s"),
    **_dist_metrics("wait_all_riders", "wait_all_riders_s"),
    "eta_mae_s": ("eta_error_s", "mae"),
    "eta_bias_s": ("eta_error_s", "bias"),
    "eta_abs_p90_s": ("eta_error_s", "p90_abs"),
    "quote_eta_mae_s": ("quote_error_s", "mae"),
    "quote_eta_bias_s": ("quote_error_s", "bias"),
    "quote_eta_abs_p90_s": ("quote_error_s", "p90_abs"),
    "conversion": ("funnel", "conversion"),
    "driver_decline_rate": ("offers", "decline_rate"),
    "offers_per_trip": ("offers", "offers_per_completed"),
    "repositioning_share": ("drivers", "repositioning_share"),
    "fare_mean": ("money", "fare_per_trip", "mean"),
    "driver_income_per_online_h": ("money", "driver_income_per_online_h"),
    "replay_median_ratio": ("replay", "median_ratio"),
    "replay_spearman": ("replay", "spearman"),
    "surge_share_of_requests": ("surge", "requests", "share_surging"),
    "surge_mean_multiplier": ("surge", "requests", "multiplier", "mean"),
    "match_rate": ("requests", "match_rate"),
    "completion_rate": ("requests", "completed_share"),
    "cancel_rate": ("requests", "cancelled_share"),
    "open_rate": ("requests", "open_share"),
    "utilisation": ("drivers", "utilisation"),
    "idle_share": ("drivers", "idle_share"),
    "deadhead_share": ("drivers", "deadhead_share"),
    "completed_per_h": ("throughput", "completed_per_h"),
    "income_gini": ("fairness", "gini"),
    "income_p90_p10_ratio": ("fairness", "p90_p10_ratio"),
    "zone_match_rate_spread": ("zones", "spread", "match_rate"),
    "zone_mean_wait_spread_s": ("zones", "spread", "mean_wait_s"),
    "worst_zone_match_rate": ("zones", "worst_match_rate", "match_rate"),
    "worst_zone_mean_wait_s": ("zones", "worst_mean_wait", "mean_wait_s"),
}
"""SLO-able metric names -> path into metrics.json."""


def parse_key(key: str) -> tuple[str, str] | None:
    """(metric name, ``max`` | ``min``) for an SLO key, or None if it names no known metric."""
    for suffix, bound in (("_max", "max"), ("_min", "min")):
        if key.endswith(suffix) and key[: -len(suffix)] in SLO_METRICS:
            return key[: -len(suffix)], bound
    if key in SLO_METRICS and key.endswith("_s"):
        return key, "max"
    return None


def metric_value(metrics: dict[str, Any], name: str) -> float | None:
    """The value of an SLO metric in a metrics dict (None when absent)."""
    node: Any = metrics
    for part in SLO_METRICS[name]:
        if not isinstance(node, dict) or node.get(part) is None:
            return None
        node = node[part]
    return float(node) if isinstance(node, int | float) else None


def evaluate(metrics: dict[str, Any], slo: dict[str, Any] | None) -> dict[str, Any]:
    """The ``slo`` section: one row per target (sorted by key) and pass/fail counts."""
    source = "scenario" if slo else "default"
    targets = dict(slo) if slo else dict(DEFAULT_SLO)
    rows = []
    for key in sorted(targets):
        target = targets[key]
        parsed = parse_key(key)
        row: dict[str, Any] = {
            "key": key,
            "metric": None,
            "bound": None,
            "target": target,
            "value": None,
            "status": "unknown",
        }
        if parsed is not None:
            name, bound = parsed
            value = metric_value(metrics, name)
            row.update(metric=name, bound=bound, value=value)
            if value is None or not isinstance(target, int | float):
                row["status"] = "n/a"
            else:
                ok = value <= target if bound == "max" else value >= target
                row["status"] = "pass" if ok else "fail"
        rows.append(row)
    statuses = [r["status"] for r in rows]
    return {
        "source": source,
        "passed": statuses.count("pass"),
        "failed": statuses.count("fail"),
        "rows": rows,
    }

"""Calibrate a travel model from recorded trips (``ridesim calibrate``) and read it back.

:func:`calibrate` takes a replay scenario whose trip file records ride durations, places the
trips on the scenario's city (both ends inside the network's area: the safe choice for
fidelity), computes their free-flow times, drops what cannot be compared (and counts why),
fits :func:`cities.travel.fit_travel` on the fit dates and evaluates it on those and on the
held-out dates. :func:`write_profile` writes the model as a TOML profile that a scenario uses
with ``[travel] profile = "<file>"``; :func:`resolve_travel` reads it back for a run.
"""

from __future__ import annotations

import datetime as dt
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from cities import load_city
from cities.graph_space import file_sha256
from cities.replay import ReplayDemandSpec, place_records, read_trip_records
from cities.travel import DAY_TYPES, TravelFit, day_number, fit_figures, fit_travel
from core.clock import DAY
from core.errors import InputError
from harness.scenario import Scenario
from reports.replay import MAX_RECORDED_S, MIN_RECORDED_S
from sim.behaviour import DayTypeCongestion, TravelSpec

HELD_OUT_SHARE = 0.25
"""Without --from/--until, the last quarter of the dates is held out."""
MIN_FIT_TRIPS = 5
"""Fewer comparable trips on the fit dates than this is an error (nothing to fit)."""
MIN_LENGTH_TRIPS = 200
"""The length term is considered only with at least this many fitted trips."""
PROFILE_KEYS = ("congestion", "length_elasticity", "length_range_s", "length_ref_s", "holidays")
"""Keys of a profile's ``[travel]`` table (everything else in the file is information)."""


@dataclass(frozen=True)
class Calibration:
    """A fitted model and the figures of its fit."""

    fit: TravelFit
    figures: dict[str, Any]
    holidays: tuple[str, ...]


def calibrate(
    scenario: Scenario,
    *,
    source: str,
    base_dir: Path,
    date_from: str | None = None,
    date_until: str | None = None,
    min_s: float = MIN_RECORDED_S,
    max_s: float = MAX_RECORDED_S,
    area: Literal["snap", "inside"] = "inside",
    cache_dir: Path | None = None,
) -> Calibration:
    """Fit a travel model to the recorded rides of ``scenario``'s replay trip file: on the
    dates ``date_from..date_until`` (default: all but the last quarter of the dates); the
    other dates are the held-out split. ``area = "snap"`` also admits ends up to
    ``max_snap_m`` outside the network (more trips, less faithful). Raises :class:`InputError`."""
    demand = scenario.demand
    if not isinstance(demand, ReplayDemandSpec) or demand.columns.trip_seconds is None:
        raise InputError(
            source,
            "demand",
            'calibrate needs model = "replay" with columns.trip_seconds (recorded durations)',
        )
    if demand.destinations != "recorded":
        raise InputError(source, "demand.destinations", 'calibrate needs "recorded" dropoffs')
    for name, value in (("--from", date_from), ("--until", date_until)):
        if value is not None:
            _check_date(name, value)
    if date_from and date_until and date_until < date_from:
        raise InputError("--until", date_until, f"is before --from {date_from}")
    holidays = scenario.travel.holidays
    hol = tuple(day_number(d) for d in holidays)

    space = load_city(scenario.city, base_dir=base_dir, source=source, cache_dir=cache_dir)
    records = read_trip_records(demand, base_dir=base_dir, source=source)
    placed = place_records(records, space, demand.max_snap_m, source=source, area=area)
    assert records.trip_s is not None and placed.dropoff_node is not None
    clock = records.t[placed.record]
    rec = records.trip_s[placed.record]
    ff = space.travel_time(placed.pickup_node, placed.dropoff_node)
    same = placed.pickup_node == placed.dropoff_node
    unknown = ~np.isfinite(rec)
    unreachable = ~same & ~np.isfinite(ff)
    short = ~unknown & (rec < min_s)
    long_ = ~unknown & (rec > max_s)
    reasons = {
        "outside_area": len(records) - len(placed),
        "same_node": int(same.sum()),
        "unreachable": int(unreachable.sum()),
        "no_recorded_time": int((~same & ~unreachable & unknown).sum()),
        "recorded_under_min": int((~same & ~unreachable & short).sum()),
        "recorded_over_max": int((~same & ~unreachable & long_).sum()),
    }
    usable = ~same & ~unreachable & ~unknown & ~short & ~long_
    day = (clock // DAY).astype(np.int64)
    in_fit, split = _split(day, usable, date_from, date_until)
    fit_idx = np.flatnonzero(usable & in_fit)
    held_idx = np.flatnonzero(usable & ~in_fit)
    if fit_idx.shape[0] < MIN_FIT_TRIPS:
        raise InputError(
            source,
            "demand",
            f"only {fit_idx.shape[0]} comparable trips on the fit dates ({split}); "
            f"dropped: {_reasons_text(reasons, records.stats)}",
        )
    cv = _length_term_cv(ff[fit_idx], rec[fit_idx], clock[fit_idx], day[fit_idx], hol)
    use_length = fit_idx.shape[0] >= MIN_LENGTH_TRIPS and cv["with_length"] < cv["without_length"]
    fit = fit_travel(
        ff[fit_idx], rec[fit_idx], clock[fit_idx], holidays=hol, length_term=use_length
    )

    def figures(idx: np.ndarray) -> dict[str, Any]:
        return {
            "model": fit_figures(fit.predict(ff[idx], clock[idx], hol), rec[idx]),
            "free_flow": fit_figures(ff[idx], rec[idx]),
        }

    dates = np.unique(day[usable])
    figs: dict[str, Any] = {
        "trip_file": ", ".join(str(f) for f in records.files),
        "split": split,
        "area": area,
        "rows_read": records.stats["rows_read"],
        "dropped": {
            "missing": records.stats["dropped_missing"],
            "outside_dates": records.stats["dropped_outside_dates"],
            **reasons,
        },
        "comparable_trips": int(usable.sum()),
        "comparable_dates": int(dates.shape[0]),
        "recorded_s_range": [min_s, max_s],
        "length_term": bool(use_length),
        "length_term_cv_median_abs_pct_error": cv,
        "clamped_cells": fit.clamped_cells,
        "fitted": figures(fit_idx),
        "held_out": figures(held_idx),
    }
    return Calibration(fit=fit, figures=figs, holidays=holidays)


def _check_date(name: str, value: str) -> None:
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        raise InputError(name, value, "expected a date YYYY-MM-DD") from None
    if len(value) != 10:
        raise InputError(name, value, "expected a date YYYY-MM-DD")


def _split(
    day: np.ndarray, usable: np.ndarray, date_from: str | None, date_until: str | None
) -> tuple[np.ndarray, str]:
    """Which trips are on the fit dates, and the split in words."""
    if date_from or date_until:
        lo = day_number(date_from) if date_from else np.iinfo(np.int64).min
        hi = day_number(date_until) if date_until else np.iinfo(np.int64).max
        words = f"fit on {date_from or 'the first date'}..{date_until or 'the last date'}"
        return (day >= lo) & (day <= hi), words + ", held out: the other dates"
    dates = np.unique(day[usable])
    n_held = int(math.floor(dates.shape[0] * HELD_OUT_SHARE)) if dates.shape[0] >= 2 else 0
    if n_held == 0:
        return np.ones(day.shape, dtype=bool), "fit on every date, none held out"
    first_held = dates[-n_held]
    when = (dt.date(1970, 1, 1) + dt.timedelta(days=int(first_held))).isoformat()
    return day < first_held, f"fit on the dates before {when}, held out: {when} and later"


def _length_term_cv(
    ff: np.ndarray, rec: np.ndarray, clock: np.ndarray, day: np.ndarray, hol: tuple[int, ...]
) -> dict[str, float]:
    """Two-fold cross-validated median absolute % error (folds: alternate dates) with and
    without the length term: the term is kept only when the data supports it."""
    dates = np.unique(day)
    fold = np.isin(day, dates[::2])
    out = {}
    for name, length in (("without_length", False), ("with_length", True)):
        errs = []
        for test in (fold, ~fold):
            if test.all() or not test.any() or (~test).sum() < MIN_FIT_TRIPS:
                continue
            f = fit_travel(ff[~test], rec[~test], clock[~test], holidays=hol, length_term=length)
            errs.append(np.abs(f.predict(ff[test], clock[test], hol) / rec[test] - 1.0))
        out[name] = float(np.median(np.concatenate(errs)) * 100.0) if errs else math.inf
    return out


def _reasons_text(reasons: dict[str, int], stats: dict[str, int]) -> str:
    parts = [
        f"{stats['dropped_missing']} missing",
        f"{stats['dropped_outside_dates']} out of dates",
    ]
    return ", ".join(parts + [f"{v} {k.replace('_', ' ')}" for k, v in reasons.items()])


def write_profile(path: Path, cal: Calibration) -> None:
    """Write ``cal`` as a profile TOML file: ``[travel]`` (what a run uses) and ``[fit]``
    (figures, for people)."""
    fit = cal.fit
    lines = [
        "# Travel model fitted by `ridesim calibrate` (see docs/travel_model.md).",
        '# Use it from a scenario with [travel] profile = "<this file>".',
        "[travel]",
        f"length_elasticity = {_num(fit.length_elasticity)}",
        f"length_range_s = [{_num(fit.length_range_s[0])}, {_num(fit.length_range_s[1])}]",
        f"length_ref_s = {_num(fit.length_ref_s)}",
        f"holidays = [{', '.join(repr(h) for h in cal.holidays)}]".replace("'", '"'),
        "",
        "[travel.congestion]",
    ]
    for i, name in enumerate(DAY_TYPES):
        lines.append(f"{name} = [{', '.join(_num(round(v, 4)) for v in fit.table[i])}]")
    lines += ["", "[fit.trips_per_cell]"]
    for i, name in enumerate(DAY_TYPES):
        lines.append(f"{name} = [{', '.join(str(int(v)) for v in fit.trips_per_cell[i])}]")
    lines.append("")
    lines += _toml_table("fit", cal.figures)
    Path(path).write_text("\n".join(lines) + "\n")


def _toml_table(name: str, data: dict[str, Any]) -> list[str]:
    flat, sub = [], []
    for k, v in data.items():
        if isinstance(v, dict):
            sub += ["", *_toml_table(f"{name}.{k}", v)]
        else:
            flat.append(f"{k} = {_value(v)}")
    return [f"[{name}]", *flat, *sub] if flat or not sub else [f"[{name}]", *sub[1:]]


def _value(v: Any) -> str:
    if v is None:
        return '"none"'
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return _num(v)
    if isinstance(v, list | tuple):
        return f"[{', '.join(_value(x) for x in v)}]"
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _num(v: float) -> str:
    if isinstance(v, int):
        return str(v)
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return repr(float(v))


def read_profile(path: Path, source: str) -> dict[str, Any]:
    """The ``[travel]`` table of a profile file. Raises :class:`InputError`."""
    if not path.is_file():
        raise InputError(source, "travel.profile", f"travel profile not found: {path}")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(source, "travel.profile", f"{path} is not valid TOML: {exc}") from None
    travel = data.get("travel")
    if not isinstance(travel, dict) or "congestion" not in travel:
        raise InputError(
            source, "travel.profile", f"{path} has no [travel.congestion] table (not a profile)"
        )
    unknown = sorted(set(travel) - set(PROFILE_KEYS))
    if unknown:
        raise InputError(source, "travel.profile", f"{path}: unknown [travel] keys {unknown}")
    return travel


def resolve_travel(
    travel: TravelSpec, *, base_dir: Path, source: str
) -> tuple[TravelSpec, dict[str, str] | None]:
    """``travel`` with its profile (if any) read in, and the profile's input entry
    ({"path", "sha256"}) for the run id. Raises :class:`InputError`."""
    if travel.profile is None:
        return travel, None
    raw = Path(travel.profile)
    path = raw if raw.is_absolute() else Path(base_dir) / raw
    prof = read_profile(path, source)
    merged = travel.model_dump(exclude={"profile"}, exclude_unset=True)
    holidays = tuple(merged.pop("holidays", ())) + tuple(prof.pop("holidays", ()))
    try:
        resolved = TravelSpec.model_validate(
            {**merged, **prof, "holidays": tuple(dict.fromkeys(holidays))}
        )
    except ValueError as exc:
        raise InputError(source, "travel.profile", f"{path}: {exc}") from None
    return resolved, {"path": str(path), "sha256": file_sha256(path)}


def with_start_date(travel: TravelSpec, demand_stats: dict[str, Any], source: str) -> TravelSpec:
    """``travel`` with the date of simulated t = 0 filled in from a shift-aligned replay
    (``start_day``) when congestion goes by day type and no ``start_date`` is given."""
    if not isinstance(travel.congestion, DayTypeCongestion) or travel.start_date is not None:
        return travel
    if "start_day" not in demand_stats:
        raise InputError(
            source,
            "travel.start_date",
            "congestion by day type needs the date of simulated t = 0 (YYYY-MM-DD); "
            'only a replay with align = "shift" supplies its own',
        )
    day = dt.date(1970, 1, 1) + dt.timedelta(days=int(demand_stats["start_day"]))
    return travel.model_copy(update={"start_date": day.isoformat()})

"""Check suites (TOML): which scenarios the nightly gate runs, with which seeds, and its gates.

A suite file names scenario files (relative to the suite) with dotted-key overrides and seeds,
and three kinds of gates (see :mod:`harness.check` for how each is judged)::

    schema_version = 1
    name = "smoke"
    seeds = [1, 2, 3]                 # default seeds of every scenario entry

    [slo]                             # used by entries whose scenario has no [slo] of its own
    time_to_match_p99_s = 120

    [baseline]                        # KPI (a reports.slo metric name) -> rule
    completion_rate = { tolerance = 0.0 }
    pickup_wait_p95_s = { tolerance = 0.05, relative = true, test = "wilcoxon" }

    [performance]                     # tonight / baseline ratios, median over seeds
    requests_per_s = { min_ratio = 0.25 }
    matcher_p99_ms = { max_ratio = 2.5, floor = 5.0 }

    [[scenario]]
    name = "grid_10x"                 # unique in the suite (default: the file's stem)
    file = "../grid_small.toml"
    set = { "demand.multiplier" = 10, "fleet.multiplier" = 10 }
    requires = "../../../shared/data/milan-otp/milan_italy_small.osm.pbf"  # skip when absent

Unknown keys are errors; every error names the suite file, the field and what was expected.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from core.errors import InputError
from core.files import read_toml
from core.frozen import Frozen, NonNegFloat, PositiveFloat
from harness.scenario import _describe, load_scenario
from reports.slo import SLO_METRICS, parse_key

SUITE_SCHEMA_VERSION = 1

HIGHER_IS_BETTER = frozenset(
    {
        "match_rate",
        "completion_rate",
        "conversion",
        "utilisation",
        "completed_per_h",
        "worst_zone_match_rate",
        "driver_income_per_online_h",
        "replay_spearman",
    }
)
LOWER_IS_BETTER = frozenset(
    {
        "cancel_rate",
        "open_rate",
        "idle_share",
        "deadhead_share",
        "driver_decline_rate",
        "offers_per_trip",
        "income_gini",
        "income_p90_p10_ratio",
        "zone_match_rate_spread",
    }
)
"""KPI directions; any other metric whose name ends in ``_s`` (a time) is better short."""

QUANTILE_PARTS = ("_p50_", "_p90_", "_p95_", "_p99_", "_max_")

PERF_METRICS: dict[str, str] = {
    "requests_per_s": "higher",
    "matcher_p99_ms": "lower",
    "peak_rss_mb": "lower",
}
"""Performance figures a suite can gate, and which way is better."""


def better_of(metric: str) -> Literal["higher", "lower"] | None:
    """Which way a KPI is better, or None when the suite must say."""
    if metric in HIGHER_IS_BETTER:
        return "higher"
    if metric in LOWER_IS_BETTER or metric.endswith("_s"):
        return "lower"
    return None


def is_quantile(metric: str) -> bool:
    """Whether a KPI is a tail quantile of a distribution (p50 ... max) rather than a mean/share."""
    return any(part in metric + "_" for part in QUANTILE_PARTS)


class BaselineRule(Frozen):
    """How one KPI is compared with the baseline.

    ``tolerance`` is the worse change allowed per seed (absolute, or a share of the baseline
    value when ``relative``); 0 means exact. ``test`` judges a change beyond tolerance across
    seeds: ``auto`` (paired t for means and shares, Wilcoxon signed-rank for quantiles when
    there are enough seeds), ``paired_t``, ``wilcoxon`` or ``none`` (every seed must be within
    tolerance)."""

    tolerance: NonNegFloat = 0.0
    relative: bool = False
    better: Literal["higher", "lower"] | None = None
    test: Literal["auto", "paired_t", "wilcoxon", "none"] = "auto"
    alpha: Annotated[float, Field(gt=0, lt=0.5)] = 0.05


class PerfRule(Frozen):
    """A performance figure's allowed ratio tonight / baseline (median over seeds).

    ``floor`` lifts both values to at least this much before the ratio is taken, so figures
    too small to time reliably (a 0.1 ms matcher call) cannot flap the gate."""

    min_ratio: PositiveFloat | None = None
    max_ratio: PositiveFloat | None = None
    floor: NonNegFloat = 0.0


DEFAULT_PERF: dict[str, PerfRule] = {
    "requests_per_s": PerfRule(min_ratio=0.25),
    "matcher_p99_ms": PerfRule(max_ratio=2.5, floor=5.0),
    "peak_rss_mb": PerfRule(max_ratio=1.3),
}
"""Defaults set from the noise measured on an unchanged tree (docs/nightly_check.md)."""

DEFAULT_BASELINE: dict[str, BaselineRule] = {
    "completion_rate": BaselineRule(),
    "match_rate": BaselineRule(),
    "cancel_rate": BaselineRule(),
    "time_to_match_p95_s": BaselineRule(),
    "pickup_wait_p95_s": BaselineRule(),
    "utilisation": BaselineRule(),
}
"""Baseline gates of a suite without a [baseline] table: exact on an unchanged tree."""


class SuiteEntry(Frozen):
    """One scenario of a suite."""

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")] | None = None
    file: Annotated[str, Field(min_length=1)]
    set: dict[str, Any] = Field(default_factory=dict)
    seeds: list[Annotated[int, Field(ge=0, lt=2**63)]] | None = None
    requires: str | None = None
    slo: dict[str, float] | None = None


class Suite(Frozen):
    """A validated check suite."""

    schema_version: Literal[1] = 1
    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")]
    description: str = ""
    seeds: list[Annotated[int, Field(ge=0, lt=2**63)]] | None = None
    slo: dict[str, float] = Field(default_factory=dict)
    baseline: dict[str, BaselineRule] = Field(default_factory=lambda: dict(DEFAULT_BASELINE))
    performance: dict[str, PerfRule] = Field(default_factory=lambda: dict(DEFAULT_PERF))
    scenario: Annotated[list[SuiteEntry], Field(min_length=1)]

    @field_validator("baseline")
    @classmethod
    def _known_kpis(cls, v: dict[str, BaselineRule]) -> dict[str, BaselineRule]:
        for key, rule in v.items():
            if key not in SLO_METRICS:
                raise ValueError(f"unknown KPI {key!r}; known: {', '.join(sorted(SLO_METRICS))}")
            if rule.better is None and better_of(key) is None:
                raise ValueError(f"{key}: say better = 'higher' or 'lower'")
        return v

    @field_validator("performance")
    @classmethod
    def _known_perf(cls, v: dict[str, PerfRule]) -> dict[str, PerfRule]:
        for key, rule in v.items():
            if key not in PERF_METRICS:
                raise ValueError(f"unknown figure {key!r}; known: {', '.join(PERF_METRICS)}")
            wanted = "min_ratio" if PERF_METRICS[key] == "higher" else "max_ratio"
            other = "max_ratio" if wanted == "min_ratio" else "min_ratio"
            if getattr(rule, other) is not None or getattr(rule, wanted) is None:
                raise ValueError(
                    f"{key}: give {wanted} (and not {other}): {key} is better {PERF_METRICS[key]}"
                )
        return v

    @model_validator(mode="after")
    def _unique_names(self) -> Suite:
        names = [entry_name(e) for e in self.scenario]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"scenario names must be unique; repeated: {', '.join(dupes)}")
        return self


def entry_name(entry: SuiteEntry) -> str:
    """An entry's name in reports: its ``name``, or its file's stem."""
    return entry.name or Path(entry.file).stem


def _check_slo(slo: dict[str, Any], source: str, field: str) -> None:
    for key in sorted(slo):
        if parse_key(key) is None:
            raise InputError(
                source,
                f"{field}.{key}",
                "unknown SLO key: expected <metric>_max, <metric>_min or a time metric "
                "ending in _s (see reports/slo.py)",
            )


def is_suite(path: Path) -> bool:
    """Whether a TOML file is a check suite (it has ``[[scenario]]`` entries), not a scenario."""
    try:
        with Path(path).open("rb") as f:
            return isinstance(tomllib.load(f).get("scenario"), list)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return False


def load_suite(path: str | Path) -> tuple[Suite, Path]:
    """Read and validate a suite file; returns it and its folder (entries' files are relative
    to it). Every scenario it names is loaded too, so a bad one fails here."""
    path = Path(path)
    source = str(path)
    data = read_toml(path, "suite")
    try:
        suite = Suite.model_validate(data)
    except ValidationError as exc:
        raise InputError.many(source, [_describe(e) for e in exc.errors()]) from None
    base = path.resolve().parent
    _check_slo(suite.slo, source, "slo")
    for i, entry in enumerate(suite.scenario):
        where = f"scenario.{i}"
        if entry.slo is not None:
            _check_slo(entry.slo, source, f"{where}.slo")
        if entry.requires is not None and not (base / entry.requires).exists():
            continue  # skipped at run time with a reason; its scenario may name the file
        file = base / entry.file
        if not file.is_file():
            raise InputError(source, f"{where}.file", f"scenario file not found: {file}")
        scenario = load_scenario(file, overrides=entry.set)
        _check_slo(scenario.slo, str(file), "slo")
        n_seeds = len(entry.seeds or suite.seeds or [scenario.seed])
        for key, rule in suite.baseline.items():
            _check_test_power(rule, n_seeds, source, f"baseline.{key}.test", entry_name(entry))
    return suite, base


def _check_test_power(rule: BaselineRule, n: int, source: str, field: str, name: str) -> None:
    """A test that can never reach ``alpha`` with ``n`` seeds would be a gate that cannot fail."""
    if rule.test == "paired_t" and n < 2:
        raise InputError(source, field, f"paired_t needs >= 2 seeds; scenario {name!r} has {n}")
    if rule.test == "wilcoxon" and 0.5**n >= rule.alpha:
        need = next(k for k in range(1, 64) if 0.5**k < rule.alpha)
        raise InputError(
            source,
            field,
            f"wilcoxon at alpha {rule.alpha:g} needs >= {need} seeds (its smallest one-sided "
            f"p-value is 1/2^n); scenario {name!r} has {n}",
        )

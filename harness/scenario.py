"""Scenario files (TOML, schema version 1): validated into frozen types.

A scenario names everything a run depends on: the city, the simulated period, demand, the
fleet, dispatch (matcher and its parameters), how riders and drivers behave, pricing, travel
noise and congestion, and the root seed. Unknown keys
are errors; every error names the file, the field path and what was expected, e.g.
``scenarios/x.toml: demand.multiplier: must be > 0, got -3``.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    model_validator,
)

from cities.demand import DemandSpec
from cities.fitted import FittedDemandSpec
from cities.replay import ReplayDemandSpec
from cities.spec import CitySpec
from cities.supply import FleetSpec
from core.clock import ClockTime, clock_to_seconds
from core.errors import InputError
from core.files import read_toml
from core.frozen import Frozen, NonNegFloat, PositiveFloat
from sim.behaviour import DriverSpec, PricingSpec, RiderSpec, TravelSpec
from sim.faults import FaultSpec

SCHEMA_VERSION = 1


class TimeSpec(Frozen):
    """The simulated period: clock time of t = 0 and its length."""

    start: ClockTime = "00:00"
    duration_h: PositiveFloat | None = None
    duration_s: PositiveFloat | None = None

    @model_validator(mode="after")
    def _one_duration(self) -> TimeSpec:
        if (self.duration_h is None) == (self.duration_s is None):
            raise ValueError("give exactly one of duration_h or duration_s")
        return self

    @property
    def start_s(self) -> float:
        """Clock seconds after midnight at simulated t = 0."""
        return clock_to_seconds(self.start)

    @property
    def horizon_s(self) -> float:
        """Simulated seconds to run."""
        return self.duration_s if self.duration_s is not None else self.duration_h * 3600.0


class DispatchSpec(Frozen):
    """How and when the matcher is asked."""

    matcher: str = "batched_greedy"
    params: dict[str, Any] = Field(default_factory=dict)
    batch_window_s: NonNegFloat = 10.0
    """0 means immediate dispatch: the matcher is asked on every arrival and driver release."""
    max_pickup_eta_s: PositiveFloat = 600.0
    decision_delay_s: NonNegFloat = 0.0
    """Simulated time a decision takes (a deterministic model, never the measured wall time)."""
    decision_delay_per_request_s: NonNegFloat = 0.0
    """Extra simulated decision time per open request in the batch (per shard)."""
    shards: Annotated[int, Field(ge=1, le=1024)] = 1
    """Geo-partitioned matcher shards: each sees only its area's requests and drivers."""


class SurgeSpec(Frozen):
    """Surge pricing: a policy asked every ``interval_s`` about supply and demand per zone
    (H3 cells at ``h3_resolution`` on real cities, squares of ``cell_m`` on synthetic ones)."""

    policy: str = "none"
    params: dict[str, Any] = Field(default_factory=dict)
    interval_s: PositiveFloat = 60.0
    h3_resolution: Annotated[int, Field(ge=0, le=15)] = 8
    cell_m: PositiveFloat = 1000.0


def _demand_model(value: Any) -> str | None:
    """Which demand model a ``[demand]`` table uses (``model``, default ``poisson``)."""
    if isinstance(value, BaseModel):
        model = getattr(value, "model", None)
    elif isinstance(value, dict):
        model = value.get("model", "poisson")
    else:
        return None
    return _DEMAND_TAGS.get(model) if isinstance(model, str) else None


# Tags are class names so that error paths read ``demand.path``, not ``demand.replay.path``.
_DEMAND_TAGS = {"poisson": "DemandSpec", "replay": "ReplayDemandSpec", "fitted": "FittedDemandSpec"}

DemandConfig = Annotated[
    Annotated[DemandSpec, Tag("DemandSpec")]
    | Annotated[ReplayDemandSpec, Tag("ReplayDemandSpec")]
    | Annotated[FittedDemandSpec, Tag("FittedDemandSpec")],
    Discriminator(
        _demand_model,
        custom_error_type="demand_model",
        custom_error_message='model must be "poisson" (default), "replay" or "fitted"',
    ),
]
"""The ``[demand]`` table: synthetic Poisson, a replay of trip records, or a fitted model."""


class Scenario(Frozen):
    """A validated, frozen scenario (schema version 1)."""

    schema_version: Literal[1] = 1
    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")]
    description: str = ""
    seed: Annotated[int, Field(ge=0, lt=2**63)]
    city: CitySpec
    time: TimeSpec
    demand: DemandConfig
    fleet: FleetSpec
    dispatch: DispatchSpec = DispatchSpec()
    riders: RiderSpec = RiderSpec()
    drivers: DriverSpec = DriverSpec()
    pricing: PricingSpec = PricingSpec()
    travel: TravelSpec = TravelSpec()
    surge: SurgeSpec | None = None
    """No ``[surge]`` table: fixed prices and no supply/demand record."""
    faults: FaultSpec | None = None
    """No ``[faults]`` table: nothing fails."""
    slo: dict[str, float] = Field(default_factory=dict)
    """Service-level objectives for the report, e.g. ``pickup_wait_p95_s = 600``."""

    def canonical(self) -> dict[str, Any]:
        """The scenario as plain JSON data with every default filled in."""
        return json.loads(self.model_dump_json())

    def with_seed(self, seed: int) -> Scenario:
        """The same scenario under another root seed."""
        return self.model_copy(update={"seed": seed})


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["dispatch.matcher=assignment", "demand.multiplier=3"]`` -> dotted keys and TOML
    values (a bare word that is not valid TOML is taken as a string)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key or not all(part.isidentifier() for part in key.split(".")):
            raise InputError(
                "--set", item, "expected KEY=VALUE with a dotted key, e.g. demand.multiplier=3"
            )
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text
        out[key] = value
    return out


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise InputError("--set", key, f"{part!r} is not a table in the scenario")
        node = child
    node[parts[-1]] = value


def load_scenario(path: str | Path, *, overrides: dict[str, Any] | None = None) -> Scenario:
    """Read and validate a scenario file, with optional ``overrides`` (dotted keys, e.g.
    ``{"dispatch.matcher": "assignment"}``). Raises :class:`InputError` naming file and field."""
    path = Path(path)
    source = str(path)
    data = read_toml(path, "scenario")
    for key, value in (overrides or {}).items():
        _set_dotted(data, key, value)
    return parse_scenario(data, source)


def parse_scenario(data: dict[str, Any], source: str) -> Scenario:
    """Validate scenario data (already parsed from TOML) from ``source``."""
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise InputError.many(source, [_describe(e) for e in exc.errors()]) from None


_FIELD_MESSAGES = {
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}",
    "less_than_equal": "must be <= {le}",
    "finite_number": "must be a finite number",
    "string_pattern_mismatch": "must match {pattern}",
    "string_too_short": "must not be empty",
}


def _describe(err: dict[str, Any]) -> tuple[str, str]:
    loc = [str(p) for p in err["loc"] if not str(p).startswith("function-")]
    # Union members show up as an extra path element (e.g. "GridCity"): drop class names.
    loc = [p for p in loc if not (p[:1].isupper() and p.isidentifier())]
    field = ".".join(loc)
    kind = err["type"]
    got = err.get("input")
    ctx = err.get("ctx", {})
    if kind == "missing":
        return field, "required key is missing"
    if kind == "extra_forbidden":
        return field, "unknown key (check the spelling; unknown keys are not ignored)"
    if kind in _FIELD_MESSAGES:
        bounds = {k: f"{v:g}" if isinstance(v, float) else v for k, v in ctx.items()}
        return field, f"{_FIELD_MESSAGES[kind].format(**bounds)}, got {got!r}"
    if kind == "literal_error":
        return field, f"must be one of {ctx.get('expected')}, got {got!r}"
    if kind == "value_error":
        return field, str(ctx.get("error", err["msg"]))
    return field, f"{err['msg'][0].lower()}{err['msg'][1:]}, got {got!r}"

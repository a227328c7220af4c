"""The matching contract, version 1: the messages between the simulator and a matcher.

This is the interface the production matcher implements. A matcher receives one
:class:`MatchRequest` (a frozen snapshot of the market at a decision time) and returns one
:class:`MatchResponse`. Everything is columnar (numpy arrays) so that batches of thousands of
requests and drivers cross the boundary without per-object Python overhead.

Rules every matcher follows (checked by :mod:`matching.checks`):

* ``__init__`` only stores parameters; ``get_params()`` returns them JSON-serialisable.
* ``match`` never mutates the request; the same request (same ``seed``) gives the same response.
* A request id and a driver id appear in at most one assignment.
* Every assignment's ``pickup_eta_s`` equals ``request.pickup_eta`` for that pair and is at most
  ``max_pickup_eta_s``.
* Every open request is either assigned or listed in ``unmatched`` with a reason, never both.

Units: seconds for times, metres for planar coordinates (``xy``), node ids index the city's
access nodes (the travel-time table).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from enum import IntEnum
from functools import cached_property
from typing import Any, ClassVar, Protocol, TypeVar, cast, runtime_checkable

import numpy as np

API_VERSION = 1

TravelTimeFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""``travel_time(src_nodes, dst_nodes) -> seconds``: elementwise over broadcast node-id arrays."""


class DriverState(IntEnum):
    """What a candidate driver is doing at decision time."""

    IDLE = 0
    TO_PICKUP = 1
    ON_TRIP = 2
    REPOSITIONING = 3


class UnmatchedReason(IntEnum):
    """Why an open request was not assigned in this decision."""

    NO_DRIVERS = 1
    """There was no candidate driver at all."""
    NO_DRIVER_IN_RANGE = 2
    """No candidate driver could reach the pickup within ``max_pickup_eta_s``."""
    OUTCOMPETED = 3
    """Drivers in range existed but were given to other requests."""
    DEFERRED = 4
    """The matcher chose to hold the request for a later decision."""


_M = TypeVar("_M")


set_writeable = cast(Callable[[np.ndarray, bool], None], np.ndarray.setflags)
"""``set_writeable(arr, False)`` is ``arr.setflags(write=False)`` without a bound method or a
keyword to parse (two fifths of its cost; the producers' hot paths call it on every decision).
NumPy's type stubs declare the argument keyword-only; the method takes it by position too."""


def frozen_array(values: Any, dtype: Any, name: str, ndim: int = 1) -> np.ndarray:
    """``values`` as a read-only array of ``dtype`` and ``ndim`` dimensions (``ValueError``
    naming ``name`` otherwise); an empty 2-d column may be given as any empty array.

    A read-only view: the caller's own array stays writeable, the matcher's copy cannot be
    written through. Converting copies only when the dtype differs. Shared by every message of
    the matching and surge contracts.
    """
    arr = np.asarray(values, dtype=dtype).view()
    if arr.ndim != ndim:
        if ndim == 2 and arr.size == 0:
            arr = arr.reshape(0, 2)
        else:
            raise ValueError(f"{name}: expected a {ndim}-d array, got shape {arr.shape}")
    arr.flags.writeable = False
    return arr


def unchecked_message(
    cls: type[_M],
    columns: Mapping[str, np.ndarray],
    extra: Mapping[str, Any] | None = None,
    *,
    read_only: bool = False,
) -> _M:
    """An instance of the frozen message class ``cls`` built without validation.

    The fast path for producers that already guarantee dtypes, shapes and sorted ids (the
    simulator builds every snapshot from fresh fancy-indexed arrays): the arrays are made
    read-only (a matcher still cannot write through them), nothing else is checked.
    ``read_only``: the producer has made every array read-only itself (no flag is read).
    """
    obj = object.__new__(cls)
    if not read_only:
        for arr in columns.values():
            # setflags costs half of assigning flags.writeable, and reading the flag a fifth:
            # slices of columns the producer keeps read-only need no second marking.
            if arr.flags.writeable:
                set_writeable(arr, False)
    # A frozen dataclass without slots keeps its fields in __dict__: one update, no
    # per-field object.__setattr__.
    obj.__dict__.update(columns)
    if extra:
        obj.__dict__.update(extra)
    return obj


@dataclass(frozen=True, eq=False)
class OpenRequests:
    """Open ride requests, one row each, sorted by ``id``."""

    id: np.ndarray
    pickup_node: np.ndarray
    dropoff_node: np.ndarray
    pickup_xy: np.ndarray
    dropoff_xy: np.ndarray
    requested_at: np.ndarray
    quoted_price: np.ndarray
    patience_s: np.ndarray

    def __post_init__(self) -> None:
        spec = {
            "id": (np.int64, 1),
            "pickup_node": (np.int64, 1),
            "dropoff_node": (np.int64, 1),
            "pickup_xy": (np.float64, 2),
            "dropoff_xy": (np.float64, 2),
            "requested_at": (np.float64, 1),
            "quoted_price": (np.float64, 1),
            "patience_s": (np.float64, 1),
        }
        _freeze_columns(self, spec, "OpenRequests")

    def __len__(self) -> int:
        return int(self.id.shape[0])

    @classmethod
    def unchecked(cls, **columns: np.ndarray) -> OpenRequests:
        """Build without validation from arrays of the right dtypes whose ids are sorted.

        For trusted producers on the hot path (the simulator); the arrays become read-only.
        """
        return unchecked_message(cls, columns)

    @classmethod
    def empty(cls) -> OpenRequests:
        """No open requests."""
        z = np.zeros(0)
        return cls(z, z, z, z.reshape(0, 2), z.reshape(0, 2), z, z, z)


@dataclass(frozen=True, eq=False)
class CandidateDrivers:
    """Drivers the matcher may assign, one row each, sorted by ``id``.

    ``node`` is where the driver is (or will be, at ``free_at``) and ``free_at`` is when they can
    start towards a pickup (at most ``decision_time`` for an idle driver). ``earnings`` and
    ``online_s`` (money earned and seconds online so far) allow fairness-aware matching.
    """

    id: np.ndarray
    node: np.ndarray
    xy: np.ndarray
    state: np.ndarray
    free_at: np.ndarray
    earnings: np.ndarray
    online_s: np.ndarray

    def __post_init__(self) -> None:
        spec = {
            "id": (np.int64, 1),
            "node": (np.int64, 1),
            "xy": (np.float64, 2),
            "state": (np.uint8, 1),
            "free_at": (np.float64, 1),
            "earnings": (np.float64, 1),
            "online_s": (np.float64, 1),
        }
        _freeze_columns(self, spec, "CandidateDrivers")

    def __len__(self) -> int:
        return int(self.id.shape[0])

    @classmethod
    def unchecked(cls, **columns: np.ndarray) -> CandidateDrivers:
        """Build without validation (see :meth:`OpenRequests.unchecked`)."""
        return unchecked_message(cls, columns)

    @classmethod
    def empty(cls) -> CandidateDrivers:
        """No candidate drivers."""
        z = np.zeros(0)
        return cls(z, z, z.reshape(0, 2), z, z, z, z)


def _freeze_columns(obj: Any, spec: Mapping[str, tuple[Any, int]], kind: str) -> None:
    n = None
    for name, (dtype, ndim) in spec.items():
        arr = frozen_array(getattr(obj, name), dtype, f"{kind}.{name}", ndim)
        if n is None:
            n = arr.shape[0]
        elif arr.shape[0] != n:
            raise ValueError(f"{kind}.{name}: has {arr.shape[0]} rows, expected {n}")
        if ndim == 2 and arr.shape[1] != 2:
            raise ValueError(f"{kind}.{name}: expected shape (n, 2), got {arr.shape}")
        object.__setattr__(obj, name, arr)
    ids = obj.id
    if ids.shape[0] > 1 and not bool(np.all(ids[1:] > ids[:-1])):
        raise ValueError(f"{kind}.id: must be strictly increasing (sorted, unique)")


Fill = tuple[Callable[..., np.ndarray], tuple[Any, ...]]
"""``(fn, args)``: ``fn(name, *args)`` makes the column ``name`` of a lazy message."""


class _LazyColumns:
    """A message whose columns not given up front are made when first read, then kept.

    For producers whose snapshot holds columns most matchers never read (the simulator's
    immediate path reads the drivers' ids, nodes and free times, not their positions, states,
    earnings or time online). ``fn(name, *args)`` must return the column as of the decision time
    (a fresh array of the contract's dtype and length): the producer calls :meth:`settle`
    before the state it reads changes, whenever the message may still be read after that (a
    matcher that kept it). Pickling and copying settle first and give the plain message.
    """

    _columns: ClassVar[tuple[str, ...]]
    _plain: ClassVar[type]

    def __getattr__(self, name: str) -> np.ndarray:
        # Called only for names not in the instance __dict__: a column not made yet.
        fill: Fill | None = self.__dict__.get("_fill")
        if fill is None or name not in self._columns:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        arr = fill[0](name, *fill[1])
        arr.setflags(write=False)
        self.__dict__[name] = arr
        return arr

    def settle(self) -> None:
        """Make every column not made yet, and forget how (the state may change next)."""
        if "_fill" in self.__dict__:
            for name in self._columns:
                getattr(self, name)
            del self.__dict__["_fill"]

    def __reduce__(self) -> tuple[Any, ...]:
        self.settle()
        columns = {name: self.__dict__[name] for name in self._columns}
        return (unchecked_message, (self._plain, columns))


class LazyOpenRequests(_LazyColumns, OpenRequests):
    """:class:`OpenRequests` with columns made on first read (see :func:`lazy_message`)."""

    _columns: ClassVar[tuple[str, ...]] = tuple(f.name for f in fields(OpenRequests))
    _plain: ClassVar[type] = OpenRequests


class LazyCandidateDrivers(_LazyColumns, CandidateDrivers):
    """:class:`CandidateDrivers` with columns made on first read (see :func:`lazy_message`)."""

    _columns: ClassVar[tuple[str, ...]] = tuple(f.name for f in fields(CandidateDrivers))
    _plain: ClassVar[type] = CandidateDrivers


_L = TypeVar("_L", bound=_LazyColumns)


def lazy_message(
    cls: type[_L], columns: Mapping[str, np.ndarray], fill: Fill, *, read_only: bool = False
) -> _L:
    """A lazy message of ``cls`` (:class:`LazyOpenRequests` or :class:`LazyCandidateDrivers`)
    holding ``columns`` now, the others made by ``fill`` when first read (unchecked, like
    :func:`unchecked_message`: the producer guarantees dtypes, lengths and sorted ids).

    ``read_only``: the producer has made every column read-only itself, so no array's flags
    are read here (the simulator's snapshot, on every decision: 2% of a plane request)."""
    obj = object.__new__(cls)
    if not read_only:
        for arr in columns.values():
            if arr.flags.writeable:
                set_writeable(arr, False)
    fields = obj.__dict__
    fields.update(columns)
    fields["_fill"] = fill
    return obj


@dataclass(frozen=True, eq=False)
class CandidatePairs:
    """Sparse (request, driver) pairs with their pickup ETA, as row indices into the request.

    Sorted by (request_row, pickup_eta_s, driver id): the order matchers iterate in.
    """

    request_row: np.ndarray
    driver_row: np.ndarray
    pickup_eta_s: np.ndarray

    def __post_init__(self) -> None:
        _freeze_columns_no_id(
            self,
            {"request_row": np.int64, "driver_row": np.int64, "pickup_eta_s": np.float64},
            "CandidatePairs",
        )

    def __len__(self) -> int:
        return int(self.request_row.shape[0])


def _freeze_columns_no_id(obj: Any, spec: Mapping[str, Any], kind: str) -> None:
    n = None
    for name, dtype in spec.items():
        arr = frozen_array(getattr(obj, name), dtype, f"{kind}.{name}")
        if n is None:
            n = arr.shape[0]
        elif arr.shape[0] != n:
            raise ValueError(f"{kind}.{name}: has {arr.shape[0]} rows, expected {n}")
        object.__setattr__(obj, name, arr)


@dataclass(frozen=True, eq=False)
class EtaBounds:
    """Lower bounds on travel time into each node from each zone of nodes, so that candidate
    search can skip whole zones of drivers (work grows with the answer, not the city).

    ``node_zone[u]`` is the zone of node ``u`` (int64 in ``[0, n_zones)``);
    ``into_node_s[v, z]`` bounds the travel from any node of zone ``z`` to node ``v``: for every
    node ``u`` with ``node_zone[u] == z``, ``travel_time(u, v) >= scale * into_node_s[v, z]``
    holds for the float values ``travel_time`` returns (a minimum over the very table
    ``travel_time`` reads, times the same factor, is such a bound). One pickup's bounds are one
    contiguous row. The producer guarantees it; nothing here checks it (it would cost what
    the bound saves).
    """

    node_zone: np.ndarray
    into_node_s: np.ndarray
    scale: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "node_zone", frozen_array(self.node_zone, np.int64, "node_zone"))
        into = np.asarray(self.into_node_s)
        if into.ndim != 2 or into.dtype.kind != "f" or into.shape[0] != self.node_zone.shape[0]:
            raise ValueError(
                f"EtaBounds.into_node_s: expected a float (n_nodes, n_zones) array with "
                f"n_nodes = {self.node_zone.shape[0]}, got {into.dtype} {into.shape}"
            )
        if self.node_zone.size and (
            self.node_zone.min() < 0 or self.node_zone.max() >= into.shape[1]
        ):
            raise ValueError("EtaBounds.node_zone: zones must be in [0, n_zones)")
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"EtaBounds.scale: expected a finite number > 0, got {self.scale}")
        into = into.view()
        into.flags.writeable = False
        object.__setattr__(self, "into_node_s", into)
        object.__setattr__(self, "scale", float(self.scale))

    @property
    def n_zones(self) -> int:
        return int(self.into_node_s.shape[1])

    def scaled(self, scale: float) -> EtaBounds:
        """The same bounds for ``travel_time`` scaled by ``scale`` (a congestion factor >= 0
        applied to the table the bounds came from); shares the arrays."""
        obj = object.__new__(EtaBounds)
        obj.__dict__.update(node_zone=self.node_zone, into_node_s=self.into_node_s)
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"EtaBounds.scale: expected a finite number > 0, got {scale}")
        obj.__dict__["scale"] = float(scale)
        return obj


@dataclass(frozen=True, eq=False)
class MatchRequest:
    """A snapshot of the market at one decision time, for one shard.

    Pickup ETAs come from :meth:`pickup_eta` (backed by the city's travel-time table in the
    simulator) or, when the request crossed a wire, from the precomputed ``candidates``.
    ``seed`` is the only randomness a matcher may use (for tie-breaks).
    """

    decision_time: float
    batch_id: int
    shard_id: int
    requests: OpenRequests
    drivers: CandidateDrivers
    max_pickup_eta_s: float
    seed: int
    travel_time: TravelTimeFn | None = None
    candidates: CandidatePairs | None = None
    max_speed_mps: float = float("inf")
    """An upper bound on road speed: a driver ``d`` metres away (straight line) needs at least
    ``d / max_speed_mps`` seconds, which lets candidate search prune by distance."""
    api_version: int = API_VERSION
    eta_bounds: EtaBounds | None = None
    """Optional zone lower bounds on ``travel_time`` (see :class:`EtaBounds`): with them,
    candidate search evaluates only the drivers of zones that could hold a request's k
    nearest. Not part of the wire form (it is the simulator's knowledge of its table)."""

    def __post_init__(self) -> None:
        if self.travel_time is None and self.candidates is None:
            raise ValueError("MatchRequest: needs travel_time or precomputed candidates")
        if not self.max_pickup_eta_s > 0:
            raise ValueError(
                f"MatchRequest.max_pickup_eta_s: must be > 0, got {self.max_pickup_eta_s}"
            )

    def pickup_eta(self, driver_row: np.ndarray, request_row: np.ndarray) -> np.ndarray:
        """Seconds from ``decision_time`` until each driver row reaches each request's pickup.

        Elementwise over broadcast row-index arrays.
        """
        if self.travel_time is None:
            return self._eta_from_candidates(np.asarray(driver_row), np.asarray(request_row))
        d = np.asarray(driver_row, dtype=np.int64)
        r = np.asarray(request_row, dtype=np.int64)
        wait = np.maximum(self.drivers.free_at[d] - self.decision_time, 0.0)
        return wait + self.travel_time(self.drivers.node[d], self.requests.pickup_node[r])

    def _eta_from_candidates(self, d: np.ndarray, r: np.ndarray) -> np.ndarray:
        # Pairs the simulator did not send are out of range: infinite ETA.
        sorted_keys, sorted_eta = self._candidate_index
        n_drv = max(len(self.drivers), 1)
        want = np.asarray(r, dtype=np.int64) * n_drv + np.asarray(d, dtype=np.int64)
        out = np.full(want.shape, np.inf)
        if len(sorted_keys):
            pos = np.minimum(np.searchsorted(sorted_keys, want), len(sorted_keys) - 1)
            hit = sorted_keys[pos] == want
            out[hit] = sorted_eta[pos[hit]]
        return out

    @cached_property
    def _candidate_index(self) -> tuple[np.ndarray, np.ndarray]:
        # (request_row * n_drivers + driver_row) sorted, and the ETAs in that order: built once
        # per request, not on every pickup_eta call. cached_property writes the instance
        # __dict__ directly, so this works on the frozen dataclass and is not a field.
        assert self.candidates is not None
        c = self.candidates
        n_drv = max(len(self.drivers), 1)
        keys = c.request_row * n_drv + c.driver_row
        order = np.argsort(keys, kind="stable")
        sorted_keys, sorted_eta = keys[order], c.pickup_eta_s[order]
        sorted_keys.flags.writeable = False
        sorted_eta.flags.writeable = False
        return sorted_keys, sorted_eta


@dataclass(frozen=True, eq=False)
class MatchResponse:
    """The matcher's decision: assignments (one row each) and explained non-assignments."""

    request_id: np.ndarray
    driver_id: np.ndarray
    pickup_eta_s: np.ndarray
    unmatched_id: np.ndarray
    unmatched_reason: np.ndarray
    diagnostics: Mapping[str, Any] = field(default_factory=dict)
    api_version: int = API_VERSION

    def __post_init__(self) -> None:
        _freeze_columns_no_id(
            self,
            {"request_id": np.int64, "driver_id": np.int64, "pickup_eta_s": np.float64},
            "MatchResponse",
        )
        _freeze_columns_no_id(
            self, {"unmatched_id": np.int64, "unmatched_reason": np.int8}, "MatchResponse"
        )

    @property
    def n_assigned(self) -> int:
        return int(self.request_id.shape[0])

    @classmethod
    def unchecked(
        cls,
        diagnostics: Mapping[str, Any] | None = None,
        *,
        read_only: bool = False,
        **columns: np.ndarray,
    ) -> MatchResponse:
        """Build without validation from arrays of the right dtypes (int64 ids, float64 ETAs,
        int8 reasons), for matchers on the hot path; the arrays become read-only
        (``read_only``: they are already, so no flag is read)."""
        extra = {"diagnostics": diagnostics or {}, "api_version": API_VERSION}
        return unchecked_message(cls, columns, extra, read_only=read_only)

    @classmethod
    def empty(cls) -> MatchResponse:
        """Nothing assigned, nothing to explain (valid only for a request with no open requests)."""
        z = np.zeros(0)
        return cls(z, z, z, z, z)


class MatcherUnavailable(RuntimeError):
    """The matcher cannot be reached (a service that is down), after its own retries.

    The one failure a run survives: the engine records a matcher service outage (a ``fault``
    event) and leaves the decision's requests open for the next decision, which asks again.
    Every other exception from :meth:`Matcher.match` stops the run.
    """


@runtime_checkable
class Matcher(Protocol):
    """Anything that turns a :class:`MatchRequest` into a :class:`MatchResponse`.

    The constructor stores parameters only; all work happens in :meth:`match`. ``optimal``
    says whether the matcher claims a maximum matching of least total :meth:`pair_costs`
    (the conformance suite then checks that claim against brute force on tiny instances).
    :class:`matching.matchers.MatcherBase` gives the defaults (not optimal; costs are the
    pickup ETAs).
    """

    optimal: ClassVar[bool]

    def match(self, request: MatchRequest) -> MatchResponse:
        """The decision for one snapshot."""
        ...

    def get_params(self) -> dict[str, Any]:
        """The constructor's parameters, JSON-serialisable (they go into the manifest)."""
        ...

    def pair_costs(
        self,
        request: MatchRequest,
        request_row: np.ndarray,
        driver_row: np.ndarray,
        pickup_eta_s: np.ndarray,
    ) -> np.ndarray:
        """The cost of each (request row, driver row) pair that an optimal matcher minimises
        in total (seconds; by default the pickup ETA)."""
        ...

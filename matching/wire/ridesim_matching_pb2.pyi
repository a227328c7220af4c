# ruff: noqa
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DriverState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DRIVER_STATE_IDLE: _ClassVar[DriverState]
    DRIVER_STATE_TO_PICKUP: _ClassVar[DriverState]
    DRIVER_STATE_ON_TRIP: _ClassVar[DriverState]
    DRIVER_STATE_REPOSITIONING: _ClassVar[DriverState]

class UnmatchedReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    UNMATCHED_REASON_UNSPECIFIED: _ClassVar[UnmatchedReason]
    UNMATCHED_REASON_NO_DRIVERS: _ClassVar[UnmatchedReason]
    UNMATCHED_REASON_NO_DRIVER_IN_RANGE: _ClassVar[UnmatchedReason]
    UNMATCHED_REASON_OUTCOMPETED: _ClassVar[UnmatchedReason]
    UNMATCHED_REASON_DEFERRED: _ClassVar[UnmatchedReason]
DRIVER_STATE_IDLE: DriverState
DRIVER_STATE_TO_PICKUP: DriverState
DRIVER_STATE_ON_TRIP: DriverState
DRIVER_STATE_REPOSITIONING: DriverState
UNMATCHED_REASON_UNSPECIFIED: UnmatchedReason
UNMATCHED_REASON_NO_DRIVERS: UnmatchedReason
UNMATCHED_REASON_NO_DRIVER_IN_RANGE: UnmatchedReason
UNMATCHED_REASON_OUTCOMPETED: UnmatchedReason
UNMATCHED_REASON_DEFERRED: UnmatchedReason

class OpenRequests(_message.Message):
    __slots__ = ("id", "pickup_node", "dropoff_node", "pickup_x", "pickup_y", "dropoff_x", "dropoff_y", "requested_at", "quoted_price", "patience_s")
    ID_FIELD_NUMBER: _ClassVar[int]
    PICKUP_NODE_FIELD_NUMBER: _ClassVar[int]
    DROPOFF_NODE_FIELD_NUMBER: _ClassVar[int]
    PICKUP_X_FIELD_NUMBER: _ClassVar[int]
    PICKUP_Y_FIELD_NUMBER: _ClassVar[int]
    DROPOFF_X_FIELD_NUMBER: _ClassVar[int]
    DROPOFF_Y_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_AT_FIELD_NUMBER: _ClassVar[int]
    QUOTED_PRICE_FIELD_NUMBER: _ClassVar[int]
    PATIENCE_S_FIELD_NUMBER: _ClassVar[int]
    id: _containers.RepeatedScalarFieldContainer[int]
    pickup_node: _containers.RepeatedScalarFieldContainer[int]
    dropoff_node: _containers.RepeatedScalarFieldContainer[int]
    pickup_x: _containers.RepeatedScalarFieldContainer[float]
    pickup_y: _containers.RepeatedScalarFieldContainer[float]
    dropoff_x: _containers.RepeatedScalarFieldContainer[float]
    dropoff_y: _containers.RepeatedScalarFieldContainer[float]
    requested_at: _containers.RepeatedScalarFieldContainer[float]
    quoted_price: _containers.RepeatedScalarFieldContainer[float]
    patience_s: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, id: _Optional[_Iterable[int]] = ..., pickup_node: _Optional[_Iterable[int]] = ..., dropoff_node: _Optional[_Iterable[int]] = ..., pickup_x: _Optional[_Iterable[float]] = ..., pickup_y: _Optional[_Iterable[float]] = ..., dropoff_x: _Optional[_Iterable[float]] = ..., dropoff_y: _Optional[_Iterable[float]] = ..., requested_at: _Optional[_Iterable[float]] = ..., quoted_price: _Optional[_Iterable[float]] = ..., patience_s: _Optional[_Iterable[float]] = ...) -> None: ...

class CandidateDrivers(_message.Message):
    __slots__ = ("id", "node", "x", "y", "state", "free_at", "earnings", "online_s")
    ID_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    FREE_AT_FIELD_NUMBER: _ClassVar[int]
    EARNINGS_FIELD_NUMBER: _ClassVar[int]
    ONLINE_S_FIELD_NUMBER: _ClassVar[int]
    id: _containers.RepeatedScalarFieldContainer[int]
    node: _containers.RepeatedScalarFieldContainer[int]
    x: _containers.RepeatedScalarFieldContainer[float]
    y: _containers.RepeatedScalarFieldContainer[float]
    state: _containers.RepeatedScalarFieldContainer[DriverState]
    free_at: _containers.RepeatedScalarFieldContainer[float]
    earnings: _containers.RepeatedScalarFieldContainer[float]
    online_s: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, id: _Optional[_Iterable[int]] = ..., node: _Optional[_Iterable[int]] = ..., x: _Optional[_Iterable[float]] = ..., y: _Optional[_Iterable[float]] = ..., state: _Optional[_Iterable[_Union[DriverState, str]]] = ..., free_at: _Optional[_Iterable[float]] = ..., earnings: _Optional[_Iterable[float]] = ..., online_s: _Optional[_Iterable[float]] = ...) -> None: ...

class CandidatePairs(_message.Message):
    __slots__ = ("request_row", "driver_row", "pickup_eta_s")
    REQUEST_ROW_FIELD_NUMBER: _ClassVar[int]
    DRIVER_ROW_FIELD_NUMBER: _ClassVar[int]
    PICKUP_ETA_S_FIELD_NUMBER: _ClassVar[int]
    request_row: _containers.RepeatedScalarFieldContainer[int]
    driver_row: _containers.RepeatedScalarFieldContainer[int]
    pickup_eta_s: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, request_row: _Optional[_Iterable[int]] = ..., driver_row: _Optional[_Iterable[int]] = ..., pickup_eta_s: _Optional[_Iterable[float]] = ...) -> None: ...

class MatchRequest(_message.Message):
    __slots__ = ("api_version", "decision_time", "batch_id", "shard_id", "requests", "drivers", "max_pickup_eta_s", "seed", "max_speed_mps", "candidates")
    API_VERSION_FIELD_NUMBER: _ClassVar[int]
    DECISION_TIME_FIELD_NUMBER: _ClassVar[int]
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    SHARD_ID_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    DRIVERS_FIELD_NUMBER: _ClassVar[int]
    MAX_PICKUP_ETA_S_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    MAX_SPEED_MPS_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    api_version: int
    decision_time: float
    batch_id: int
    shard_id: int
    requests: OpenRequests
    drivers: CandidateDrivers
    max_pickup_eta_s: float
    seed: int
    max_speed_mps: float
    candidates: CandidatePairs
    def __init__(self, api_version: _Optional[int] = ..., decision_time: _Optional[float] = ..., batch_id: _Optional[int] = ..., shard_id: _Optional[int] = ..., requests: _Optional[_Union[OpenRequests, _Mapping]] = ..., drivers: _Optional[_Union[CandidateDrivers, _Mapping]] = ..., max_pickup_eta_s: _Optional[float] = ..., seed: _Optional[int] = ..., max_speed_mps: _Optional[float] = ..., candidates: _Optional[_Union[CandidatePairs, _Mapping]] = ...) -> None: ...

class MatchResponse(_message.Message):
    __slots__ = ("api_version", "request_id", "driver_id", "pickup_eta_s", "unmatched_id", "unmatched_reason", "diagnostics_json")
    API_VERSION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    DRIVER_ID_FIELD_NUMBER: _ClassVar[int]
    PICKUP_ETA_S_FIELD_NUMBER: _ClassVar[int]
    UNMATCHED_ID_FIELD_NUMBER: _ClassVar[int]
    UNMATCHED_REASON_FIELD_NUMBER: _ClassVar[int]
    DIAGNOSTICS_JSON_FIELD_NUMBER: _ClassVar[int]
    api_version: int
    request_id: _containers.RepeatedScalarFieldContainer[int]
    driver_id: _containers.RepeatedScalarFieldContainer[int]
    pickup_eta_s: _containers.RepeatedScalarFieldContainer[float]
    unmatched_id: _containers.RepeatedScalarFieldContainer[int]
    unmatched_reason: _containers.RepeatedScalarFieldContainer[UnmatchedReason]
    diagnostics_json: str
    def __init__(self, api_version: _Optional[int] = ..., request_id: _Optional[_Iterable[int]] = ..., driver_id: _Optional[_Iterable[int]] = ..., pickup_eta_s: _Optional[_Iterable[float]] = ..., unmatched_id: _Optional[_Iterable[int]] = ..., unmatched_reason: _Optional[_Iterable[_Union[UnmatchedReason, str]]] = ..., diagnostics_json: _Optional[str] = ...) -> None: ...

class GetParamsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetParamsResponse(_message.Message):
    __slots__ = ("api_version", "params_json")
    API_VERSION_FIELD_NUMBER: _ClassVar[int]
    PARAMS_JSON_FIELD_NUMBER: _ClassVar[int]
    api_version: int
    params_json: str
    def __init__(self, api_version: _Optional[int] = ..., params_json: _Optional[str] = ...) -> None: ...

class DescribeRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DescribeResponse(_message.Message):
    __slots__ = ("api_version", "name", "params_json")
    API_VERSION_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PARAMS_JSON_FIELD_NUMBER: _ClassVar[int]
    api_version: int
    name: str
    params_json: str
    def __init__(self, api_version: _Optional[int] = ..., name: _Optional[str] = ..., params_json: _Optional[str] = ...) -> None: ...

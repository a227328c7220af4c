"""Matchers by name: the built-ins, and any user class by import path, with no change to ridesim.

A scenario names its matcher (``dispatch.matcher``) and its parameters (``dispatch.params``);
:func:`make_matcher` turns them into a :class:`~matching.api.Matcher` or raises
:class:`~cities.errors.InputError` naming the field at fault.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from cities.errors import InputError
from matching.api import Matcher

T = TypeVar("T", bound=type)

_REGISTRY: dict[str, type] = {}


def register(name: str) -> Callable[[T], T]:
    """Class decorator: make a matcher class available as ``name``."""

    def deco(cls: T) -> T:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"matcher name {name!r} is already registered to {_REGISTRY[name]!r}")
        _REGISTRY[name] = cls
        return cls

    return deco


def _load_builtins() -> None:
    # Imported here, not at module top: the built-in modules import `register` from this one.
    import matching.matchers  # noqa: F401


def available() -> list[str]:
    """Names of the registered matchers, sorted."""
    _load_builtins()
    return sorted(_REGISTRY)


def matcher_class(name: str, *, source: str = "", field: str = "dispatch.matcher") -> type:
    """The class a matcher name or import path ``package.module:Class`` refers to."""
    _load_builtins()
    if not isinstance(name, str):
        raise InputError(source, field, f"expected a matcher name (string), got {name!r}")
    if name in _REGISTRY:
        return _REGISTRY[name]
    if ":" not in name:
        known = ", ".join(available())
        raise InputError(
            source, field,
            f"unknown matcher {name!r}; known: {known}, or an import path 'package.module:Class'",
        )
    module_name, _, attr = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # any failure inside a user's module is their input error
        raise InputError(source, field, f"cannot import module {module_name!r} for matcher "
                         f"{name!r}: {type(e).__name__}: {e}") from e
    obj: Any = module
    for part in attr.split("."):
        if not part or not hasattr(obj, part):
            raise InputError(source, field, f"module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not isinstance(obj, type) or not callable(getattr(obj, "match", None)) or not callable(
        getattr(obj, "get_params", None)
    ):
        raise InputError(source, field, f"{name!r} is not a matcher class "
                         "(needs match(request) and get_params())")
    return obj


def make_matcher(
    name: str, params: Mapping[str, Any] | None = None, *, source: str = "",
    field: str = "dispatch.matcher",
) -> Matcher:
    """Build a matcher from its registered name (or import path) and parameters."""
    cls = matcher_class(name, source=source, field=field)
    params_field = f"{field.rpartition('.')[0]}.params" if "." in field else "params"
    if params is None:
        params = {}
    if not isinstance(params, Mapping) or not all(isinstance(k, str) for k in params):
        raise InputError(source, params_field, f"expected a table of parameters, got {params!r}")
    try:
        matcher = cls(**dict(params))
    except (TypeError, ValueError) as e:
        raise InputError(source, params_field, f"bad parameters for matcher {name!r}: {e}") from e
    if not isinstance(matcher, Matcher):
        raise InputError(source, field, f"{name!r} does not implement the Matcher protocol")
    return matcher


def matcher_params(matcher: Matcher) -> dict[str, Any]:
    """``matcher.get_params()``, checked to be a JSON-serialisable dict with string keys.

    Returns the JSON round trip (tuples become lists), which is what a manifest records.
    """
    params = matcher.get_params()
    if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
        raise TypeError(f"{type(matcher).__name__}.get_params(): expected a dict with string "
                        f"keys, got {params!r}")
    try:
        text = json.dumps(params, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{type(matcher).__name__}.get_params() is not JSON-serialisable: {e}"
                        ) from e
    return json.loads(text)

"""Matchers by name: the built-ins, and any user class by import path, with no change to ridesim.

A scenario names its matcher (``dispatch.matcher``) and its parameters (``dispatch.params``);
:func:`make_matcher` turns them into a :class:`~matching.api.Matcher` or raises
:class:`~core.errors.InputError` naming the field at fault.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from core.errors import InputError
from matching.api import Matcher
from matching.plugins import build_plugin, plugin_params, resolve_plugin

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
    return resolve_plugin(
        name, _REGISTRY, kind="matcher", methods=("match", "get_params"), source=source, field=field
    )


def make_matcher(
    name: str,
    params: Mapping[str, Any] | None = None,
    *,
    source: str = "",
    field: str = "dispatch.matcher",
) -> Matcher:
    """Build a matcher from its registered name (or import path) and parameters.

    Errors are :class:`InputError`: an unknown name or a bad import path on ``field``, bad
    parameters (the constructor's TypeError or ValueError) on the sibling ``params`` field.
    """
    cls = matcher_class(name, source=source, field=field)
    params_field = f"{field.rpartition('.')[0]}.params" if "." in field else "params"
    matcher = build_plugin(
        cls, params, kind="matcher", name=name, source=source, field=params_field
    )
    if not isinstance(matcher, Matcher):
        raise InputError(source, field, f"{name!r} does not implement the Matcher protocol")
    return matcher


def matcher_params(matcher: Matcher) -> dict[str, Any]:
    """``matcher.get_params()``, checked to be a JSON-serialisable dict with string keys.

    Returns the JSON round trip (tuples become lists), which is what a manifest records;
    raises TypeError otherwise.
    """
    return plugin_params(matcher)

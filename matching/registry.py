"""Matchers by name: the built-ins, and any user class by import path, with no change to ridesim.

A scenario names its matcher (``dispatch.matcher``) and its parameters (``dispatch.params``);
:func:`make_matcher` turns them into a :class:`~matching.api.Matcher` or raises
:class:`~core.errors.InputError` naming the field at fault. :data:`MATCHERS` is the
:class:`~matching.plugins.Registry` of this kind (the same pattern as the surge and
repositioning policies).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

from matching.api import Matcher
from matching.matchers import Assignment, BatchedGreedy, ImmediateGreedy
from matching.plugins import Registry, plugin_params

T = TypeVar("T", bound=type)

MATCHERS = Registry(
    "matcher",
    ("match", "get_params"),
    (Assignment, BatchedGreedy, ImmediateGreedy),
    field="dispatch.matcher",
    params_field="dispatch.params",
)
"""The registered matchers by name."""


def register(name: str) -> Callable[[T], T]:
    """Class decorator: make a matcher class available as ``name``."""
    return cast(Callable[[T], T], MATCHERS.register(name))


def available() -> list[str]:
    """Names of the registered matchers, sorted."""
    return MATCHERS.available()


def matcher_class(name: str, *, source: str = "", field: str = "dispatch.matcher") -> type:
    """The class a matcher name or import path ``package.module:Class`` refers to."""
    return MATCHERS.resolve(name, source=source, field=field)


def make_matcher(
    name: str,
    params: Mapping[str, Any] | None = None,
    *,
    source: str = "",
    field: str = "dispatch.matcher",
) -> Matcher:
    """Build a matcher from its registered name (or import path) and parameters.

    Errors are :class:`InputError`: an unknown name or a bad import path on ``field``, bad
    parameters on the sibling ``params`` field (``params.<name>`` when the matcher declares
    its parameters). Running needs only ``match`` and ``get_params``; the conformance suite
    (:mod:`matching.checks`) asks for the whole :class:`~matching.api.Matcher` protocol.
    """
    params_field = f"{field.rpartition('.')[0]}.params" if "." in field else "params"
    matcher = MATCHERS.make(name, params, source=source, field=field, params_field=params_field)
    return cast(Matcher, matcher)


def matcher_params(matcher: Any) -> dict[str, Any]:
    """``matcher.get_params()``, checked to be a JSON-serialisable dict with string keys.

    Returns the JSON round trip (tuples become lists), which is what a manifest records;
    raises TypeError otherwise.
    """
    return plugin_params(matcher)

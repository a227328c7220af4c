"""Plug-ins by name or import path: matchers, surge policies, repositioning policies.

A scenario names a plug-in with a registered name (``"assignment"``) or an import path
(``"mypkg.mymodule:MyClass"``) plus a table of constructor parameters. These helpers turn that
into an instance, or raise :class:`~core.errors.InputError` naming the field at fault.
"""

from __future__ import annotations

import functools
import importlib
import json
from collections.abc import Callable, Mapping
from typing import Any

from core.errors import InputError


def resolve_plugin(
    name: Any,
    builtins: Mapping[str, type],
    *,
    kind: str,
    methods: tuple[str, ...],
    source: str = "",
    field: str = "",
) -> type:
    """The class a registered ``name`` or import path ``package.module:Class`` refers to; it
    must define every method in ``methods``."""
    if not isinstance(name, str):
        raise InputError(source, field, f"expected a {kind} name (string), got {name!r}")
    if name in builtins:
        return builtins[name]
    if ":" not in name:
        known = ", ".join(sorted(builtins))
        raise InputError(
            source,
            field,
            f"unknown {kind} {name!r}; known: {known}, or an import path 'package.module:Class'",
        )
    module_name, _, attr = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # any failure inside a user's module is their input error
        raise InputError(
            source,
            field,
            f"cannot import module {module_name!r} for {kind} {name!r}: {type(e).__name__}: {e}",
        ) from e
    obj: Any = module
    for part in attr.split("."):
        if not part or not hasattr(obj, part):
            raise InputError(source, field, f"module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not isinstance(obj, type) or not all(callable(getattr(obj, m, None)) for m in methods):
        needs = " and ".join(f"{m}()" for m in methods)
        raise InputError(source, field, f"{name!r} is not a {kind} class (needs {needs})")
    return obj


def build_plugin(
    cls: type, params: Any, *, kind: str, name: str, source: str = "", field: str = ""
) -> Any:
    """``cls(**params)``; bad parameters become an InputError on ``field``."""
    if params is None:
        params = {}
    if not isinstance(params, Mapping) or not all(isinstance(k, str) for k in params):
        raise InputError(source, field, f"expected a table of parameters, got {params!r}")
    try:
        return cls(**dict(params))
    except (TypeError, ValueError) as e:
        raise InputError(source, field, f"bad parameters for {kind} {name!r}: {e}") from e


def plugin_params(obj: Any) -> dict[str, Any]:
    """``obj.get_params()``, checked to be a JSON-serialisable dict with string keys; returns
    the JSON round trip (tuples become lists), which is what a manifest records."""
    params = obj.get_params()
    kind = type(obj).__name__
    if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
        raise TypeError(f"{kind}.get_params(): expected a dict with string keys, got {params!r}")
    try:
        text = json.dumps(params, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{kind}.get_params() is not JSON-serialisable: {e}") from e
    return json.loads(text)


def make_plugin(
    name: str,
    params: Any,
    builtins: Mapping[str, type],
    *,
    kind: str,
    methods: tuple[str, ...],
    source: str = "",
    field: str,
    params_field: str,
) -> Any:
    """Resolve ``name`` (see :func:`resolve_plugin`) and build it with ``params``."""
    cls = resolve_plugin(name, builtins, kind=kind, methods=methods, source=source, field=field)
    return build_plugin(cls, params, kind=kind, name=name, source=source, field=params_field)


PluginSpec = str | tuple[str, dict[str, Any]] | Callable[[], Any]
"""How tests name a plug-in to check: a registered name, ``(name, params)``, or a factory."""


def spec_factory(spec: PluginSpec, make: Callable[..., Any]) -> Callable[[], Any]:
    """A zero-argument factory for ``spec``, building names with ``make(name, params)``."""
    if isinstance(spec, str):
        return functools.partial(make, spec, {})
    if isinstance(spec, tuple):
        name, params = spec
        return functools.partial(make, name, dict(params))
    return spec


def spec_label(spec: PluginSpec, make: Callable[..., Any]) -> str:
    """A short readable label for ``spec`` (test ids, failure messages)."""
    if isinstance(spec, str):
        return spec
    if isinstance(spec, tuple):
        name, params = spec
        inner = ",".join(f"{k}={params[k]}" for k in sorted(params))
        return f"{name}({inner})"
    if isinstance(spec, functools.partial) and spec.func is make:
        inner_spec = (spec.args[0], spec.args[1]) if len(spec.args) > 1 else spec.args[0]
        return spec_label(inner_spec, make)
    return getattr(spec, "__qualname__", None) or repr(spec)

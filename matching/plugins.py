"""One plug-in framework for matchers, surge policies and repositioning policies.

Every kind of plug-in follows one pattern:

* **Parameters are declared** as a pydantic model, the class attribute ``Params``. The
  :class:`Plugin` base validates the constructor's arguments against it, stores each as an
  attribute, and answers ``get_params()`` from it (JSON, ready for a manifest). A bad value is a
  :class:`ParamsError` naming the plug-in and the field. Classes that do not derive from
  :class:`Plugin` still work (a researcher's plain class with ``__init__`` and
  ``get_params``): their constructor's ``TypeError``/``ValueError`` is reported the same way.
* **One registry per kind** (:class:`Registry`): built-in classes by their ``name``, any other
  class by import path ``package.module:Class``; :meth:`Registry.make` turns a scenario's name
  and parameter table into an instance or raises :class:`~core.errors.InputError` on the field
  at fault (``dispatch.params.k``), so the CLI prints one line and exits 2.
* **One conformance harness** (:mod:`matching.conformance`) with per-kind checks
  (:mod:`matching.checks`, :mod:`matching.surge_checks`, :mod:`sim.reposition_checks`).
"""

from __future__ import annotations

import functools
import importlib
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, ValidationError

from core.errors import InputError

# ---------------------------------------------------------------------------------------------
# Declared parameters


class Params(BaseModel):
    """Base of every plug-in's parameter model: no unknown fields, immutable once built."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoParams(Params):
    """A plug-in without parameters."""


def _real_number(value: Any) -> Any:
    # pydantic's lax float accepts True and "3"; a plug-in parameter that is a number must be
    # given as one.
    if isinstance(value, bool) or isinstance(value, str | bytes):
        raise ValueError(f"expected a number, got {value!r}")
    return value


Number = Annotated[float, BeforeValidator(_real_number), Field(allow_inf_nan=False)]
"""A finite real number (int or float, not bool or str), stored as float."""

PositiveInt = Annotated[StrictInt, Field(ge=1)]
"""An integer >= 1 (not bool)."""


NonNegative = Annotated[Number, Field(ge=0)]
"""A finite number >= 0."""

Positive = Annotated[Number, Field(gt=0)]
"""A finite number > 0."""


class ParamsError(ValueError):
    """Bad constructor parameters: ``plugin`` (class name), ``field`` (dotted, may be empty)
    and ``problem`` (what was expected and found)."""

    def __init__(self, plugin: str, field: str, problem: str) -> None:
        self.plugin, self.field, self.problem = plugin, field, problem
        super().__init__(f"{plugin}: {field}: {problem}" if field else f"{plugin}: {problem}")


def _params_error(plugin: str, err: ValidationError) -> ParamsError:
    """The first problem of a pydantic error, phrased for a scenario author."""
    first = err.errors()[0]
    field = ".".join(str(p) for p in first.get("loc", ()))
    kind = first.get("type", "")
    if kind == "extra_forbidden":
        return ParamsError(plugin, field, "unknown parameter")
    if kind == "missing":
        return ParamsError(plugin, field, "required parameter missing")
    msg = str(first.get("msg", "invalid"))
    msg = msg.removeprefix("Value error, ")
    if "input" in first and kind not in ("value_error", "assertion_error"):
        msg = f"{msg[:1].lower()}{msg[1:]}, got {first['input']!r}"
    return ParamsError(plugin, field, msg)


class Plugin:
    """Base class of plug-ins whose parameters are declared in ``Params``.

    The constructor only validates and stores parameters (``self.<field>`` for each field of
    ``Params``, positional arguments in field order); ``get_params()`` returns them as JSON
    values. Subclasses that need more set-up (a lazily opened connection, say) extend
    ``__init__`` and call ``super().__init__(*args, **kwargs)`` first.
    """

    name: ClassVar[str] = ""
    """The registered name of a built-in (empty for a class named by import path)."""
    Params: ClassVar[type[Params]] = NoParams

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        fields = list(self.Params.model_fields)
        label = self.name or type(self).__name__
        if len(args) > len(fields):
            raise ParamsError(label, "", f"takes {len(fields)} parameters, got {len(args)}")
        for field, value in zip(fields, args, strict=False):
            if field in kwargs:
                raise ParamsError(label, field, "given twice")
            kwargs[field] = value
        try:
            params = self.Params(**kwargs)
        except ValidationError as e:
            raise _params_error(label, e) from None
        self._params = params
        for field in fields:
            setattr(self, field, getattr(params, field))

    def get_params(self) -> dict[str, Any]:
        """The parameters as given (after validation), JSON-serialisable."""
        return self._params.model_dump(mode="json")

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({inner})"


# ---------------------------------------------------------------------------------------------
# Registries


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
    """``cls(**params)``; bad parameters become an InputError on ``field`` (``field.<param>``
    when the plug-in says which parameter)."""
    if params is None:
        params = {}
    if not isinstance(params, Mapping) or not all(isinstance(k, str) for k in params):
        raise InputError(source, field, f"expected a table of parameters, got {params!r}")
    try:
        return cls(**dict(params))
    except ParamsError as e:
        where = f"{field}.{e.field}" if field and e.field else (field or e.field)
        raise InputError(source, where, f"bad parameters for {kind} {name!r}: {e.problem}") from e
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
    loaded: dict[str, Any] = json.loads(text)
    return loaded


class Registry(Mapping[str, type]):
    """The plug-ins of one kind by name: built-ins (by their ``name``) and ones registered later.

    ``kind`` names the kind in messages ("matcher"); ``methods`` are what a class must define;
    ``field`` / ``params_field`` are the scenario fields that name a plug-in and its parameters.
    A registry is a read-only mapping from name to class.
    """

    def __init__(
        self,
        kind: str,
        methods: tuple[str, ...],
        builtins: tuple[type, ...] = (),
        *,
        field: str,
        params_field: str,
    ) -> None:
        self.kind, self.methods = kind, methods
        self.field, self.params_field = field, params_field
        self._classes: dict[str, type] = {}
        for cls in builtins:
            self.register(getattr(cls, "name", ""))(cls)

    def __getitem__(self, name: str) -> type:
        return self._classes[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._classes)

    def __len__(self) -> int:
        return len(self._classes)

    def register(self, name: str) -> Callable[[type], type]:
        """Class decorator: make ``cls`` available as ``name`` (a taken name is an error)."""
        if not isinstance(name, str) or not name or ":" in name:
            raise ValueError(
                f"{self.kind} name: expected a non-empty name without ':', got {name!r}"
            )

        def deco(cls: type) -> type:
            taken = self._classes.get(name)
            if taken is not None and taken is not cls:
                raise ValueError(f"{self.kind} name {name!r} is already registered to {taken!r}")
            self._classes[name] = cls
            return cls

        return deco

    def available(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._classes)

    def resolve(self, name: Any, *, source: str = "", field: str | None = None) -> type:
        """The class of a registered name or import path (see :func:`resolve_plugin`)."""
        return resolve_plugin(
            name,
            self._classes,
            kind=self.kind,
            methods=self.methods,
            source=source,
            field=self.field if field is None else field,
        )

    def make(
        self,
        name: Any,
        params: Any = None,
        *,
        source: str = "",
        field: str | None = None,
        params_field: str | None = None,
    ) -> Any:
        """An instance of ``name`` built with ``params``; InputError on the field at fault."""
        cls = self.resolve(name, source=source, field=field)
        return build_plugin(
            cls,
            params,
            kind=self.kind,
            name=name,
            source=source,
            field=self.params_field if params_field is None else params_field,
        )


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


# ---------------------------------------------------------------------------------------------
# Naming plug-ins in tests

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
    label: str = getattr(spec, "__qualname__", None) or repr(spec)
    return label

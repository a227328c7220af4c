"""The generic conformance harness behind every plug-in kind's suite.

A kind (matchers, surge policies, repositioning policies) declares its checks, each a function
of a zero-argument factory that returns a fresh plug-in, and builds one :class:`Suite` from
them. The suite runs them (:meth:`Suite.run`, an ``AssertionError`` naming the failed check,
a crash inside the plug-in included), or expands them into one pytest case each
(:meth:`Suite.parametrize`). The checks every kind shares live here too: ``get_params()`` is
JSON, and a plug-in rebuilt from its ``get_params()`` behaves identically.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from matching.plugins import PluginSpec, plugin_params, spec_factory, spec_label

Factory = Callable[[], Any]
Check = Callable[[Factory], None]


def check_get_params_json(factory: Factory) -> None:
    """get_params() returns a JSON-serialisable dict with string keys."""
    try:
        plugin_params(factory())
    except TypeError as e:
        raise AssertionError(str(e)) from e


def assert_rebuilds(
    factory: Factory,
    exercise: Callable[[Any], list[Any]],
    same: Callable[[Any, Any, str], None],
) -> tuple[Any, Any]:
    """``type(p)(**p.get_params())`` has the same parameters and, on ``exercise`` (a list of
    results from calling the plug-in on fixed inputs), the same results (``same(a, b, what)``
    asserts equality); ``get_params()`` does not change by being used. Returns both."""
    p = factory()
    params = plugin_params(p)
    twin = type(p)(**params)
    assert plugin_params(twin) == params, (
        f"{type(p).__name__}(**get_params()).get_params() = {plugin_params(twin)}, "
        f"expected {params}"
    )
    for a, b in zip(exercise(p), exercise(twin), strict=True):
        same(a, b, "rebuilt from get_params()")
    assert plugin_params(p) == params, "get_params() changed after use"
    return p, twin


class Suite:
    """The checks of one plug-in kind.

    ``kind`` names it in messages; ``make(name, params)`` builds a plug-in from a registry name
    (for specs given by name); ``checks`` apply to every plug-in of the kind and
    ``extra(plugin)`` returns the checks that apply to that one only (an optimal matcher's
    brute-force agreement, say).
    """

    def __init__(
        self,
        kind: str,
        make: Callable[..., Any],
        checks: Sequence[Check],
        extra: Callable[[Any], Sequence[Check]] | None = None,
    ) -> None:
        self.kind, self.make = kind, make
        self.checks = list(checks)
        self.extra = extra

    def checks_for(self, factory: Factory) -> list[tuple[str, Check]]:
        """The checks that apply to the plug-in ``factory`` builds, as (name, check)."""
        checks = list(self.checks)
        if self.extra is not None:
            checks += list(self.extra(factory()))
        return [(c.__name__, c) for c in checks]

    def factory(self, spec: PluginSpec) -> Factory:
        """A zero-argument factory for a spec (a name, ``(name, params)`` or a factory)."""
        return spec_factory(spec, self.make)

    def label(self, spec: PluginSpec) -> str:
        """A short readable label for a spec (test ids, failure messages)."""
        return spec_label(spec, self.make)

    def run(self, factory: Factory) -> None:
        """Run every applicable check; raise AssertionError naming the first that fails (a
        plug-in that raises instead is reported the same way, with its exception)."""
        for name, check in self.checks_for(factory):
            try:
                check(factory)
            except AssertionError as e:
                raise AssertionError(f"{name} failed for {self.label(factory)}: {e}") from e
            except Exception as e:  # a crash inside the plug-in fails the check it happened in
                raise AssertionError(
                    f"{name} failed for {self.label(factory)}: {type(e).__name__}: {e}"
                ) from e

    def parametrize(self, specs: Sequence[PluginSpec], argname: str) -> Any:
        """A ``pytest.mark.parametrize`` over every (plug-in, check) pair, one case each; the
        decorated test takes ``argname`` (the factory) and ``check``."""
        import pytest  # deferred: only the test suite needs pytest

        cases, ids = [], []
        for spec in specs:
            factory = self.factory(spec)
            for name, check in self.checks_for(factory):
                cases.append((factory, check))
                ids.append(f"{self.label(spec)}-{name}")
        return pytest.mark.parametrize((argname, "check"), cases, ids=ids)

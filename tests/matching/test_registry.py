"""The matcher registry: names, import paths, parameters, and the errors users see."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.errors import InputError
from matching.checks import check_matcher, line_instance, random_instance
from matching.matchers import Assignment
from matching.registry import available, make_matcher, matcher_params, register

HERE = Path(__file__).parent


def test_available_sorted_builtins():
    """available() lists the built-in names, sorted."""
    names = available()
    assert names == sorted(names)
    assert {"assignment", "batched_greedy", "immediate_greedy"} <= set(names)


def test_make_builtin_with_params():
    """A built-in by name gets its parameters; get_params returns them."""
    m = make_matcher("assignment", {"backend": "ortools", "k": 7})
    assert isinstance(m, Assignment)
    assert matcher_params(m) == {
        "backend": "ortools",
        "k": 7,
        "wait_weight": 0.0,
        "fairness_weight_s": 0.0,
    }


def test_unknown_name_lists_known_and_import_path():
    """An unknown name names the source, field, the known names and the import-path form."""
    with pytest.raises(InputError) as e:
        make_matcher("hungarian", {}, source="scenarios/x.toml")
    err = e.value
    assert err.source == "scenarios/x.toml" and err.field == "dispatch.matcher"
    known = ", ".join(available())
    assert err.expected == (
        f"unknown matcher 'hungarian'; known: {known}, or an import path 'package.module:Class'"
    )
    assert str(err).startswith("scenarios/x.toml: dispatch.matcher: unknown matcher")


@pytest.mark.parametrize(
    ("params", "name", "needle"),
    [
        ({"k": 0}, "k", "greater than or equal to 1, got 0"),
        ({"k": True}, "k", "valid integer, got True"),
        ({"k": 2.5}, "k", "valid integer"),
        ({"backend": "gurobi"}, "backend", "'scipy' or 'ortools', got 'gurobi'"),
        ({"wait_weight": -1}, "wait_weight", "greater than or equal to 0"),
        ({"fairness_weight_s": float("nan")}, "fairness_weight_s", "finite"),
        ({"speed": 3}, "speed", "unknown parameter"),
    ],
)
def test_bad_params_are_input_errors_on_the_param(params, name, needle):
    """A bad declared parameter is an InputError on dispatch.params.<name> naming the matcher."""
    with pytest.raises(InputError, match=needle) as e:
        make_matcher("assignment", params, source="s.toml")
    assert e.value.field == f"dispatch.params.{name}"
    assert "matcher 'assignment'" in e.value.expected


def test_plain_class_constructor_errors_are_input_errors(monkeypatch):
    """A plain user class's TypeError (an unknown keyword) is an InputError on params."""
    monkeypatch.syspath_prepend(str(HERE))
    with pytest.raises(InputError, match="unexpected keyword") as e:
        make_matcher("custom_matcher:LatestFirst", {"speed": 3})
    assert e.value.field == "dispatch.params"


def test_declared_params_positional_and_repr():
    """Declared parameters may be given positionally (field order); repr shows them."""
    m = Assignment(5, "scipy")
    assert (m.k, m.backend) == (5, "scipy")
    assert repr(m) == ("Assignment(k=5, backend='scipy', wait_weight=0.0, fairness_weight_s=0.0)")
    with pytest.raises(ValueError, match="given twice"):
        Assignment(5, k=6)


def test_params_field_follows_matcher_field():
    """The params field sits next to the matcher field that was given."""
    with pytest.raises(InputError) as e:
        make_matcher("batched_greedy", {"k": -1}, field="shards.west.matcher")
    assert e.value.field == "shards.west.params.k"


def test_params_must_be_a_table():
    """Parameters that are not a mapping with string keys are rejected."""
    with pytest.raises(InputError, match="table of parameters"):
        make_matcher("batched_greedy", [("k", 3)])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("path", "needle"),
    [
        ("no_such_pkg.mod:Thing", "cannot import module 'no_such_pkg.mod'"),
        ("matching.checks:NoSuchClass", "has no attribute 'NoSuchClass'"),
        ("matching.checks:random_instance", "not a matcher class"),
        ("matching.checks:", "has no attribute ''"),
    ],
)
def test_bad_import_paths(path, needle):
    """Import paths that do not lead to a matcher class are InputErrors on the matcher field."""
    with pytest.raises(InputError, match=needle) as e:
        make_matcher(path, {}, source="s.toml")
    assert e.value.field == "dispatch.matcher"


def test_module_that_raises_on_import(tmp_path, monkeypatch):
    """A user module that fails while importing is reported, not leaked as a traceback."""
    (tmp_path / "broken_matcher_mod.py").write_text("raise RuntimeError('boom')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(InputError, match="RuntimeError: boom"):
        make_matcher("broken_matcher_mod:M", {})


def test_register_refuses_a_taken_name():
    """Registering another class under a built-in name is an error."""
    with pytest.raises(ValueError, match="already registered"):
        register("assignment")(type("Impostor", (), {}))


def test_matcher_params_rejects_non_json():
    """matcher_params raises TypeError when get_params() is not JSON-serialisable."""

    class Bad:
        def match(self, request: Any) -> Any: ...

        def get_params(self) -> dict[str, Any]:
            return {"arr": np.zeros(2)}

    with pytest.raises(TypeError, match="not JSON-serialisable"):
        matcher_params(Bad())


def test_plugin_by_import_path(monkeypatch):
    """A matcher defined in a module outside ridesim loads by 'module:Class' and conforms."""
    monkeypatch.syspath_prepend(str(HERE))
    m = make_matcher("custom_matcher:LatestFirst", {"k": 3})
    assert matcher_params(m) == {"k": 3}
    # The later request (id 1) is served first and takes the only driver.
    request = line_instance([0.0, 1.0], [0.5], 10.0, requested_at=[10.0, 20.0])
    assert m.match(request).request_id.tolist() == [1]
    check_matcher(lambda: make_matcher("custom_matcher:LatestFirst", {"k": 3}))


def test_plugin_package_written_by_user(tmp_path, monkeypatch):
    """A package.module:Class path from a fresh package works with no change to ridesim."""
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "mymodule.py").write_text(
        textwrap.dedent('''
        from matching.matchers import BatchedGreedy

        class MyMatcher(BatchedGreedy):
            """Batched greedy with a small default k."""

            def __init__(self, k: int = 2) -> None:
                super().__init__(k=k)
    ''')
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    m = make_matcher("mypkg.mymodule:MyMatcher", {})
    assert matcher_params(m) == {"k": 2}
    assert m.match(random_instance(1, 4, 4)).n_assigned > 0
    check_matcher(lambda: make_matcher("mypkg.mymodule:MyMatcher", {}))

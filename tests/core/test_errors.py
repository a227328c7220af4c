"""The input error type."""

from __future__ import annotations

import pickle

from core.errors import InputError, PluginFailure


def test_input_errors_survive_pickling_with_message_and_fields() -> None:
    """An InputError (also one of several problems, and a PluginFailure) pickled and loaded
    again (as a sweep's worker process sends it back) keeps its type, message and fields."""
    one = InputError("a.toml", "fleet.size", "expected a whole number >= 1, got 0")
    many = InputError.many("b.toml", [("x", "expected 1"), ("y", "expected 2")])
    plugin = PluginFailure("c.toml", "dispatch.matcher", "failed during the run: boom")
    for err in (one, many, plugin):
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is type(err)
        assert str(back) == str(err)
        assert (back.source, back.field, back.expected) == (err.source, err.field, err.expected)
        assert back.problems == err.problems
    assert isinstance(pickle.loads(pickle.dumps(plugin)), RuntimeError)

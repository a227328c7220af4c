"""The one entry point for randomness: named streams spawned from the scenario's root seed.

Every random draw in a run comes from one of these Generators. The streams are spawned from
one ``SeedSequence`` in a fixed order, so adding draws to one stream (say, rider behaviour)
never changes what another stream (say, demand) produces.
"""

from __future__ import annotations

import numpy as np

STREAMS = ("demand", "supply", "riders", "drivers", "matcher", "faults", "travel", "pricing")
"""Stream names in spawn order. Append new streams at the end: never reorder or remove."""


def spawn_streams(seed: int) -> dict[str, np.random.Generator]:
    """One independent Generator per named stream, all derived from ``seed``."""
    children = np.random.SeedSequence(seed).spawn(len(STREAMS))
    return {
        name: np.random.default_rng(child) for name, child in zip(STREAMS, children, strict=True)
    }


def seed_entropy(seed: int) -> str:
    """The root entropy recorded in the manifest (as a string: it may exceed 64 bits)."""
    return str(np.random.SeedSequence(seed).entropy)

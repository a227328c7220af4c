"""Fixtures every test package shares: the real data folder and one travel-time cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.shared import SHARED_DATA


@pytest.fixture
def shared_data() -> Path:
    """The real data folder beside the checkout, or skip when this clone has none."""
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"real data not available: {SHARED_DATA} does not exist (only in the dev workspace)"
        )
    return SHARED_DATA


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One travel-time cache for the whole test session (never the user's ~/.cache)."""
    return tmp_path_factory.mktemp("tt-cache")

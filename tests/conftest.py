"""Shared fixtures: one small synthetic FLAIR root per test session, and a copy to corrupt."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

#: Size of the session's synthetic dataset: small enough to keep the whole suite fast.
SYNTHETIC_KWARGS = dict(
    domains=4, areas_per_domain=2, patches_per_area=3, patch_size=64, dates=8, seed=0
)


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic FLAIR root, generated once per test session. Do not modify it."""
    from flairlc.data.synthetic import generate_dataset

    root = tmp_path_factory.mktemp("synthetic") / "flair"
    generate_dataset(root, **SYNTHETIC_KWARGS)
    return root


@pytest.fixture
def synthetic_copy(synthetic_root: Path, tmp_path: Path) -> Path:
    """A private copy of :func:`synthetic_root` that a test may corrupt."""
    return Path(shutil.copytree(synthetic_root, tmp_path / "flair"))

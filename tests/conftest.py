"""Shared fixtures: one small synthetic FLAIR root per test session, and a copy to corrupt."""

from __future__ import annotations

import os
import shutil
import sys
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


@pytest.fixture
def without_write_permission() -> list[str]:
    """A command prefix under which a folder owned by nobody with mode 555 is read-only.

    Empty for a normal user; as root, ``setpriv`` drops the capabilities that ignore permissions.
    Skips the test when root has no ``setpriv``.
    """
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("root without setpriv: no way to make a folder read-only")
    caps = "-dac_override,-dac_read_search"
    return [setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}"]


def make_read_only(folder: Path) -> None:
    """Give ``folder`` to nobody (as root) with mode 555, so that nothing can be created in it."""
    if os.geteuid() == 0:
        os.chown(folder, 65534, 65534)
    folder.chmod(0o555)


def flairlc_command() -> list[str]:
    """The installed ``flairlc`` command of this interpreter (or ``python -m flairlc.cli``)."""
    executable = Path(sys.executable).with_name("flairlc")
    return [str(executable)] if executable.exists() else [sys.executable, "-m", "flairlc.cli"]


@pytest.fixture(scope="module")
def one_torch_thread():
    """Small tensors: one thread is fastest and kinder to a shared machine (a module's tests)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

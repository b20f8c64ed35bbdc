"""Loading processes keep freed memory: a sample's fresh pages are not handed back every sample."""

from __future__ import annotations

import subprocess
import sys

import pytest

_SCRIPT = """
import os, sys
import numpy as np
if sys.argv[1] == "keep":
    from flairlc.data.memory import keep_freed_memory
    assert keep_freed_memory()
def resident_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
before = resident_mib()
block = np.ones(64 << 18, dtype=np.float32)  # 64 MiB, touched
del block
print(resident_mib() - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_freed_memory_is_kept_for_the_next_sample():
    def kept_mib(mode: str) -> float:
        return float(subprocess.run([sys.executable, "-c", _SCRIPT, mode], capture_output=True, text=True,
                                    check=True).stdout)

    assert kept_mib("default") < 8  # handed back to the system: the next sample faults it in again
    assert kept_mib("keep") > 60  # kept: the next sample reuses its pages (benchmarks/RESULTS.md)


def test_datamodule_workers_keep_freed_memory(synthetic_root):
    from flairlc.data.memory import loading_worker_init
    from flairlc.training import FlairDataModule

    for workers, expected in ((0, None), (1, loading_worker_init)):
        module = FlairDataModule(synthetic_root, batch_size=2, num_workers=workers, modalities=("aerial", "mask"))
        module.setup("fit")
        assert module.train_dataloader().worker_init_fn is expected

"""Start-up cost of mapping: fresh interpreters importing flairlc.mapping against torch + rasterio.

Each case runs in a new ``python -c`` process, timed from the parent (wall time: interpreter
start, imports, and for the map path the model's loading); the cases alternate within each repeat
so that a shared machine's load falls on all of them alike. Reported: the median over repeats, the
difference with ``import torch, rasterio`` (what any mapper pays) and the number of modules in
``sys.modules`` at the end. The map path is what ``flairlc map`` does before reading the raster:
import the mapper and load a checkpoint (a U-Net ResNet34 made here, random weights) as the
trained model on the CPU.

    python benchmarks/bench_import.py --repeats 5
    python benchmarks/bench_import.py --repeats 5 --src OLD_CHECKOUT/src   (another version)
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: Loads a checkpoint as ``flairlc map`` does, in this version or in one from before
#: flairlc.inference existed.
LOAD_MODEL = """
try:
    from flairlc.inference import load_trained_model as load
except ImportError:
    from flairlc.training.checkpoint import load_task as load
load({checkpoint!r})
"""

#: The baseline first: the differences are against it.
BASELINE = "torch + rasterio"


def cases(checkpoint: Path) -> dict[str, str]:
    """Name → code of each measured case."""
    return {
        BASELINE: "import torch, rasterio",
        "torch + rasterio + segmentation_models_pytorch": "import torch, rasterio, segmentation_models_pytorch",
        "flairlc.mapping": "import flairlc.mapping",
        "map path: flairlc.mapping + checkpoint loaded": "import flairlc.mapping" + LOAD_MODEL.format(checkpoint=str(checkpoint)),
    }


def run_once(code: str, env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds of a fresh interpreter running ``code``, and its module count at the end."""
    report = "\nimport sys\nprint(len(sys.modules))"
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code + report], capture_output=True, text=True, env=env, check=True)
    seconds = time.perf_counter() - start
    return seconds, int(out.stdout.strip().splitlines()[-1])


def make_checkpoint(folder: Path) -> Path:
    """A U-Net ResNet34 checkpoint (5 bands, 13 classes, random weights) written by this flairlc."""
    from flairlc.training.checkpoint import save_task
    from flairlc.training.task import SegmentationTask

    return save_task(SegmentationTask(model="unet"), folder / "unet.ckpt")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--src", type=Path, default=Path(__file__).resolve().parents[1] / "src",
                        help="the flairlc sources to import (default: this checkout's)")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(args.src.resolve())}
    with tempfile.TemporaryDirectory(prefix="bench-import-") as folder:
        measured = cases(make_checkpoint(Path(folder)))
        times: dict[str, list[float]] = {name: [] for name in measured}
        modules: dict[str, int] = {}
        for code in measured.values():  # one unmeasured run each: files in the page cache
            run_once(code, env)
        for _ in range(args.repeats):
            for name, code in measured.items():
                seconds, modules[name] = run_once(code, env)
                times[name].append(seconds)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"sources {args.src}, median of {args.repeats}")
    baseline = statistics.median(times[BASELINE])
    print(f"| case | wall time (s) | vs {BASELINE} (s) | modules |")
    print("|---|---:|---:|---:|")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.2f} | {median - baseline:+.2f} | {modules[name]} |")


if __name__ == "__main__":
    main()

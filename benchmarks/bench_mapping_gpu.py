"""End-to-end mapping throughput against the bare model's, on a GPU (or in small form on a CPU).

Issue #14's GPU target: the whole ``map`` pipeline (window reads ahead of the model by a background
thread, blending, writing) keeps the device busy, end-to-end >= 80 % of the bare model's
throughput at the same batch and window. This script measures both, in windows per second:

- bare model: random uint8 windows already on the device, ``predict_proba`` under inference mode
  (and bf16 autocast with ``--precision bf16``), synchronized;
- ``map_raster`` over a synthetic raster with the same window, batch, precision and channels-last
  network, counting the windows it predicted.

With ``--runtime compile`` the network is compiled by ``torch.compile``
(:func:`flairlc.mapping.runtime.compile_network`) and an untimed map compiles every batch shape
first, so neither measure includes compiling.

    python benchmarks/bench_mapping_gpu.py --device cuda --precision bf16 --size 8192 --window 1024 --batch-size 8
    python benchmarks/bench_mapping_gpu.py --device cuda --precision bf16 --size 8192 --window 1024 --batch-size 8 --runtime compile
    python benchmarks/bench_mapping_gpu.py --device cpu --size 1536 --window 512 --batch-size 2   # small form
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
import torch
from affine import Affine

from flairlc.mapping import MapOptions, map_raster
from flairlc.mapping.runtime import compile_network
from flairlc.training import SegmentationTask


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def bare_model(task: SegmentationTask, device: str, window: int, batch: int, precision: str, steps: int) -> float:
    """Windows per second of the model alone."""
    aerial = torch.randint(0, 256, (batch, 5, window, window), dtype=torch.uint8, device=device)
    times = []
    with torch.inference_mode(), torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        task.predict_proba({"aerial": aerial})  # warm-up
        for _ in range(steps):
            synchronize(device)
            start = time.perf_counter()
            task.predict_proba({"aerial": aerial})
            synchronize(device)
            times.append(time.perf_counter() - start)
    return batch / statistics.median(times)


def write_raster(path: Path, size: int) -> None:
    """A ``size``² 5-band uint8 raster of smooth random fields (EPSG:2154, 0.2 m)."""
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 256, (5, size // 64 + 2, size // 64 + 2)).astype(np.float32)
    data = torch.nn.functional.interpolate(torch.from_numpy(coarse)[None], size=(size, size), mode="bilinear")[0]
    data = (data.numpy() + rng.normal(0, 8, (5, size, size))).clip(0, 255).astype(np.uint8)
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=5, dtype="uint8", crs="EPSG:2154",
                       transform=Affine(0.2, 0, 843_000.0, 0, -0.2, 6_520_000.0), tiled=True, blockxsize=512, blockysize=512) as ds:
        ds.write(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", choices=("32", "bf16"), default="32")
    parser.add_argument("--size", type=int, default=1536, help="raster side, pixels")
    parser.add_argument("--window", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--prefetch", type=int, default=2)
    parser.add_argument("--read-threads", type=int, default=None, help="window reader threads (default: min(CPUs, 8))")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--encoder", default="resnet34")
    parser.add_argument("--runtime", choices=("torch", "compile"), default="torch")
    args = parser.parse_args()
    torch.manual_seed(0)
    task = SegmentationTask(model="unet", model_kwargs={"encoder_name": args.encoder}, aerial_scaling="standardize")
    task = task.eval().to(args.device).use_channels_last()
    if args.runtime == "compile":
        task = compile_network(task)
    with tempfile.TemporaryDirectory() as tmp:
        raster = Path(tmp) / "aerial.tif"
        write_raster(raster, args.size)

        def run_map(out: str):
            options = MapOptions(window=args.window, overlap=128, batch_size=args.batch_size, precision=args.precision,
                                 prefetch=args.prefetch, read_threads=args.read_threads)
            return map_raster(task, raster, Path(tmp) / out, options=options, device=args.device, progress=False)

        if args.runtime == "compile":
            start = time.perf_counter()
            run_map("warmup.tif")
            print(f"torch.compile: {time.perf_counter() - start:.1f} s with one map (not in the times)")
        bare = bare_model(task, args.device, args.window, args.batch_size, args.precision, args.steps)
        start = time.perf_counter()
        result = run_map("map.tif")
        seconds = time.perf_counter() - start
    end_to_end = result.windows_predicted / seconds
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    print(f"{name}, {args.encoder} U-Net, runtime {args.runtime}, window {args.window}, batch {args.batch_size}, precision {args.precision}, "
          f"prefetch {args.prefetch}, read threads {args.read_threads or 'default'}, raster {args.size}² ({result.windows_predicted} windows)")
    print("| measure | windows/s |\n|---|---:|")
    print(f"| bare model | {bare:.2f} |\n| map_raster end to end | {end_to_end:.2f} |")
    print(f"end-to-end / bare model: {end_to_end / bare * 100:.0f} % (target >= 80 %)")


if __name__ == "__main__":
    main()

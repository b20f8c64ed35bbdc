"""The mapping pipeline alone, on any CPU: windows/s of 1024² px with a null predictor.

The predictor returns fixed probabilities at once, so what is timed is the pipeline: window reads
and validity (GeoTIFF deflate, JPEG2000), padding, batching, blending and argmax (on the CPU here,
on one torch thread: on a GPU the blending runs on the device), strip writes and the final COG. Each configuration runs
in a fresh process pinned (``taskset``) to ``N`` of the CPUs this script may use, with the default
of ``N`` reader threads (``flairlc.mapping.pipeline.default_read_threads``) and one GDAL decoder
thread each; ``--baseline-src /path/to/older/src`` runs an older flairlc in the same way for the
ratio (the pipeline before parallel readers read every window on one thread under one lock).

Also measured, on one pinned core: the CPU time of reading one 1024² window (aerial + validity,
the host's share of a window on a GPU), and JPEG2000 decoding in Mpx/s per core.

    python benchmarks/bench_pipeline.py --size 4096 --repeats 5 --baseline-src /work/main/src
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: Classes of the null predictor's probabilities (FLAIR's baseline nomenclature).
NUM_CLASSES = 13
#: Windows per second of the compiled U-Net on one H200 (issue 21): the rate a GPU can take.
GPU_WINDOWS_PER_S = 465


def write_rasters(folder: Path, size: int) -> dict[str, Path]:
    """A ``size``² 5-band uint8 image of smooth random fields, as a deflate GeoTIFF (tiled 512²)
    and as a lossy JPEG2000 (OpenJPEG, 1024² code tiles), EPSG:2154 at 0.2 m."""
    import numpy as np
    import rasterio
    import torch
    from affine import Affine

    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 256, (5, size // 64 + 2, size // 64 + 2)).astype(np.float32)
    data = torch.nn.functional.interpolate(torch.from_numpy(coarse)[None], size=(size, size), mode="bilinear")[0]
    data = (data.numpy() + rng.normal(0, 8, (5, size, size))).clip(0, 255).astype(np.uint8)
    common = dict(width=size, height=size, count=5, dtype="uint8", crs="EPSG:2154",
                  transform=Affine(0.2, 0, 843_000.0, 0, -0.2, 6_520_000.0))
    paths = {"GeoTIFF": folder / "aerial.tif", "JPEG2000": folder / "aerial.jp2"}
    with rasterio.open(paths["GeoTIFF"], "w", driver="GTiff", tiled=True, blockxsize=512, blockysize=512,
                       compress="deflate", **common) as ds:
        ds.write(data)
    with rasterio.open(paths["JPEG2000"], "w", driver="JP2OpenJPEG", QUALITY="10", REVERSIBLE="NO",
                       BLOCKXSIZE="1024", BLOCKYSIZE="1024", **common) as ds:
        ds.write(data)
    return paths


class NullPredictor:
    """Fixed probabilities at once: the pipeline's cost alone."""

    num_classes = NUM_CLASSES
    uses_sentinel = False

    def __init__(self) -> None:
        self._proba = {}

    def predict_proba(self, batch):
        import torch

        aerial = batch["aerial"]
        key = tuple(aerial.shape)
        if key not in self._proba:
            proba = torch.full((aerial.shape[0], NUM_CLASSES, *aerial.shape[2:]), 1.0 / NUM_CLASSES)
            proba[:, 0] += 0.01
            self._proba[key] = proba
        return self._proba[key]


def cpu_seconds() -> float:
    """CPU time of this process, all threads, seconds."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_worker(args: argparse.Namespace) -> None:
    """``--repeats`` timed maps in this (pinned) process after an untimed one; prints a JSON line."""
    import torch

    from flairlc.mapping import MapOptions, map_raster

    # The blending runs on the device: here the CPU, on one thread, as it would on a GPU's stream
    # (torch's own threads would compete with the readers for the cores being measured).
    torch.set_num_threads(1)
    predictor = NullPredictor()
    out = Path(args.out_dir)
    kwargs = dict(options=MapOptions(window=args.window, overlap=args.overlap, batch_size=args.batch_size), progress=False)
    map_raster(predictor, args.raster, out / "warmup.tif", **kwargs)  # imports, first allocations
    runs = []
    for _ in range(args.repeats):
        start_wall, start_cpu = time.perf_counter(), cpu_seconds()
        result = map_raster(predictor, args.raster, out / "map.tif", **kwargs)
        wall, cpu = time.perf_counter() - start_wall, cpu_seconds() - start_cpu
        runs.append({"windows": result.windows_predicted, "seconds": wall, "cpu_seconds": cpu})
    print(json.dumps(runs))


def run_read_worker(args: argparse.Namespace) -> None:
    """CPU time of reading the 1024² windows of the raster (aerial + validity), one thread."""
    from rasterio.windows import Window

    from flairlc.mapping.inputs import AerialSource

    side, runs = args.window, []
    for _ in range(args.repeats):  # a new source each time: nothing comes from GDAL's block cache
        with AerialSource(args.raster, bands=("R", "G", "B", "NIR", "elevation")) as source:
            places = [(r, c) for r in range(0, source.height - side + 1, side)
                      for c in range(0, source.width - side + 1, side)]
            start = cpu_seconds()
            for r, c in places:
                source.read(Window(c, r, side, side))
            runs.append({"windows": len(places), "cpu_seconds": cpu_seconds() - start})
    print(json.dumps(runs))


def run_decode_worker(args: argparse.Namespace) -> None:
    """Mpx/s of decoding the whole JPEG2000 image on one thread (GDAL_NUM_THREADS=1)."""
    import rasterio

    runs = []
    for _ in range(args.repeats):
        with rasterio.Env(GDAL_NUM_THREADS="1"), rasterio.open(args.raster) as ds:
            start = time.perf_counter()
            ds.read()
            runs.append({"mpx_per_s": ds.width * ds.height / (time.perf_counter() - start) / 1e6})
    print(json.dumps(runs))


def pinned(cpus: list[int], src: Path, *worker_args: str) -> list[dict]:
    """Run this script's worker pinned to ``cpus`` with ``src`` first on the path; its runs."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    command = ["taskset", "-c", ",".join(map(str, cpus)), sys.executable, __file__, *worker_args]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096, help="raster side, pixels")
    parser.add_argument("--window", type=int, default=1024)
    parser.add_argument("--overlap", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5, help="runs per configuration (median)")
    parser.add_argument("--cores", type=int, nargs="+", help="core counts to pin to (default 1, 2, 8, 16 as available)")
    parser.add_argument("--src", default=str(Path(__file__).resolve().parents[1] / "src"), help="flairlc sources to time")
    parser.add_argument("--baseline-src", help="older flairlc sources to time alike (the baseline)")
    parser.add_argument("--worker", choices=("map", "read", "decode"), help=argparse.SUPPRESS)
    parser.add_argument("--raster", help=argparse.SUPPRESS)
    parser.add_argument("--out-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        {"map": run_worker, "read": run_read_worker, "decode": run_decode_worker}[args.worker](args)
        return
    available = sorted(os.sched_getaffinity(0))
    cores = args.cores or [n for n in (1, 2, 8, 16) if n <= len(available)]
    sources = {"this": Path(args.src)} | ({"baseline": Path(args.baseline_src)} if args.baseline_src else {})
    common = ["--window", str(args.window), "--overlap", str(args.overlap), "--batch-size", str(args.batch_size),
              "--repeats", str(args.repeats)]
    print(f"CPUs available: {len(available)}; raster {args.size}² 5 bands; window {args.window}, overlap "
          f"{args.overlap}, batch {args.batch_size}, {NUM_CLASSES} classes; median of {args.repeats} runs; "
          f"load average before: {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        rasters = write_rasters(Path(tmp), args.size)
        rows = []
        for fmt, raster in rasters.items():
            for n in cores:
                runs = {name: pinned(available[:n], src, "--worker", "map", "--raster", str(raster), "--out-dir", tmp,
                                     *common) for name, src in sources.items()}
                for name in sources:
                    rate = statistics.median(r["windows"] / r["seconds"] for r in runs[name])
                    cpu_ms = statistics.median(r["cpu_seconds"] / r["windows"] * 1e3 for r in runs[name])
                    rows.append((fmt, n, name, rate, cpu_ms))
        read_ms = {}
        for fmt, raster in rasters.items():
            reads = pinned(available[:1], Path(args.src), "--worker", "read", "--raster", str(raster), *common)
            read_ms[fmt] = statistics.median(r["cpu_seconds"] / r["windows"] * 1e3 for r in reads)
        decodes = pinned(available[:1], Path(args.src), "--worker", "decode", "--raster", str(rasters["JPEG2000"]),
                         *common)
        decode = statistics.median(r["mpx_per_s"] for r in decodes)
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    print("\n| format | cores | code | windows/s | vs 1 core | vs baseline | CPU ms per window |")
    print("|---|---:|---|---:|---:|---:|---:|")
    by_key = {(f, n, name): rate for f, n, name, rate, _ in rows}
    for fmt, n, name, rate, cpu_ms in rows:
        one = by_key.get((fmt, cores[0], name))
        base = by_key.get((fmt, n, "baseline"))
        print(f"| {fmt} | {n} | {name} | {rate:.2f} | {rate / one:.2f}x | "
              f"{f'{rate / base:.2f}x' if base and name != 'baseline' else '–'} | {cpu_ms:.0f} |")
    print("\n| format | CPU ms to read one 1024² window (aerial + validity, 1 core) | cores for "
          f"{GPU_WINDOWS_PER_S} windows/s (reads alone) |\n|---|---:|---:|")
    for fmt, ms in read_ms.items():
        print(f"| {fmt} | {ms:.1f} | {GPU_WINDOWS_PER_S * ms / 1e3:.1f} |")
    print(f"\nJPEG2000 decoding, 1 thread: {decode:.1f} Mpx/s per core")


if __name__ == "__main__":
    main()

"""Benchmark of ``flairlc.mapping.map_raster``: throughput (km²/h) and peak memory vs raster size.

With the default cheap fake predictor (a per-pixel linear layer + softmax) this measures the
I/O + blending pipeline (windowed reads, padding, blending accumulator, argmax, working-file
writes, final COG), not a model. Pass ``--checkpoint CKPT`` to time a real trained model.

Each raster size runs in a fresh subprocess so that its peak RSS (``ru_maxrss``) is its own:
the peak must not grow with the raster size (the accumulator depends on window, batch size and
band width only).

    .venv/bin/python benchmarks/bench_mapping.py --sizes 2000 10000 --window 512 --overlap 128
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import rasterio
import torch
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window

from flairlc import nomenclature
from flairlc.mapping import MapOptions, map_raster

PIXEL_SIZE_M = 0.2


class CheapPredictor:
    """Linear layer + softmax at 1/4 resolution, upsampled: a small model cost, so the pipeline
    (not a network) is what is timed."""

    num_classes = nomenclature.NUM_BASELINE_CLASSES
    aerial_channels = 5
    uses_sentinel = False
    sat_patch_size = 40
    reference_date = datetime.date(2021, 5, 15)

    def __init__(self) -> None:
        self.weight = torch.randn(self.num_classes, 5, generator=torch.Generator().manual_seed(0))

    def predict_proba(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x = torch.nn.functional.avg_pool2d(batch["aerial"].float() / 255.0, 4)
        p = torch.softmax(torch.einsum("kc,bchw->bkhw", self.weight, x), dim=1)
        return torch.nn.functional.interpolate(p, scale_factor=4, mode="nearest")


def make_raster(path: Path, size: int, block_rows: int = 512) -> None:
    """A ``size x size`` 5-band uint8 noise GeoTIFF (EPSG:2154, 0.2 m), written by row blocks."""
    rng = np.random.default_rng(0)
    profile = {
        "driver": "GTiff", "width": size, "height": size, "count": 5, "dtype": "uint8",
        "crs": CRS.from_epsg(2154), "transform": Affine(PIXEL_SIZE_M, 0, 650_000, 0, -PIXEL_SIZE_M, 6_860_000),
        "tiled": True, "blockxsize": 512, "blockysize": 512, "BIGTIFF": "IF_SAFER",
    }
    with rasterio.open(path, "w", **profile) as ds:
        for y in range(0, size, block_rows):
            h = min(block_rows, size - y)
            ds.write(rng.integers(0, 256, (5, h, size), dtype=np.uint8), window=Window(0, y, size, h))


def run_one(args: argparse.Namespace, aerial: Path) -> dict:
    """Map one raster; returns timings and the peak RSS of this process."""
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(dir=args.tmp_dir) as tmp:
        tmp_path = Path(tmp)
        if args.checkpoint:
            from flairlc.training.checkpoint import load_task

            predictor = load_task(args.checkpoint, map_location=args.device)
        else:
            predictor = CheapPredictor()
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        options = MapOptions(window=args.window, overlap=args.overlap, batch_size=args.batch_size)
        res = map_raster(predictor, aerial, tmp_path / "map.tif", options=options, progress=False, device=args.device)
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return {
            "area_km2": res.area_km2, "seconds": res.seconds, "km2_per_hour": res.km2_per_hour,
            "windows": res.windows_predicted, "peak_rss_mib": peak_kib / 1024,
            "rss_before_map_mib": rss_before / 1024,
        }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 10000], help="raster sides, pixels")
    parser.add_argument("--window", type=int, default=512)
    parser.add_argument("--overlap", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--checkpoint", default=None, help="time a real trained model instead of the fake one")
    parser.add_argument("--tmp-dir", default=None, help="where the rasters are generated")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # child process: raster path
    args = parser.parse_args(argv)
    if args.one is not None:
        print(json.dumps(run_one(args, Path(args.one))))
        return
    model = f"checkpoint {args.checkpoint}" if args.checkpoint else "cheap fake predictor (I/O + blending pipeline)"
    print(f"# machine: {platform.machine()} {platform.processor() or ''} | python {platform.python_version()} | "
          f"torch {torch.__version__} | rasterio {rasterio.__version__} (GDAL {rasterio.__gdal_version__})")
    print(f"# model: {model}; window {args.window}, overlap {args.overlap}, batch {args.batch_size}, "
          f"device {args.device}, {args.threads} torch threads")
    cache = os.environ.get("GDAL_CACHEMAX", "GDAL default (5 % of RAM)")
    print(f"# GDAL_CACHEMAX: {cache}; each size mapped in a fresh subprocess (peak RSS = ru_maxrss)")
    print("| raster (px) | area (km²) | windows | map time (s) | km²/h | RSS before map (MiB) | peak RSS (MiB) |")
    print("|---|---|---|---|---|---|---|")
    base = list(argv if argv is not None else sys.argv[1:])
    with tempfile.TemporaryDirectory(dir=args.tmp_dir) as tmp:
        for size in args.sizes:
            aerial = Path(tmp) / f"aerial_{size}.tif"
            make_raster(aerial, size)
            out = subprocess.run([sys.executable, __file__, *base, "--one", str(aerial)], check=True,
                                 capture_output=True, text=True)
            aerial.unlink()
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"| {size} x {size} | {r['area_km2']:.2f} | {r['windows']} | {r['seconds']:.1f} | "
                  f"{r['km2_per_hour']:.1f} | {r['rss_before_map_mib']:.0f} | {r['peak_rss_mib']:.0f} |", flush=True)

if __name__ == "__main__":
    main()

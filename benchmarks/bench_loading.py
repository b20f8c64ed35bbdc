"""Samples per second of `FlairDataset` from page cache: aerial only, and full multimodal samples.

A synthetic FLAIR root (512×512 aerial patches, T dates) is generated once, read once to warm the
page cache, then every sample is loaded ``--repeats`` times on one core (one process, no
workers). Reported: the median over repeats of samples/s and milliseconds per sample.

    python benchmarks/bench_loading.py --patches 40 --dates 50 --repeats 5
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from flairlc.data import FlairDataset, discover_patches
from flairlc.data.synthetic import generate_dataset

CONFIGS = {
    "aerial + mask": dict(modalities=("aerial", "mask")),
    "aerial + mask + Sentinel-2 (40×40) + metadata": dict(
        modalities=("aerial", "mask", "sentinel", "metadata"), sat_patch_size=40
    ),
    "… + cloud filter + monthly average": dict(
        modalities=("aerial", "mask", "sentinel", "metadata"), sat_patch_size=40,
        filter_clouds=True, average_monthly=True,
    ),
}


def time_dataset(dataset: FlairDataset, repeats: int) -> list[float]:
    """Seconds per sample of each full pass over the dataset."""
    for i in range(len(dataset)):  # warm the page cache and the memory maps
        dataset[i]
    per_sample = []
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(len(dataset)):
            dataset[i]
        per_sample.append((time.perf_counter() - start) / len(dataset))
    return per_sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patches", type=int, default=40, help="number of patches (default 40)")
    parser.add_argument("--patch-size", type=int, default=512)
    parser.add_argument("--dates", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--root", type=Path, help="an existing FLAIR root instead of a synthetic one")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as scratch:
        root = args.root
        if root is None:
            root = Path(scratch) / "flair"
            per_area = 5
            generate_dataset(root, domains=max(2, args.patches // (2 * per_area)), areas_per_domain=2,
                             patches_per_area=per_area, patch_size=args.patch_size, dates=args.dates, seed=0)
        records = discover_patches(root, splits=("train",))[: args.patches]
        print(f"{len(records)} patches of {args.patch_size}×{args.patch_size} px, T = {args.dates}, "
              f"{platform.processor() or platform.machine()}, 1 thread, median of {args.repeats} passes\n")
        print("| sample | samples/s | ms per sample |")
        print("|---|---:|---:|")
        for name, kwargs in CONFIGS.items():
            seconds = statistics.median(time_dataset(FlairDataset(records, **kwargs), args.repeats))
            print(f"| {name} | {1 / seconds:.0f} | {1000 * seconds:.2f} |")


if __name__ == "__main__":
    main()

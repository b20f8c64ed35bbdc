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
from flairlc.data.synthetic.dataset import MIN_SUPER_AREA_PX

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


class ReferenceLoader:
    """A loading loop in the manner of the official FLAIR-2 dataset class, kept as the baseline.

    Per sample: the aerial image and the mask read with rasterio, the super-area's whole
    Sentinel-2 ``_data.npy`` and ``_masks.npy`` loaded with ``np.load`` and the window cut out with
    numpy, the cloud/snow filter as a Python loop over dates, the monthly average as a loop over
    months, then the scaling the model needs (aerial / 255, Sentinel-2 as float). The official
    code is not available here; this loop follows its structure (rasterio read + numpy window +
    per-date loop), so that the ratio of issue #14 can be measured on any machine.
    """

    def __init__(self, records, sat_patch_size: int = 40, filter_clouds: bool = False, average_monthly: bool = False,
                 cloud_max_cover: float = 0.5, cloud_prob_threshold: int = 60) -> None:
        self.records = records
        self.size = sat_patch_size
        self.filter_clouds, self.average_monthly = filter_clouds, average_monthly
        self.cloud_max_cover, self.cloud_prob_threshold = cloud_max_cover, cloud_prob_threshold

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict:
        import datetime as dt

        import numpy as np
        import rasterio

        record = self.records[index]
        with rasterio.open(record.aerial_path) as src:
            aerial = src.read()
        with rasterio.open(record.mask_path) as src:
            mask = src.read(1)
        data = np.load(record.sentinel.data)
        masks = np.load(record.sentinel.masks)
        row, col = record.centroid
        half = self.size // 2
        window = data[:, :, row - half : row + half, col - half : col + half].astype(np.float32)
        window_masks = masks[:, :, row - half : row + half, col - half : col + half]
        products = record.sentinel.products.read_text().split()
        dates = [dt.date(int(p[11:15]), int(p[15:17]), int(p[17:19])) for p in products]
        keep = list(range(len(dates)))
        if self.filter_clouds:
            keep = []
            for t in range(len(dates)):  # one date at a time, as the reference code does
                cover = ((window_masks[t, 0] > self.cloud_prob_threshold) | (window_masks[t, 1] > self.cloud_prob_threshold)).mean()
                if cover <= self.cloud_max_cover:
                    keep.append(t)
        window = window[keep]
        dates = [dates[t] for t in keep]
        if self.average_monthly:
            months = sorted({d.month for d in dates})
            window = np.stack([window[[i for i, d in enumerate(dates) if d.month == m]].mean(axis=0) for m in months])
        return {"aerial": torch.from_numpy(aerial.astype(np.float32) / 255.0), "mask": torch.from_numpy(mask.astype(np.int64)),
                "sentinel": torch.from_numpy(window)}


class ScaledDataset:
    """A :class:`FlairDataset` whose samples go through the scaling the model applies."""

    def __init__(self, dataset: FlairDataset) -> None:
        from flairlc.training.scaling import InputScaler

        self.dataset = dataset
        self.aerial = InputScaler("standardize", 5, mean=[105.08, 110.87, 101.82, 106.38, 53.26], std=[52.17, 45.38, 44.0, 39.69, 79.3])
        self.sentinel = InputScaler("unit", 10, max_value=65535.0)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        sample = self.dataset[index]
        sample["aerial"] = self.aerial(sample["aerial"])
        if "sentinel" in sample:
            sample["sentinel"] = self.sentinel(sample["sentinel"])
        return sample


def time_dataset(dataset, repeats: int) -> list[float]:
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
    parser.add_argument("--super-area-px", type=int, default=MIN_SUPER_AREA_PX,
                        help="smallest side of a synthetic Sentinel-2 super-area, 10 m pixels "
                             f"(default {MIN_SUPER_AREA_PX}; FLAIR's are of the order of 100-250)")
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
                             patches_per_area=per_area, patch_size=args.patch_size, dates=args.dates, seed=0,
                             min_super_area_px=args.super_area_px)
        records = discover_patches(root, splits=("train",))[: args.patches]
        print(f"{len(records)} patches of {args.patch_size}×{args.patch_size} px, T = {args.dates}, "
              f"{platform.processor() or platform.machine()}, 1 thread, median of {args.repeats} passes\n")
        print("| sample | samples/s | ms per sample |")
        print("|---|---:|---:|")
        for name, kwargs in CONFIGS.items():
            seconds = statistics.median(time_dataset(FlairDataset(records, **kwargs), args.repeats))
            print(f"| {name} | {1 / seconds:.0f} | {1000 * seconds:.2f} |")
        print("\nAgainst the reference loop (scaling counted in both; alternating passes):\n")
        print("| sample | flairlc samples/s | reference samples/s | ratio |")
        print("|---|---:|---:|---:|")
        full = dict(CONFIGS["aerial + mask + Sentinel-2 (40×40) + metadata"])
        filtered = dict(CONFIGS["… + cloud filter + monthly average"])
        for name, kwargs, reference in (
            ("full multimodal sample", full, ReferenceLoader(records)),
            ("+ cloud filter + monthly average", filtered, ReferenceLoader(records, filter_clouds=True, average_monthly=True)),
        ):
            ours, theirs = [], []
            dataset = ScaledDataset(FlairDataset(records, **kwargs))
            for _ in range(args.repeats):
                ours += time_dataset(dataset, 1)
                theirs += time_dataset(reference, 1)
            a, b = statistics.median(ours), statistics.median(theirs)
            print(f"| {name} | {1 / a:.0f} | {1 / b:.0f} | {b / a:.2f}x |")


if __name__ == "__main__":
    main()

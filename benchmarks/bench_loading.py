"""Samples per second of `FlairDataset` from page cache: aerial only, and full multimodal samples.

A synthetic FLAIR root (512×512 aerial patches, T dates, Sentinel-2 super-areas of at least
``--super-area-px`` pixels a side) is generated once (or ``--root`` names an existing one), read
once to warm the page cache, then every sample is loaded ``--repeats`` times in one process, no
workers, one torch thread. Reported: the median over passes of samples/s and milliseconds per
sample; then flairlc (with the model's input scaling) against :class:`ReferenceLoader` (what the
official FLAIR-2 dataset class does per sample), in alternating passes, with the minor page faults
and system time per sample of each. Each loader runs in a process of its own (spawned, one per
loader), since what a process allocated before changes how often the C allocator hands memory
back to the system, and so how many page faults the next samples take. Pin it to one core:

    taskset -c 1 python benchmarks/bench_loading.py --dates 50 --super-area-px 250 --repeats 7
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import platform
import resource
import statistics
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
import torch

from flairlc.data import FlairDataset, discover_patches
from flairlc.data.layout import PatchRecord
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
    """A loading loop that does per sample what the official FLAIR-2 dataset class does; the baseline.

    Step by step as ``Fit_Dataset.__getitem__`` of IGN's FLAIR-2 repository (``src/dataset.py``,
    ``src/utils_dataset.py``), written anew here (no pandas, no scikit-image):

    1. the aerial image read with rasterio, then ``img_as_float``: uint8 × (1/255) in float64;
    2. the label mask read with rasterio, values above 13 set to 13, minus 1 (uint8);
    3. the super-area's whole ``_data.npy`` loaded with ``np.load``, the window sliced out;
       the product names read and each turned into a date and a day offset to 15 May;
    4. the whole ``_masks.npy`` loaded, the window sliced out and cast to int64;
    5. cloud filter (``filter_dates``): a Python loop over dates, cover = pixels with snow
       probability >= 60 plus pixels with cloud probability >= 60, over the window's pixels;
       dates with cover < 0.5 kept;
    6. monthly average (``monthly_image``): a loop over the calendar months from the first to the
       last date, the dates of each found by a loop over all dates, ``np.mean`` in float64
       (the official code enumerates the months with ``pandas.period_range``; that cost is left
       out here, which makes this loop a little faster than the official one);
    7. ``img_as_float`` of the series: uint16 × (1/65535) in float64 (float64 means unchanged);
    8. tensors as the official class returns them: ``torch.as_tensor(..., dtype=torch.float)``
       of the image, series, day offsets, labels (twice: ``labels`` and ``slabels``) and the
       metadata vector (encoded once, up front, as the official code does when it lists files).

    As the official code, it fails when the filter drops every date of a window.
    """

    def __init__(self, records: list[PatchRecord], sat_patch_size: int = 40, filter_clouds: bool = False, average_monthly: bool = False,
                 num_classes: int = 13, reference_month_day: tuple[int, int] = (5, 15), reference_year: int = 2021) -> None:
        from flairlc.data.metadata import encode_metadata

        self.records = records
        self.size = sat_patch_size
        self.filter_clouds, self.average_monthly = filter_clouds, average_monthly
        self.num_classes = num_classes
        self.reference_month_day, self.reference_year = reference_month_day, reference_year
        self.metadata = [encode_metadata(r.metadata) for r in records]

    def __len__(self) -> int:
        return len(self.records)

    def _crop(self, path: Path, centroid: tuple[int, int]) -> np.ndarray:
        """The window ``(T, C, S, S)`` around a centroid, out of the whole array loaded."""
        data = np.load(path)  # the whole super-area, every sample
        half = self.size // 2
        return data[:, :, centroid[0] - half : centroid[0] + half, centroid[1] - half : centroid[1] + half]

    def _dates(self, path: Path) -> tuple[np.ndarray, np.ndarray]:
        """Day offsets to the reference ``(T,)`` and acquisition datetimes ``(T,)`` of the products."""
        month, day = self.reference_month_day
        reference = dt.datetime(self.reference_year, month, day)
        with open(path) as f:
            products = f.read().splitlines()
        offsets, raw = [], []
        for name in products:
            date = dt.datetime(self.reference_year, int(name[15:17]), int(name[17:19]))
            offsets.append((reference - date).days)
            raw.append(date)
        return np.array(offsets), np.array(raw)

    @staticmethod
    def _filter_dates(mask: np.ndarray, area_threshold: float = 0.5, prob_threshold: int = 60) -> list[int]:
        """Indices of the dates of ``mask`` ``(T, 2, S, S)`` whose snow + cloud cover is below the threshold."""
        keep = []
        for t in range(mask.shape[0]):  # one date at a time, as the official filter
            cover = np.count_nonzero(mask[t, 0] >= prob_threshold) + np.count_nonzero(mask[t, 1] >= prob_threshold)
            cover /= mask.shape[2] * mask.shape[3]
            if cover < area_threshold:
                keep.append(t)
        return keep

    def _monthly(self, series: np.ndarray, raw_dates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """float64 means ``(M, C, S, S)`` of the months present and their day offsets ``(M,)``."""
        month, day = self.reference_month_day
        reference = dt.datetime(self.reference_year, month, day)
        first, last = raw_dates[0], raw_dates[-1]
        means, offsets = [], []
        for k in range(first.year * 12 + first.month - 1, last.year * 12 + last.month):
            year, m = divmod(k, 12)
            in_month = [i for i in range(len(raw_dates)) if raw_dates[i].month == m + 1 and raw_dates[i].year == year]
            if in_month:
                means.append(np.mean(series[in_month], axis=0))
                offsets.append((reference - dt.datetime(self.reference_year, m + 1, 15)).days)
        return np.array(means), np.array(offsets)

    def __getitem__(self, index: int) -> dict:
        import rasterio

        record = self.records[index]
        with rasterio.open(record.aerial_path) as src:
            image = src.read()
        with rasterio.open(record.mask_path) as src:
            labels = src.read()[0]
        labels[labels > self.num_classes] = self.num_classes
        labels = labels - 1
        image = np.multiply(image, 1.0 / 255, dtype=np.float64)  # img_as_float of uint8
        series = self._crop(record.sentinel.data, record.centroid)
        offsets, raw_dates = self._dates(record.sentinel.products)
        masks = self._crop(record.sentinel.masks, record.centroid).astype(int)
        if self.filter_clouds:
            keep = self._filter_dates(masks)
            series, offsets, raw_dates = series[keep], offsets[keep], raw_dates[keep]
        if self.average_monthly:
            series, offsets = self._monthly(series, raw_dates)
        if series.dtype == np.uint16:  # img_as_float: float64 series are left as they are
            series = np.multiply(series, 1.0 / 65535, dtype=np.float64)
        return {
            "patch": torch.as_tensor(image, dtype=torch.float),
            "spatch": torch.as_tensor(series, dtype=torch.float),
            "dates": torch.as_tensor(offsets, dtype=torch.float),
            "labels": torch.as_tensor(labels, dtype=torch.float),
            "slabels": torch.as_tensor(labels, dtype=torch.float),
            "mtd": torch.as_tensor(self.metadata[index], dtype=torch.float),
        }


class ScaledDataset:
    """A :class:`FlairDataset` whose samples go through the scaling the model applies."""

    def __init__(self, dataset: FlairDataset) -> None:
        from flairlc.inference.scaling import InputScaler

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


def time_dataset(dataset: Any, repeats: int) -> list[float]:
    """Seconds per sample of each full pass over the dataset, after one pass to warm up."""
    for i in range(len(dataset)):  # warm the page cache and the memory maps
        dataset[i]
    return [time_pass(dataset)[0] for _ in range(repeats)]


def time_pass(dataset: Any) -> tuple[float, float, float]:
    """One pass over the dataset: seconds, minor page faults and system seconds per sample."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    for i in range(len(dataset)):
        dataset[i]
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    n = len(dataset)
    return seconds / n, (after.ru_minflt - before.ru_minflt) / n, (after.ru_stime - before.ru_stime) / n


def make_loader(kind: str, root: Path, patches: int, kwargs: dict) -> Any:
    """``"flairlc"`` (a FlairDataset), ``"flairlc scaled"`` (the same through the model's scaling)
    or ``"reference"`` (a ReferenceLoader) over the first ``patches`` train patches of ``root``."""
    records = discover_patches(root, splits=("train",))[:patches]
    if kind == "reference":
        return ReferenceLoader(records, **kwargs)
    dataset = FlairDataset(records, **kwargs)
    return ScaledDataset(dataset) if kind == "flairlc scaled" else dataset


def _serve(conn: Connection, kind: str, root: Path, patches: int, kwargs: dict, keep_memory: bool = False) -> None:
    """A worker process: one loader, warmed up, then one timed pass per request."""
    torch.set_num_threads(1)
    if keep_memory:
        from flairlc.data.memory import keep_freed_memory

        keep_freed_memory()
    loader = make_loader(kind, root, patches, kwargs)
    time_dataset(loader, 0)
    conn.send(len(loader))
    while conn.recv():
        conn.send(time_pass(loader))


class Worker:
    """A spawned process holding one loader; :meth:`run` times one pass over it."""

    def __init__(self, kind: str, root: Path, patches: int, kwargs: dict, keep_memory: bool = False) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, kind, root, patches, kwargs, keep_memory))
        self.process.start()
        self.size = self.conn.recv()

    def run(self) -> tuple[float, float, float]:
        self.conn.send(True)
        return self.conn.recv()

    def close(self) -> None:
        self.conn.send(False)
        self.process.join()


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
    parser.add_argument("--keep-freed-memory", action="store_true",
                        help="every loading process keeps freed memory (flairlc.data.memory.keep_freed_memory, "
                             "as flairlc's DataLoader workers do), the reference's too")
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
        sentinel = records[0].sentinel
        shape = tuple(np.load(sentinel.data, mmap_mode="r").shape) if sentinel else None
        print(f"{len(records)} patches of {args.patch_size}×{args.patch_size} px, first super-area {shape}, "
              f"{platform.processor() or platform.machine()}, 1 thread, median of {args.repeats} passes\n")
        print("| sample | samples/s | ms per sample |")
        print("|---|---:|---:|")
        for name, kwargs in CONFIGS.items():
            worker = Worker("flairlc", root, args.patches, kwargs, args.keep_freed_memory)
            seconds = statistics.median(worker.run()[0] for _ in range(args.repeats))
            worker.close()
            print(f"| {name} | {1 / seconds:.0f} | {1000 * seconds:.2f} |")
        print("\nAgainst the reference loop (scaling counted in both; alternating passes; page faults and "
              "system time per sample):\n")
        print("| sample | flairlc samples/s | reference samples/s | ratio | flairlc faults, sys ms | reference faults, sys ms |")
        print("|---|---:|---:|---:|---:|---:|")
        full = dict(CONFIGS["aerial + mask + Sentinel-2 (40×40) + metadata"])
        filtered = dict(CONFIGS["… + cloud filter + monthly average"])
        for name, kwargs, reference in (
            ("full multimodal sample", full, {}),
            ("+ cloud filter + monthly average", filtered, dict(filter_clouds=True, average_monthly=True)),
        ):
            workers = (Worker("flairlc scaled", root, args.patches, kwargs, args.keep_freed_memory),
                       Worker("reference", root, args.patches, reference, args.keep_freed_memory))
            ours, theirs = [], []
            for _ in range(args.repeats):
                ours.append(workers[0].run())
                theirs.append(workers[1].run())
            for worker in workers:
                worker.close()
            a, b = statistics.median(p[0] for p in ours), statistics.median(p[0] for p in theirs)
            detail = [f"{statistics.median(p[1] for p in x):.0f}, {1000 * statistics.median(p[2] for p in x):.1f}"
                      for x in (ours, theirs)]
            print(f"| {name} | {1 / a:.0f} | {1 / b:.0f} | {b / a:.2f}x | {detail[0]} | {detail[1]} |")

if __name__ == "__main__":
    main()

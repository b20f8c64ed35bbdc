"""Time of `flairlc check` per 1,000 patches: full (every pixel) vs quick (headers), 1 vs N workers.

A synthetic FLAIR root of 512×512 patches (aerial, mask, Sentinel-2 super-areas of T dates) is
generated once, then :func:`flairlc.data.check.check_dataset` is run ``--repeats`` times per
setting; reported: the median wall-clock seconds per 1,000 patches, the CPU seconds (this
process and its workers) per 1,000 patches, and the read throughput (bytes of all the root's files
over the wall-clock time; the quick mode reads a fraction of them). On a machine shared with other
jobs, workers only speed the check up when cores are free: the CPU time tells whether they add
work.

By default the files are in the page cache (just written): the figures are then those of the CPU
work (TIFF decoding, value checks, process overhead). ``--cold`` evicts every file from the page
cache before each run (``posix_fadvise(DONTNEED)``, no root needed), so that the disk is read too,
as on the first check of a freshly downloaded dataset.

    python benchmarks/bench_check.py --patches 400 --workers 1 2 --repeats 3
    python benchmarks/bench_check.py --patches 400 --workers 1 2 --repeats 3 --cold
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import resource
import statistics
import tempfile
import time
from pathlib import Path

from flairlc.data.check import check_dataset
from flairlc.data.synthetic import generate_dataset

#: Patches per synthetic area and number of synthetic domains.
PATCHES_PER_AREA = 10
DOMAINS = 4


def evict_from_page_cache(root: Path) -> None:
    """Drop the cached pages of every file under ``root`` (after flushing them to disk)."""
    for dirpath, _dirnames, filenames in os.walk(root):
        for filename in filenames:
            fd = os.open(os.path.join(dirpath, filename), os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def tree_bytes(root: Path) -> int:
    """Total size in bytes of the files under ``root``."""
    return sum(path.stat().st_size for path in root.rglob("*") if path.is_file())


def cpu_seconds() -> float:
    """User + system CPU time of this process and of its finished children, in seconds."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def time_check(
    root: Path, quick: bool, workers: int, repeats: int, cold: bool
) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU seconds of each of ``repeats`` runs of :func:`check_dataset`."""
    wall, cpu = [], []
    for _ in range(repeats):
        if cold:
            evict_from_page_cache(root)
        start, start_cpu = time.perf_counter(), cpu_seconds()
        report = check_dataset(root, quick=quick, workers=workers)
        wall.append(time.perf_counter() - start)
        cpu.append(cpu_seconds() - start_cpu)
        if not report.ok:
            raise RuntimeError(f"the synthetic root fails the check:\n{report.to_text()}")
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patches", type=int, default=400, help="number of patches (default 400)")
    parser.add_argument("--patch-size", type=int, default=512, help="patch side in px (default 512)")
    parser.add_argument("--dates", type=int, default=20, help="Sentinel-2 dates (default 20)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cold", action="store_true", help="evict the files from the page cache before each run")
    parser.add_argument("--root", type=Path, help="an existing FLAIR root instead of a synthetic one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = args.root
        if root is None:
            root = Path(scratch) / "flair"
            areas = math.ceil(args.patches / PATCHES_PER_AREA)
            start = time.perf_counter()
            generate_dataset(
                root, domains=DOMAINS, areas_per_domain=math.ceil(areas / DOMAINS),
                patches_per_area=PATCHES_PER_AREA, patch_size=args.patch_size, dates=args.dates,
                seed=0,
            )
            print(f"generated {root} in {time.perf_counter() - start:.1f} s")
        patches = check_dataset(root, quick=True, workers=1).num_patches
        size_mb = tree_bytes(root) / 1e6
        print(
            f"{patches} patches of {args.patch_size} px, T = {args.dates}, {size_mb:.0f} MB; "
            f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
            f"page cache: {'evicted before each run' if args.cold else 'warm'}; "
            f"median of {args.repeats}"
        )
        print()
        print(
            "| mode | workers | s per run | s per 1,000 patches | CPU s per 1,000 patches "
            "| MB/s (whole root) |"
        )
        print("|---|---:|---:|---:|---:|---:|")
        for quick in (False, True):
            for workers in args.workers:
                wall, cpu = time_check(root, quick, workers, args.repeats, args.cold)
                seconds, cpu_s = statistics.median(wall), statistics.median(cpu)
                print(
                    f"| {'quick' if quick else 'full'} | {workers} | {seconds:.2f} | "
                    f"{seconds / patches * 1000:.1f} | {cpu_s / patches * 1000:.1f} | "
                    f"{size_mb / seconds:.0f} |"
                )
        print(f"\nload average after the runs: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()

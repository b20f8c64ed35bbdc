"""Samples per second of a full multimodal FLAIR-HUB sample: `FlairHubDataset` against TorchGeo's `FLAIRHUB`.

A synthetic FLAIR-HUB root (``flairlc synth --layout flair-hub``: AERIAL_RGBI 512×512, DEM_ELEV,
SENTINEL2_TS and SENTINEL2_MSK-SC with T dates, AERIAL_LABEL-COSIA, the split and dates
GeoPackages) is generated once (or ``--root`` names an existing one) and read once to warm the page
cache. A sample is aerial + DEM + Sentinel-2 series + its snow/cloud masks + the CoSIA label, in
each library's own form (flairlc adds the series' dates; TorchGeo has none). Each loader runs in a
spawned process of its own, one torch thread, no workers; passes (every train patch once)
alternate between the two; medians over passes of the wall time and of the process's CPU time
(user + system: what a busy shared machine perturbs least) are reported, and the ratios of the
medians of the same run.

TorchGeo is optional and never installed into the project's environment: put a TorchGeo with
``FLAIRHUB`` (``torchgeo.datasets.flair``, TorchGeo 0.10) on ``PYTHONPATH``; without it only
flairlc is timed. Before timing, both loaders read the first patch and their arrays are compared.

    PYTHONPATH=src:/path/to/torchgeo taskset -c 1 python benchmarks/bench_hub_loading.py --repeats 7
"""

from __future__ import annotations

import argparse
import multiprocessing
import platform
import statistics
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import torch

from flairlc.data.hub import FlairHubDataset, discover_hub
from flairlc.data.synthetic.hub import generate_hub_dataset

#: The modalities of a full sample, flairlc keys and TorchGeo band names.
FLAIRLC_MODALITIES = ("aerial", "dem", "sentinel", "sentinel_masks", "mask")
TORCHGEO_BANDS = ["AERIAL_RGBI", "DEM_ELEV", "SENTINEL2_TS", "SENTINEL2_MSK-SC"]
#: flairlc key → TorchGeo key of the same array.
SAME_ARRAYS = {
    "aerial": "image_aerial_rgbi", "dem": "image_dem_elev", "sentinel": "image_sentinel2",
    "sentinel_masks": "mask_sentinel2_snowcloud", "mask": "mask",
}


def torchgeo_flairhub(root: Path) -> Any:
    """TorchGeo's ``FLAIRHUB`` on ``root``, or None when TorchGeo (with ``FLAIRHUB``) is not importable.

    ``FLAIRHUB._verify`` requires every requested modality of each of the 74 domain-years in its
    ``domain_years`` table (and downloads the missing ones); a root holding a subset of them, as this
    synthetic one (or a partial download), is refused without ``download=True``. A subclass whose
    table is the root's own domain-years reads it unchanged otherwise.
    """
    try:
        from torchgeo.datasets.flair import FLAIRHUB
    except ImportError:
        return None
    domain_years: dict[str, list[str]] = {}
    for patch in discover_hub(root):
        years = domain_years.setdefault(patch.domain, [])
        if patch.year not in years:
            years.append(patch.year)

    class RootFLAIRHUB(FLAIRHUB):
        pass

    RootFLAIRHUB.domain_years = domain_years
    dataset = RootFLAIRHUB(root, split="train", split_column="split_1", bands=list(TORCHGEO_BANDS))
    dataset.files.sort(key=lambda f: str(f["patch_id"]))  # glob order → patch id order, as flairlc
    return dataset


def make_dataset(kind: str, root: Path) -> Any:
    if kind == "flairlc":
        return FlairHubDataset.from_root(root, "train", modalities=FLAIRLC_MODALITIES)
    return torchgeo_flairhub(root)


def time_pass(dataset: Any) -> tuple[float, float]:
    """Wall and CPU (user + system, this process) seconds of one pass over every sample."""
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(len(dataset)):
        dataset[i]
    return time.perf_counter() - wall, time.process_time() - cpu


def serve(kind: str, root: Path, conn: Connection) -> None:
    """Build one loader in this process and time a pass each time the parent asks."""
    torch.set_num_threads(1)
    dataset = make_dataset(kind, root)
    time_pass(dataset)  # warm page cache and imports
    conn.send(len(dataset))
    while conn.recv() == "pass":
        conn.send(time_pass(dataset))


def read_cost_per_modality(root: Path, repeats: int) -> list[str]:
    """CPU milliseconds of a bare ``rasterio.open(...).read()`` per file of each modality (median of passes)."""
    import rasterio

    patches = FlairHubDataset.from_root(root, "train", modalities=FLAIRLC_MODALITIES).patches
    lines = []
    for name in ("AERIAL_RGBI", "DEM_ELEV", "SENTINEL2_TS", "SENTINEL2_MSK-SC", "AERIAL_LABEL-COSIA"):
        passes = []
        for _ in range(repeats + 1):
            start = time.process_time()
            for patch in patches:
                with rasterio.open(patch.files[name]) as dataset:
                    dataset.read()
            passes.append((time.process_time() - start) / len(patches) * 1e3)
        with rasterio.open(patches[0].files[name]) as dataset:
            shape = (dataset.count, dataset.height, dataset.width)
        lines.append(f"  {name:19s} {str(shape):16s} {statistics.median(passes[1:]):6.2f} ms CPU per file")
    return lines


def compare_first_sample(root: Path) -> list[str]:
    """What each loader delivers for the first train patch, and whether the arrays are equal."""
    ours = make_dataset("flairlc", root)
    theirs = make_dataset("torchgeo", root)
    lines = []
    a = ours[0]
    b = theirs[0] if theirs is not None else {}
    if theirs is not None:
        assert theirs.files[0]["patch_id"] == a["id"], (theirs.files[0]["patch_id"], a["id"])
    for key, tg_key in SAME_ARRAYS.items():
        line = f"  {key:15s} flairlc {str(a[key].dtype):14s} {tuple(a[key].shape)}"
        if tg_key in b:
            equal = torch.equal(a[key].to(torch.float64), b[tg_key].to(torch.float64))
            line += f" | torchgeo {tg_key:25s} {str(b[tg_key].dtype):14s} {tuple(b[tg_key].shape)} equal values: {equal}"
        lines.append(line)
    lines.append(f"  {'dates_days':15s} flairlc {str(a['dates_days'].dtype):14s} {tuple(a['dates_days'].shape)}"
                 + (" | torchgeo: none" if theirs is not None else ""))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, help="an existing FLAIR-HUB root (default: generate one)")
    parser.add_argument("--dates", type=int, default=50, help="Sentinel-2 dates per ROI (generated root)")
    parser.add_argument("--repeats", type=int, default=7, help="passes per loader")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root
        if root is None:
            root = Path(tmp) / "hub"
            generate_hub_dataset(root, domains=2, rois_per_domain=3, patches_per_side=3, patch_size=512,
                                 dates=args.dates, seed=0)
        print(f"{platform.machine()}, {torch.__version__}, root {root}")
        for line in compare_first_sample(root):
            print(line)
        print("rasterio alone, one process:")
        for line in read_cost_per_modality(root, args.repeats):
            print(line)
        kinds = ["flairlc"] + (["torchgeo"] if make_dataset("torchgeo", root) is not None else [])
        context = multiprocessing.get_context("spawn")
        conns, processes, sizes = {}, [], {}
        for kind in kinds:
            parent, child = context.Pipe()
            process = context.Process(target=serve, args=(kind, root, child))
            process.start()
            processes.append(process)
            conns[kind] = parent
            sizes[kind] = parent.recv()
        times: dict[str, list[tuple[float, float]]] = {kind: [] for kind in kinds}
        for _ in range(args.repeats):
            for kind in kinds:
                conns[kind].send("pass")
                times[kind].append(conns[kind].recv())
        for kind in kinds:
            conns[kind].send("stop")
        for process in processes:
            process.join()
        medians = {}
        for kind in kinds:
            wall = [t[0] / sizes[kind] * 1e3 for t in times[kind]]
            cpu = [t[1] / sizes[kind] * 1e3 for t in times[kind]]
            medians[kind] = (statistics.median(wall), statistics.median(cpu))
            print(f"{kind:9s} {sizes[kind]} samples: {1e3 / medians[kind][0]:6.1f} samples/s, "
                  f"{medians[kind][0]:6.2f} ms per sample (passes {min(wall):.2f}–{max(wall):.2f}), "
                  f"CPU {medians[kind][1]:6.2f} ms per sample (passes {min(cpu):.2f}–{max(cpu):.2f})")
        if "torchgeo" in medians:
            wall_ratio = medians["torchgeo"][0] / medians["flairlc"][0]
            cpu_ratio = medians["torchgeo"][1] / medians["flairlc"][1]
            print(f"torchgeo / flairlc per sample: wall {wall_ratio:.2f}, CPU {cpu_ratio:.2f}")

if __name__ == "__main__":
    main()

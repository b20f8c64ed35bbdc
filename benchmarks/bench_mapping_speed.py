"""Mapping speed against FLAIR-1's zone detection, same raster and weights, and map agreement.

Times, in alternating runs (median of ``--repeats``), on one synthetic orthophoto (R, G, B, NIR +
elevation, 0.2 m):

- ``flair1``: a re-implementation of FLAIR-1's zone detection kept in this script (512 px windows
  with 128 px margins, stepping by 256, only the central 256² of each prediction kept, reads past
  the raster edge zero-filled; 4 passes of the network per pixel, no blending), writing a deflate
  GeoTIFF;
- ``flairlc`` variants: :func:`flairlc.mapping.map_raster` with the given window, overlap and
  memory format (``W/O`` in the variant name, ``auto`` for the default window of
  :func:`flairlc.mapping.blending.fit_window`, ``-cl`` for channels-last, ``-nocl`` without,
  ``-onnx`` for the network in ONNX Runtime: :class:`flairlc.mapping.runtime.OnnxPredictor`,
  ``-compile`` for the network compiled by ``torch.compile``:
  :func:`flairlc.mapping.runtime.compile_network`, e.g. ``flairlc-auto/128-cl-compile``).

The ONNX export and the compilation happen once per run, before the timed rounds (their time is
printed).

Each map is compared with a single pass of the network over the whole raster (the map with no
tiling at all): the agreement is the share of pixels with the same class. The model is the
paper's U-Net (ResNet34, 5 bands, 13 classes), random weights unless ``--checkpoint``.

    python benchmarks/bench_mapping_speed.py --size 2048 --repeats 3 \\
        --variants flair1 flairlc-512/128-nocl flairlc-512/128-cl flairlc-auto/128-cl
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
import torch
from rasterio.windows import Window

from flairlc.mapping import MapOptions, map_raster


def build_model(checkpoint: str | None):
    """The predictor: a checkpoint's task, or the paper's U-Net with random weights."""
    if checkpoint:
        from flairlc.training.checkpoint import load_task

        return load_task(checkpoint)
    from flairlc.training import SegmentationTask

    torch.manual_seed(0)
    return SegmentationTask(model="unet", model_kwargs={"encoder_name": "resnet34"}, aerial_scaling="standardize").eval()


def make_orthophoto(folder: Path, size: int) -> Path:
    """A synthetic 5-band orthophoto (R, G, B, NIR, elevation) of ``size``² pixels."""
    from flairlc.data.synthetic import generate_orthophoto

    year = generate_orthophoto(folder, width=size, height=size, seed=0, years=(2021,), dates=1)[0]
    path = folder / "aerial5.tif"
    with rasterio.open(year.aerial) as a, rasterio.open(year.elevation) as e:
        profile = dict(a.profile, count=5, tiled=True, blockxsize=256, blockysize=256, compress="deflate")
        with rasterio.open(path, "w", **profile) as out:
            out.write(a.read(), indexes=[1, 2, 3, 4])
            out.write(e.read(1), 5)
    return path


def flair1_zone_detection(task, aerial: Path, out: Path, batch_size: int = 4, window: int = 512, margin: int = 128) -> np.ndarray:
    """FLAIR-1's tiling (see the module docstring); returns the class map ``(H, W)``."""
    step = window - 2 * margin
    with rasterio.open(aerial) as src:
        height, width, profile = src.height, src.width, src.profile
        classes = np.zeros((height, width), dtype=np.uint8)
        tiles = [(r, c) for r in range(0, height, step) for c in range(0, width, step)]
        for i in range(0, len(tiles), batch_size):
            chunk = tiles[i : i + batch_size]
            arrays = [src.read(window=Window(c - margin, r - margin, window, window), boundless=True, fill_value=0)
                      for r, c in chunk]
            with torch.inference_mode():
                proba = task.predict_proba({"aerial": torch.from_numpy(np.stack(arrays))})
            labels = proba.argmax(1).to(torch.uint8).numpy()
            for (r, c), label in zip(chunk, labels):
                h, w = min(step, height - r), min(step, width - c)
                classes[r : r + h, c : c + w] = label[margin : margin + h, margin : margin + w]
    profile.update(count=1, dtype="uint8", compress="deflate", nodata=None)
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(classes, 1)
    return classes


def single_pass(task, aerial: Path) -> np.ndarray:
    """The network over the whole raster at once (its side padded by reflection to a multiple of 32)."""
    with rasterio.open(aerial) as src:
        data = src.read()
    h, w = data.shape[1:]
    padded = np.pad(data, ((0, 0), (0, -h % 32), (0, -w % 32)), mode="reflect")
    with torch.inference_mode():
        logits, _ = task.forward_batch({"aerial": torch.from_numpy(padded[None])})
    return logits[0, :, :h, :w].argmax(0).to(torch.uint8).numpy()


_ONNX: dict[int, object] = {}


def _onnx(task):
    """The task's network in ONNX Runtime, exported once per run."""
    from flairlc.mapping.runtime import OnnxPredictor

    if id(task) not in _ONNX:
        start = time.perf_counter()
        _ONNX[id(task)] = OnnxPredictor(task.to(memory_format=torch.contiguous_format))
        print(f"ONNX export: {time.perf_counter() - start:.1f} s (once per run, not in the times)")
    return _ONNX[id(task)]


_COMPILED: dict[tuple[int, bool], object] = {}


def _compiled(task, aerial: Path, work: Path, batch_size: int, window: int | None, overlap: int, channels_last: bool):
    """A compiled copy of the task, compiled by one untimed map of the raster (once per run)."""
    from flairlc.mapping.runtime import compile_network

    key = (id(task), channels_last)
    if key not in _COMPILED:
        start = time.perf_counter()
        _COMPILED[key] = predictor = compile_network(copy.deepcopy(task))
        options = MapOptions(window=window, overlap=overlap, batch_size=batch_size, channels_last=channels_last)
        map_raster(predictor, aerial, work / "compile-warmup.tif", options=options, progress=False)
        print(f"torch.compile: {time.perf_counter() - start:.1f} s with one map (once per run, not in the times)")
    return _COMPILED[key]


def run_variant(name: str, task, aerial: Path, work: Path, batch_size: int) -> tuple[float, np.ndarray]:
    """Seconds and class map of one variant."""
    out = work / f"{name.replace('/', '_')}.tif"
    out.unlink(missing_ok=True)
    start = time.perf_counter()
    if name == "flair1":
        classes = flair1_zone_detection(task, aerial, out, batch_size)
        return time.perf_counter() - start, classes
    window_text, overlap_text = name.split("-")[1].split("/")
    window = None if window_text == "auto" else int(window_text)
    overlap = int(overlap_text)
    channels_last = "-cl" in name
    predictor = task
    if name.endswith("-onnx"):
        predictor = _onnx(task)
        start = time.perf_counter()  # the export (once per run, printed) is not counted
    if name.endswith("-compile"):
        predictor = _compiled(task, aerial, work, batch_size, window, overlap, channels_last)
        start = time.perf_counter()  # the compilation (once per run, printed) is not counted
    options = MapOptions(window=window, overlap=overlap, batch_size=batch_size, channels_last=channels_last)
    result = map_raster(predictor, aerial, out, options=options, progress=False)
    seconds = time.perf_counter() - start
    with rasterio.open(result.map_path) as ds:
        return seconds, ds.read(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048, help="raster side, pixels")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--variants", nargs="+", default=["flair1", "flairlc-512/128-nocl", "flairlc-auto/128-cl"])
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task = build_model(args.checkpoint)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        aerial = make_orthophoto(work / "ortho", args.size)
        reference = single_pass(task, aerial)
        times: dict[str, list[float]] = {v: [] for v in args.variants}
        agreement: dict[str, float] = {}
        for repeat in range(args.repeats):
            for name in args.variants:  # alternating: every variant once per round
                seconds, classes = run_variant(name, task, aerial, work, args.batch_size)
                times[name].append(seconds)
                agreement[name] = float((classes == reference).mean())
                print(f"round {repeat + 1}: {name:<24} {seconds:7.1f} s  agreement {agreement[name]:.4f}", flush=True)
    base = statistics.median(times[args.variants[0]])
    print(f"\n{args.size}² px, {platform.processor() or platform.machine()}, {args.threads} threads, batch {args.batch_size}; "
          f"single-pass map: {len(np.unique(reference))} classes")
    print(f"| variant | median s | runs | speed-up vs {args.variants[0]} | agreement with single pass |")
    print("|---|---:|---|---:|---:|")
    rows = []
    for name in args.variants:
        median = statistics.median(times[name])
        rows.append({"variant": name, "median_s": median, "runs_s": times[name], "speedup": base / median, "agreement": agreement[name]})
        print(f"| {name} | {median:.1f} | {', '.join(f'{t:.1f}' for t in times[name])} | {base / median:.2f}x | {agreement[name] * 100:.2f} % |")
    if args.json:
        args.json.write_text(json.dumps({"size": args.size, "threads": args.threads, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()

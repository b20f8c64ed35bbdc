"""km²/h of `flairlc map-area` on this machine: the local engine, and Ray with 1 and 2 workers.

A synthetic territory of ``--size`` px (0.2 m) is cut into orthophoto tiles of ``--ortho-tile-m``
metres with elevation tiles on another grid; it is mapped into output tiles of ``--tile-px``
with two models, untrained (speed does not depend on the weights):

* ``resnet34``: FLAIR's U-Net (ResNet34 encoder, 5 bands, 13 classes);
* ``small``: a ResNet18 U-Net of depth 3 with a narrow decoder, so that the job's own costs
  (VRT reads, tile cuts, COG writes, Ray's scheduling) weigh more.

Engines: ``map`` (one ``map_raster`` over the whole mosaic with the job's windows: what the
tiling costs), ``local`` (the job's tiles in this process), ``ray-1``/``ray-2`` (Ray started
here with 1 or 2 workers of 1 thread).

Each configuration runs ``--repeats`` times in alternation from an empty job folder; reported: the
median wall time of the whole job (Ray's start included) and km²/h, and the ratio against the
local engine measured in the same run. ``--engines`` picks what to run.

    python benchmarks/bench_map_area.py --size 2048 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
import warnings
from pathlib import Path

MODELS = {
    "resnet34": {"encoder_name": "resnet34", "encoder_weights": None},
    "small": {"encoder_name": "resnet18", "encoder_weights": None, "encoder_depth": 3,
              "decoder_channels": [32, 16, 8]},
}
ENGINES = ("map", "local", "ray-1", "ray-2")


def _make_area(root: Path, size: int, ortho_tile_m: float) -> dict[str, Path]:
    from flairlc.data.synthetic import generate_orthophoto
    from flairlc.data.synthetic.tiles import cut_into_tiles

    year = generate_orthophoto(root / "territory", width=size, height=size, seed=0, years=(2022,), dates=1)[0]
    ortho = root / "ortho"
    cut_into_tiles(year.aerial, ortho, ortho_tile_m, "ORTHO")
    elevation = root / "elevation"
    cut_into_tiles(year.elevation, elevation, ortho_tile_m, "ELEV", origin_shift_m=(ortho_tile_m / 2,) * 2)
    return {"ortho": ortho, "elevation": elevation}


def _checkpoint(root: Path, name: str) -> Path:
    import torch

    from flairlc.training.checkpoint import save_task
    from flairlc.training.task import SegmentationTask

    torch.manual_seed(0)
    path = root / f"{name}.ckpt"
    save_task(SegmentationTask(model="unet", model_kwargs=MODELS[name]), path)
    return path


def _run(engine: str, checkpoint: Path, area: dict[str, Path], out: Path, tile_px: int, threads: int,
         device: str = "cpu", precision: str = "32") -> dict:
    from flairlc.mapping import MapOptions
    from flairlc.mapping.job import MapJob, run_local

    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    job = MapJob.create(out, checkpoint, area["ortho"], elevation=area["elevation"], tile_px=tile_px,
                        options=MapOptions(precision=precision))
    if engine == "map":  # one map_raster over the whole mosaic, same windows: the tiling's cost
        import torch

        from flairlc.mapping import map_raster
        from flairlc.mapping.job import load_predictor

        torch.set_num_threads(threads)
        map_raster(load_predictor(checkpoint, device), job.aerial_vrt, out / "one.tif", elevation_path=job.elevation_vrt,
                   options=job.options, progress=False, device=device)
        seconds = time.perf_counter() - t0
        km2 = job.grid.width * job.grid.height * job.pixel_km2
        return {"seconds": seconds, "km2": km2, "km2_per_hour": km2 / seconds * 3600, "tiles": 1, "tile_seconds": seconds}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if engine == "local":
            result = run_local(job, progress=False, threads=threads, device=device)
        else:
            from flairlc.mapping.distributed import run_ray

            result = run_ray(job, workers=int(engine.split("-")[1]), cpus_per_tile=1, progress=False,
                             gpus_per_tile=1.0 if device == "cuda" else 0.0)
    summary = job.finish(engine, result.seconds, result.outcomes)
    seconds = time.perf_counter() - t0
    assert summary["tiles"]["failed"] == 0, summary["failures"]
    km2 = summary["area_km2"]["done"]
    return {"seconds": seconds, "km2": km2, "km2_per_hour": km2 / seconds * 3600, "tiles": summary["tiles"]["total"],
            "tile_seconds": summary["this_run"]["tile_seconds"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048, help="territory side, pixels (default 2048)")
    parser.add_argument("--ortho-tile-m", type=float, default=204.8, help="orthophoto tile side, metres")
    parser.add_argument("--tile-px", type=int, default=1024, help="output tile side, pixels")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=list(ENGINES))
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads of the local engine")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (Ray: one GPU per tile task)")
    parser.add_argument("--precision", choices=("32", "bf16"), default="32")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        area = _make_area(root, args.size, args.ortho_tile_m)
        runs: dict[tuple[str, str], list[dict]] = {}
        for name in args.models:
            checkpoint = _checkpoint(root, name)
            for _ in range(args.repeats):
                for engine in args.engines:
                    runs.setdefault((name, engine), []).append(
                        _run(engine, checkpoint, area, root / "job", args.tile_px, args.threads, args.device,
                             args.precision))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; territory "
          f"{args.size}² px ({args.size**2 * 0.04 / 1e6:.3f} km²), output tiles {args.tile_px} px, "
          f"median of {args.repeats}; local engine with {args.threads} torch threads, Ray 1 thread per worker")
    print(f"| model | engine | tiles | wall s (median) | km²/h | vs {args.engines[0]} |")
    print("|---|---|---|---|---|---|")
    results = []
    for name in args.models:
        base = statistics.median(r["seconds"] for r in runs.get((name, args.engines[0]), [{"seconds": float("nan")}]))
        for engine in args.engines:
            rs = runs[(name, engine)]
            seconds = statistics.median(r["seconds"] for r in rs)
            rate = rs[0]["km2"] / seconds * 3600
            results.append({"model": name, "engine": engine, "seconds": seconds, "km2_per_hour": rate,
                            "runs": rs})
            print(f"| {name} | {engine} | {rs[0]['tiles']} | {seconds:.1f} | {rate:.2f} | {base / seconds:.2f}x |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

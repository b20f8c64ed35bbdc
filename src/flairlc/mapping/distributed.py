"""Running a map job's tiles on Ray: one task per tile, on one machine or a cluster.

Ray (``pip install "flairlc[ray]"``) schedules the tile tasks of a :class:`~flairlc.mapping.job.MapJob`
on its workers with a CPU and/or GPU share each; a task whose worker dies (killed, out of memory,
node lost) or that raises is retried up to ``retries`` times, then recorded as failed while the
others go on. Each worker loads the model once and keeps it for the next tiles. Workers read the
inputs and write the tiles through the job folder, so on a cluster it must be on a file system
every node sees, at the same path (as the inputs and the checkpoint).

    ray start --head                       # on the head node; `ray start --address HEAD:6379` on the others
    flairlc map-area ... --engine ray --ray-address auto --gpus-per-tile 1
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from flairlc.map_options import MapOptions
from flairlc.mapping.job import (
    MapJob,
    RunResult,
    TileAccounting,
    TileOutcome,
    load_predictor,
    map_tile,
    record_failure,
)


def _tile_task(root: str, name: str, device: str, threads: int, options: MapOptions) -> TileOutcome:
    """Ray task: map tile ``name`` of the job in ``root`` (in a worker process) with the driver's
    ``options`` (those of ``job.json``, and the driver's reader threads…)."""
    import torch

    torch.set_num_threads(threads)
    job = dataclasses.replace(_open_job(root), options=options)
    if device == "cuda" and not torch.cuda.is_available():
        device = "cpu"
    predictor = load_predictor(job.spec["checkpoint"], device, job.spec["checkpoint_sha256"], options.runtime)
    return map_tile(job, job.task(name), predictor, device)


_JOBS: dict[tuple[str, int], MapJob] = {}


def _open_job(root: str) -> MapJob:
    """The job in ``root``, opened once per worker process (again if its job.json changed)."""
    key = (root, os.stat(os.path.join(root, "job.json")).st_mtime_ns)
    if key not in _JOBS:
        _JOBS.clear()
        _JOBS[key] = MapJob.open(root)
    return _JOBS[key]


def run_ray(
    job: MapJob,
    address: str | None = None,
    workers: int | None = None,
    cpus_per_tile: float = 1.0,
    gpus_per_tile: float = 0.0,
    retries: int = 2,
    progress: bool = True,
    init_kwargs: dict[str, Any] | None = None,
) -> RunResult:
    """Map the job's unfinished tiles as Ray tasks.

    Args:
        job: the job (its folder must be visible to every worker at the same path).
        address: a running Ray cluster (``"auto"``, ``"ray://host:10001"``, ``"host:6379"``);
            None starts Ray on this machine for this run.
        workers: with a local Ray, the tiles mapped at once (CPUs given to Ray:
            ``workers * cpus_per_tile``; default: every CPU).
        cpus_per_tile: CPUs a tile task holds; it also runs with that many torch threads.
        gpus_per_tile: GPUs a tile task holds (e.g. 1, or 0.5 to run two tiles per GPU); > 0
            maps on ``cuda``.
        retries: attempts after the first when a worker dies or the task raises.
        progress: a bar of tiles and km² with km²/h and the ETA.
        init_kwargs: more ``ray.init`` arguments.

    Returns:
        every tile's outcome (``skipped`` for the tiles already done) and the wall time.
    """
    try:
        import ray
    except ImportError:
        raise RuntimeError('the Ray engine needs Ray: pip install "flairlc[ray]" (or pip install ray)') from None
    started = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "configure_logging": False, "log_to_driver": False}
        if address is None:
            cpus = (workers * cpus_per_tile) if workers else os.cpu_count()
            kwargs["num_cpus"] = max(1, int(round(cpus)))
            if gpus_per_tile > 0 and workers:
                kwargs["num_gpus"] = max(1, int(round(workers * gpus_per_tile)))
        else:
            kwargs["address"] = address
        ray.init(**{**kwargs, **(init_kwargs or {})})
        started = True
    device = "cuda" if gpus_per_tile > 0 and job.options.runtime != "onnx" else "cpu"  # (ONNX: CPU only)
    threads = max(1, int(round(cpus_per_tile)))
    remote = ray.remote(num_cpus=cpus_per_tile, num_gpus=gpus_per_tile, max_retries=retries,
                        retry_exceptions=True)(_tile_task)
    accounting = TileAccounting(job, job.tasks, progress, f"tiles of {job.root.name} (Ray)")
    root = str(job.root.resolve())
    try:
        refs = {}
        for task in job.tasks:
            if job.is_done(task.name):
                accounting.add(TileOutcome(task.name, "skipped"))
            else:
                refs[remote.remote(root, task.name, device, threads, job.options)] = task.name
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1)
            for ref in ready:
                name = refs.pop(ref)
                try:
                    accounting.add(ray.get(ref))
                except Exception as error:  # noqa: BLE001 - after Ray's retries: recorded, the job goes on
                    cause = getattr(error, "cause", None)
                    accounting.add(record_failure(job, name, cause if isinstance(cause, BaseException) else error,
                                                  retries + 1))
    finally:
        seconds = accounting.close()
        if started:
            ray.shutdown()
    return RunResult(accounting.outcomes, seconds)

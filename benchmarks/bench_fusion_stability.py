"""Spread of the fusion benefit over seeds and torch thread counts.

Runs the farmland experiment (:mod:`flairlc.demo.farmland`: U-Net, U-T&T, and U-T&T with its
Sentinel-2 input zeroed as the negative control), with ``--kinds demo`` the demo's two models, and
with ``--kinds hub-aerial hub-multimodal`` the FLAIR-HUB farmland experiment
(:mod:`flairlc.demo.hub_farmland`: the multimodal network on aerial alone and on aerial + DEM +
Sentinel-2), for every seed × thread count, each run in its own process (the thread count of a process is fixed at
its start). Writes ``runs.jsonl`` (one line per run, appended as runs end, so an interrupted
benchmark keeps what it measured and skips it when started again), ``summary.md`` (median, min
and max per model and thread count, and the margin U-T&T − U-Net per run) and ``spread.png``.

    python benchmarks/bench_fusion_stability.py --seeds 0 1 2 3 4 --threads 1 2 --parallel 2
    python benchmarks/bench_fusion_stability.py --seeds 0 1 2 3 4 --threads 1 2 --kinds demo
    python benchmarks/bench_fusion_stability.py --seeds 0 1 2 3 4 --threads 1 2 --kinds hub-aerial hub-multimodal

``--parallel`` runs that many processes at once; results do not depend on it (each process keeps
its own thread count), only the wall time does.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from statistics import median
from typing import Any

#: What a run trains: the farmland U-Net, U-T&T and its control, or the demo's two models.
KINDS = {"unet": ("unet", "real"), "utt": ("utt", "real"), "zeros": ("utt", "zeros"), "demo": ("demo", "both"),
         "hub-aerial": ("hub-aerial", "real"), "hub-multimodal": ("hub-multimodal", "real")}
#: The model each experiment's lead is measured against, and the models measured.
BASELINES = {"farmland": ("unet", "utt"), "demo": ("unet", "utt"), "hub-farmland": ("hub-aerial", "hub-multimodal")}
#: Training recipes: flairlc's (cosine learning-rate decay, fusion terms started at 0) and the
#: one before it (constant learning rate, PyTorch's default initialization of the fusion).
RECIPES = {"flairlc": {}, "constant-lr": {"scheduler": None, "fusion_zero_init": False}}


def run_worker(job: dict[str, Any]) -> list[dict[str, Any]]:
    """Run one job in this process (its thread count must already be set)."""
    import torch

    torch.set_num_threads(job["threads"])
    recipe = RECIPES[job["recipe"]]
    if job["model"] == "demo":
        rows = run_demo_seed(job["seed"], Path(job["data"]), recipe)
    elif job["model"].startswith("hub-"):
        from flairlc.demo.hub_farmland import HubFarmlandSettings
        from flairlc.demo.hub_farmland import train_and_score as train_hub

        settings = HubFarmlandSettings(task_overrides=recipe)
        root = settings.generate(Path(job["data"]) / "hub_farmland")
        with tempfile.TemporaryDirectory() as work:
            score = train_hub(job["model"].removeprefix("hub-"), root, settings, seed=job["seed"], work_dir=work)
        rows = [dict(score.to_dict(), experiment="hub-farmland", model=job["model"], sentinel="real")]
    else:
        from flairlc.demo.farmland import FarmlandSettings, generate_farmland, train_and_score

        root = generate_farmland(Path(job["data"]) / "farmland")
        with tempfile.TemporaryDirectory() as work:
            score = train_and_score(job["model"], root, FarmlandSettings(**recipe), seed=job["seed"],
                                    sentinel=job["sentinel"], work_dir=work)
        rows = [dict(score.to_dict(), experiment="farmland")]
    return [dict(row, recipe=job["recipe"]) for row in rows]


def run_demo_seed(seed: int, data_dir: Path, recipe: dict[str, Any]) -> list[dict[str, Any]]:
    """Train the demo's U-Net and U-T&T on the demo dataset of ``seed``; their seasonal IoUs."""
    from dataclasses import replace

    import numpy as np
    import torch

    from flairlc.demo.farmland import SEASONAL_CLASSES
    from flairlc.demo.pipeline import FULL, train_and_test

    root = demo_dataset(seed, data_dir)
    rows = []
    settings = replace(FULL, **recipe)
    with tempfile.TemporaryDirectory() as out:
        scores = {m: train_and_test(m, root, Path(out), settings, seed)[1].overall() for m in ("unet", "utt")}
    present = [k for k in SEASONAL_CLASSES if scores["unet"].support[k] > 0]
    for model, s in scores.items():
        rows.append(dict(
            experiment="demo", model=model, sentinel="real", seed=seed, threads=torch.get_num_threads(),
            seasonal_iou=float(np.nanmean(s.iou[present])), seasonal_classes=[s.class_names[k] for k in present],
            seasonal_class_iou=[float(s.iou[k]) for k in present], miou=float(s.miou),
        ))
    return rows


def demo_dataset(seed: int, data_dir: Path) -> Path:
    """The demo's dataset for ``seed`` (generated once)."""
    from flairlc.demo.pipeline import FULL

    return FULL.generate(data_dir / f"demo_seed{seed}", seed)


def prepare(data: str, farmland: bool, demo_seeds: list[int], hub: bool = False) -> None:
    """Generate the shared datasets once, before runs start in parallel."""
    if hub:
        from flairlc.demo.hub_farmland import HubFarmlandSettings

        HubFarmlandSettings().generate(Path(data) / "hub_farmland")
    if farmland:
        from flairlc.demo.farmland import generate_farmland

        generate_farmland(Path(data) / "farmland")
    for seed in demo_seeds:
        demo_dataset(seed, Path(data))


def experiment_of(model: str) -> str:
    """The experiment a job's model belongs to."""
    return "demo" if model == "demo" else "hub-farmland" if model.startswith("hub-") else "farmland"


def job_key(job: dict[str, Any]) -> tuple:
    experiment = experiment_of(job["model"])
    return job["recipe"], experiment, job["model"], job["sentinel"], job["seed"], job["threads"]


def done_keys(runs_path: Path) -> set[tuple]:
    """Jobs already measured in ``runs.jsonl`` (a demo job counts once both models are in)."""
    keys = set()
    if runs_path.exists():
        for line in runs_path.read_text().splitlines():
            row = json.loads(line)
            model = "demo" if row["experiment"] == "demo" else row["model"]
            sentinel = "both" if row["experiment"] == "demo" else row["sentinel"]
            keys.add((row["recipe"], row["experiment"], model, sentinel, row["seed"], row["threads"]))
    return keys


def launch(job: dict[str, Any], runs_path: Path) -> None:
    env = dict(os.environ, OMP_NUM_THREADS=str(job["threads"]), MKL_NUM_THREADS=str(job["threads"]))
    result = subprocess.run([sys.executable, __file__, "--worker", json.dumps(job)], env=env,
                            capture_output=True, text=True)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        print(f"FAILED {job}:\n{result.stderr[-3000:]}", file=sys.stderr)
        return
    with runs_path.open("a") as f:
        f.write(lines[-1].replace("\t", "\n") + "\n")
    for row in map(json.loads, lines[-1].split("\t")):
        print(f"{row['recipe']:11} {row['experiment']:8} {row['model']:4} {row['sentinel']:5} seed {row['seed']} "
              f"threads {row['threads']}: seasonal IoU {row['seasonal_iou']:.3f}, mIoU {row['miou']:.3f}", flush=True)


def summarize(runs_path: Path, out: Path) -> str:
    """Markdown tables of the spread, and ``spread.png``."""
    rows = [json.loads(line) for line in runs_path.read_text().splitlines()]
    lines = ["Mean IoU of the seasonal classes:", "",
             "| recipe | experiment | model | Sentinel-2 | threads | runs | median | min | max |",
             "|---|---|---|---|---:|---:|---:|---:|---:|"]
    groups: dict[tuple, list[float]] = {}
    for r in rows:
        groups.setdefault((r["recipe"], r["experiment"], r["model"], r["sentinel"], r["threads"]), []).append(r["seasonal_iou"])
    for (recipe, experiment, model, sentinel, threads), values in sorted(groups.items()):
        lines.append(f"| {recipe} | {experiment} | {model} | {sentinel} | {threads} | {len(values)} | "
                     f"{median(values):.3f} | {min(values):.3f} | {max(values):.3f} |")
    by_run = {(r["recipe"], r["experiment"], r["model"], r["sentinel"], r["seed"], r["threads"]): r["seasonal_iou"] for r in rows}
    lines += ["", "Lead over the baseline (U-Net; on FLAIR-HUB the aerial-only model) of the same recipe, seed and "
              "thread count (seasonal IoU):", "",
              "| recipe | experiment | seed | threads | baseline | fused − baseline | fused (zeros) − baseline |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for (recipe, experiment, model, _, seed, threads), base in sorted(by_run.items()):
        baseline, fused = BASELINES[experiment]
        if model != baseline:
            continue
        cells = []
        for sentinel in ("real", "zeros"):
            score = by_run.get((recipe, experiment, fused, sentinel, seed, threads))
            cells.append("–" if score is None else f"{score - base:+.3f}")
        lines.append(f"| {recipe} | {experiment} | {seed} | {threads} | {base:.3f} | {cells[0]} | {cells[1]} |")
    _plot(groups, out / "spread.png")
    text = "\n".join(lines) + "\n"
    (out / "summary.md").write_text(text)
    return text


def _plot(groups: dict[tuple, list[float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r}\n{e}\n{m} ({s})\n{t} thr" for r, e, m, s, t in sorted(groups)]
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(labels)), 4))
    for i, key in enumerate(sorted(groups)):
        values = groups[key]
        ax.scatter([i] * len(values), values, alpha=0.7)
        ax.hlines(median(values), i - 0.3, i + 0.3, color="black")
    ax.set_xticks(range(len(labels)), labels, fontsize=7)
    ax.set_ylabel("mean IoU of the seasonal classes")
    ax.set_ylim(0, 1)
    ax.set_title("Fusion benefit over seeds and thread counts (bar: median)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--parallel", type=int, default=1, help="processes at once")
    parser.add_argument("--recipes", nargs="+", choices=sorted(RECIPES), default=["flairlc"])
    parser.add_argument("--kinds", nargs="+", choices=list(KINDS), default=["unet", "utt", "zeros"],
                        help="farmland U-Net, U-T&T, U-T&T on zeroed Sentinel-2 (control), the demo's two models")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/fusion_stability"))
    parser.add_argument("--data", type=Path, default=None, help="where the datasets are generated (default OUT/data)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--prepare", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.prepare:
        prepare(**json.loads(args.prepare))
        return
    if args.worker:
        print("\t".join(json.dumps(row) for row in run_worker(json.loads(args.worker))))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    data = args.data or args.out / "data"
    kinds = [KINDS[k] for k in args.kinds]
    runs_path = args.out / "runs.jsonl"
    done = done_keys(runs_path)
    jobs = [dict(model=m, sentinel=s, seed=seed, threads=t, data=str(data), recipe=recipe)
            for recipe in args.recipes for seed in args.seeds for t in args.threads for m, s in kinds]
    jobs = [j for j in jobs if job_key(j) not in done]
    print(f"{len(jobs)} runs to do ({len(done)} already in {runs_path})", flush=True)
    if jobs:
        # the shared datasets are generated once, before the parallel runs
        demo_seeds = sorted({j["seed"] for j in jobs if j["model"] == "demo"})
        farmland = any(experiment_of(j["model"]) == "farmland" for j in jobs)
        hub = any(experiment_of(j["model"]) == "hub-farmland" for j in jobs)
        spec = json.dumps(dict(data=str(data), farmland=farmland, demo_seeds=demo_seeds, hub=hub))
        subprocess.run([sys.executable, __file__, "--prepare", spec], check=True)
    with ThreadPoolExecutor(max(1, args.parallel)) as pool:
        list(pool.map(lambda job: launch(job, runs_path), jobs))
    if runs_path.exists():
        print(summarize(runs_path, args.out))


if __name__ == "__main__":
    main()

"""``flairlc demo``: the FLAIR story end to end on synthetic data, with an HTML report.

1. generate a synthetic FLAIR #2 dataset (train and test domains), check it and draw its class
   distribution;
2. train the aerial-only U-Net and the U-T&T fusion with the same small CPU budget;
3. evaluate both on the test domains with the paper's metric;
4. map a synthetic orthophoto larger than a patch, for two survey years, with the better model,
   and compute land-cover areas and the change between the years;
5. write ``report.html`` (self-contained) with the PNGs, JSON and CSV beside it.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import RichProgressBar
from lightning.pytorch.loggers import CSVLogger
from rich.console import Console

from flairlc.data import FlairDataset, collate_flair, discover_patches
from flairlc.data.check import check_dataset
from flairlc.data.stats import class_distribution
from flairlc.data.synthetic import generate_orthophoto
from flairlc.demo.figures import (
    plot_area_table,
    plot_sample_patches,
    plot_seasonal_profiles,
    render_map_png,
)
from flairlc.demo.recipe import CpuRecipe, SyntheticSize
from flairlc.demo.report import ModelResult, ReportContext, terminal_table, write_report
from flairlc.evaluation import EvaluationResult
from flairlc.mapping import MapOptions, compute_areas, compute_change, map_raster
from flairlc.training import SegmentationTask

#: The paper's reported results on the FLAIR #2 test set (model, inputs, mIoU).
PAPER_RESULTS = [
    ("U-Net ResNet34", "aerial", 0.5470),
    ("U-Net ResNet34 + metadata + augmentation", "aerial", 0.5593),
    ("U-T&T", "aerial + Sentinel-2", 0.5594),
    ("U-T&T + cloud filter + monthly average + augmentation", "aerial + Sentinel-2", 0.5758),
]

HOW_TO_REAL = """\
## Get the data
Download FLAIR #2 from IGN and unpack it into one folder (e.g. `data/FLAIR2`): the trees
`flair_aerial_train/`, `flair_labels_train/`, `flair_sen_train/`, `flair_2_aerial_test/`,
`flair_2_labels_test/`, `flair_2_sen_test/` and the two JSON files at the root. Check it with
`flairlc check data/FLAIR2` and look at the class distribution with `flairlc stats data/FLAIR2`.

## Train and test the paper's four baselines
Each row of the paper has a config in `configs/`:

```
flairlc fit --config configs/unet.yaml --data.root data/FLAIR2
flairlc fit --config configs/unet_metadata_aug.yaml --data.root data/FLAIR2
flairlc fit --config configs/utt.yaml --data.root data/FLAIR2
flairlc fit --config configs/utt_filter_monthly_aug.yaml --data.root data/FLAIR2
flairlc test --config configs/utt.yaml --data.root data/FLAIR2 --ckpt_path best
```

## Scale out
On one node with several GPUs: `--trainer.devices 4 --trainer.strategy ddp`. On several nodes,
launch one process per GPU with torchrun or SLURM's srun and set `--trainer.num_nodes`
(see the README). Test metrics are exact under DDP: every test patch is counted once.

## Map a territory
`flairlc map --checkpoint runs/utt/checkpoints/last.ckpt --aerial ortho.vrt --elevation elevation.vrt --out map.tif`,
then `flairlc areas map.tif --zones communes.gpkg --zone-field name` and
`flairlc change map_2019.tif map_2022.tif --out change.tif`.
"""


@dataclass(frozen=True)
class DemoSettings(CpuRecipe, SyntheticSize):
    """Sizes and budgets of a demo run (flairlc's CPU recipe, with augmentation)."""

    augment: bool = True
    ortho_size_px: int = 1536
    map_window: int = 256
    map_overlap: int = 64
    sample_patches: int = 4


FULL = DemoSettings()
QUICK = DemoSettings(domains=4, test_domains=1, areas_per_domain=2, patches_per_area=4, epochs=2,
                     ortho_size_px=384, map_window=128, map_overlap=32, sample_patches=2)

MODEL_LABELS = {"unet": ("U-Net", "aerial"), "utt": ("U-T&T", "aerial + Sentinel-2")}


def run_demo(out: str | Path = "demo_output", quick: bool = False, seed: int = 0,
             settings: DemoSettings | None = None) -> dict[str, Any]:
    """Run the whole demo into ``out`` and return its results (also in ``out/results.json``)."""
    settings = settings or (QUICK if quick else FULL)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    console = Console()
    timings: dict[str, float] = {}
    torch.set_num_threads(max(1, torch.get_num_threads()))

    console.rule("[bold]flairlc demo: synthetic FLAIR data, CPU budget")
    start = time.perf_counter()
    root = out / "data"
    settings.generate(root, seed, progress=True)
    timings["generate the dataset"] = time.perf_counter() - start
    console.print(f"dataset: {root}")
    start = time.perf_counter()
    report_check = check_dataset(root)
    if not report_check.ok:
        raise RuntimeError(f"the generated dataset fails `flairlc check`:\n{report_check.to_text()}")
    stats_files = class_distribution(root).write_all(out / "stats")
    console.print(f"flairlc check: {report_check.num_patches} patches, no errors; class distribution in {out / 'stats'}")
    timings["check and class statistics"] = time.perf_counter() - start

    results: dict[str, EvaluationResult] = {}
    tasks: dict[str, SegmentationTask] = {}
    for model in ("unet", "utt"):
        start = time.perf_counter()
        console.rule(f"train {MODEL_LABELS[model][0]}")
        tasks[model], results[model] = train_and_test(model, root, out, settings, seed)
        timings[f"train and test {MODEL_LABELS[model][0]}"] = time.perf_counter() - start

    best = max(results, key=lambda m: results[m].overall().miou)
    start = time.perf_counter()
    console.rule(f"map two survey years with {MODEL_LABELS[best][0]}")
    mapping = map_two_years(tasks[best], out / "mapping", settings, seed)
    timings["map, areas and change"] = time.perf_counter() - start

    start = time.perf_counter()
    figures = {"Class distribution of the dataset (share of pixels)": stats_files["plot"]}
    figures.update(make_figures(tasks, root, out, settings, mapping))
    timings["figures and report"] = time.perf_counter() - start
    context = build_context(results, out, settings, figures, mapping, timings, best)
    report = write_report(out, context)
    summary = {
        "settings": asdict(settings),
        "best_model": best,
        "models": {m: {"miou": float(r.overall().miou), "evaluation_json": str(out / m / "evaluation" / "evaluation.json")}
                   for m, r in results.items()},
        "mapping": mapping["summary"],
        "timings_s": timings,
        "report": str(report),
    }
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    console.print(terminal_table(context.results))
    console.print(f"[bold green]report:[/] {report.resolve()}")
    return summary


def train_and_test(model: str, root: Path, out: Path, settings: DemoSettings, seed: int) -> tuple[SegmentationTask, EvaluationResult]:
    """Train one model with the demo budget, then score it on the test domains."""
    L.seed_everything(seed, verbose=False)
    data = settings.data(model, str(root), val_fraction=0.15, split_seed=seed)
    task = settings.task(model)
    trainer = L.Trainer(
        max_epochs=settings.epochs, accelerator="cpu", devices=1, deterministic=True,
        logger=CSVLogger(out / "runs", name=model), callbacks=[RichProgressBar()],
        default_root_dir=out / "runs", enable_model_summary=False, num_sanity_val_steps=0,
        log_every_n_steps=5,
    )
    trainer.fit(task, data)
    task.evaluation_dir = str(out / model / "evaluation")
    trainer.test(task, data, verbose=False)
    return task.eval(), task.test_result


def map_two_years(task: SegmentationTask, out: Path, settings: DemoSettings, seed: int) -> dict[str, Any]:
    """Map a synthetic territory for two survey years; areas of the last year and the change."""
    years = generate_orthophoto(out / "territory", width=settings.ortho_size_px, height=settings.ortho_size_px,
                                seed=seed, years=(2019, 2022), dates=settings.dates)
    maps = []
    for year in years:
        result = map_raster(
            task, year.aerial, out / f"map_{year.year}.tif", elevation_path=year.elevation,
            sentinel_dir=year.sentinel if task.uses_sentinel else None,
            options=MapOptions(window=settings.map_window, overlap=settings.map_overlap, batch_size=4), progress=True,
        )
        maps.append(result)
    areas = compute_areas(maps[-1].map_path, out_dir=out / "areas")
    change = compute_change(maps[0].map_path, maps[-1].map_path, out / "change.tif", out_dir=out / "change")
    truth_agreement = _agreement(maps[-1].map_path, years[-1].truth)
    summary = {
        "maps": [str(m.map_path) for m in maps],
        "km2_per_hour": [m.km2_per_hour for m in maps],
        "area_km2": maps[-1].area_km2,
        "pixel_agreement_with_truth": truth_agreement,
        "change": change.summary(),
    }
    return {"maps": maps, "areas": areas, "change": change, "years": years, "summary": summary}


def _agreement(map_path: Path, truth_path: Path) -> float:
    import rasterio

    with rasterio.open(map_path) as a, rasterio.open(truth_path) as b:
        predicted, truth = a.read(1), b.read(1)
    valid = (predicted != 255) & (truth != 255)
    return float((predicted[valid] == truth[valid]).mean()) if valid.any() else float("nan")


def make_figures(tasks: dict[str, SegmentationTask], root: Path, out: Path, settings: DemoSettings,
                 mapping: dict[str, Any]) -> dict[str, Path]:
    """The sample-patch figure, seasonal profiles, the map and its area chart."""
    figures_dir = out / "figures"
    records = discover_patches(root, splits=("test",))
    step = max(1, len(records) // settings.sample_patches)
    chosen = records[::step][: settings.sample_patches]
    dataset = FlairDataset(chosen, modalities=("aerial", "mask", "sentinel"), sat_patch_size=settings.sat_patch_size)
    samples = [dataset[i] for i in range(len(dataset))]
    batch = collate_flair(samples)
    predictions = {}
    with torch.no_grad():
        for model, task in tasks.items():
            labels = task.predict_proba(batch).argmax(1).numpy()
            predictions[MODEL_LABELS[model][0]] = list(labels)
    figures = {"Sample test patches": plot_sample_patches(samples, predictions, figures_dir / "sample_patches.png")}
    profiles_png, _ = plot_seasonal_profiles(root, figures_dir / "seasonal_profiles.png", max_patches=300, bin_days=14)
    figures["Sentinel-2 seasonal profiles per class (NDVI, mean ± std)"] = profiles_png
    maps = mapping["maps"]
    for year, result in zip(mapping["years"], maps):
        figures[f"Land-cover map {year.year}"] = render_map_png(result.map_path, figures_dir / f"map_{year.year}.png")
    areas = mapping["areas"]
    hectares = dict(zip(areas.class_names, areas.overall.area_ha.tolist()))
    figures["Area per class (last year)"] = plot_area_table(hectares, figures_dir / "areas.png")
    if "png" in mapping["change"].paths:
        figures["Transitions between the two years (ha)"] = mapping["change"].paths["png"]
    return figures


def build_context(results: dict[str, EvaluationResult], out: Path, settings: DemoSettings,
                  figures: dict[str, Path], mapping: dict[str, Any], timings: dict[str, float], best: str) -> ReportContext:
    """Assemble what the report shows."""
    model_results = []
    for model, result in results.items():
        scores = result.overall()
        name, inputs = MODEL_LABELS[model]
        evaluation = out / model / "evaluation"
        model_results.append(ModelResult(
            name=name, inputs=inputs, miou=float(scores.miou),
            per_class_iou={n: (None if np.isnan(v) else float(v)) for n, v in zip(scores.class_names, scores.iou)},
            confusion_png=evaluation / "confusion_matrix.png", iou_png=evaluation / "per_class_iou.png",
            evaluation_json=evaluation / "evaluation.json",
        ))
    areas = mapping["areas"]
    area_rows = [
        {"class": n, "area (ha)": round(float(ha), 3), "share (%)": round(float(p), 2)}
        for n, ha, p in zip(areas.class_names, areas.overall.area_ha, areas.overall.percent) if ha > 0
    ]
    area_rows.append({"class": "artificialized (building + pervious + impervious)",
                      "area (ha)": round(areas.overall.artificial_m2 / 10_000, 3), "share (%)": ""})
    change_rows = [{"summary": k, "value": round(v, 4) if isinstance(v, float) else v} for k, v in mapping["change"].summary().items()]
    budget = (f"CPU, {settings.epochs} epochs, batch {settings.batch_size}, {settings.patch_size}×{settings.patch_size} px "
              f"patches, {settings.encoder_name} encoder; U-T&T series with cloud filter and monthly average; "
              f"map made with {MODEL_LABELS[best][0]}")
    return ReportContext(
        title="flairlc demo: land cover from aerial and Sentinel-2 imagery",
        synthetic=True, budget_note=budget, results=model_results, figures=figures,
        tables={"Land-cover areas (last year's map)": area_rows, "Change between the two years": change_rows},
        paper_results=PAPER_RESULTS, how_to_real=HOW_TO_REAL, timings=timings,
    )

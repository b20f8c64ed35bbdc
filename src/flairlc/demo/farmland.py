"""The farmland experiment: does the Sentinel-2 fusion earn its place?

The synthetic generator draws herbaceous vegetation, agricultural land and plowed land from one
aerial colour and texture law: on the aerial image alone they cannot be told apart, while their
Sentinel-2 seasonal (NDVI) profiles over the year differ. On a synthetic "farmland" (areas drawn
mostly from agricultural tags) U-Net and U-T&T are trained with the same budget and scored on the
test domains; the fusion should lift the IoU of those *seasonal classes* far above U-Net's.

The same experiment, with the Sentinel-2 input replaced by zeros (``sentinel="zeros"``), is the
negative control: the satellite branch then carries no information and U-T&T must fall back to
U-Net's level. ``tests/test_fusion_benefit.py`` runs one seed of both;
``benchmarks/bench_fusion_stability.py`` runs many seeds and thread counts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from flairlc.demo.recipe import CpuRecipe, SyntheticSize
from flairlc.training import FlairDataModule

#: Baseline indices of herbaceous vegetation, agricultural land and plowed land.
SEASONAL_CLASSES = (9, 10, 11)
#: Ways of feeding the Sentinel-2 series to U-T&T: as read, or replaced by zeros (control).
SENTINEL_MODES = ("real", "zeros")


@dataclass(frozen=True)
class FarmlandSettings(CpuRecipe, SyntheticSize):
    """Data and training budget of the farmland experiment (flairlc's CPU recipe, 20 epochs).

    The defaults take about 1.5 min (U-Net) and 2.5 min (U-T&T) per run on 2 idle CPU cores.
    """

    epochs: int = 20
    domains: int = 12
    #: 4 test domains hold about 60 patches of the seasonal classes: enough for a stable score.
    test_domains: int = 4
    areas_per_domain: int = 8
    patches_per_area: int = 3
    data_seed: int = 5
    #: Land-cover tags of the areas: agricultural first (see ``generate_dataset``).
    area_tags: tuple[str, ...] | None = ("AA", "AN", "AU", "AF", "NA")
    #: Extra :class:`SegmentationTask` arguments (e.g. ``{"scheduler": None}`` for an ablation).
    task_overrides: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FarmlandScore:
    """One trained model's scores on the farmland test domains.

    Attributes:
        model: ``"unet"`` or ``"utt"``.
        sentinel: ``"real"`` or ``"zeros"`` (U-T&T's Sentinel-2 input).
        seed: training seed.
        threads: torch intra-op threads during training.
        seasonal_iou: mean IoU over the seasonal classes present in the test domains.
        seasonal_classes: the class names averaged in ``seasonal_iou``.
        seasonal_class_iou: IoU of each of those classes.
        miou: mIoU over the 12 real classes.
    """

    model: str
    sentinel: str
    seed: int
    threads: int
    seasonal_iou: float
    seasonal_classes: list[str]
    seasonal_class_iou: list[float]
    miou: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return asdict(self)


def generate_farmland(root: str | Path, settings: FarmlandSettings = FarmlandSettings()) -> Path:
    """Write the farmland dataset under ``root`` (skipped when it is already there)."""
    return settings.generate(root, settings.data_seed)


class _ZeroSentinelData(FlairDataModule):
    """The data module with every Sentinel-2 value replaced by 0 (dates and pad mask kept)."""

    def on_after_batch_transfer(self, batch: dict[str, Any], dataloader_idx: int) -> dict[str, Any]:
        if "sentinel" in batch:
            batch = dict(batch, sentinel=torch.zeros_like(batch["sentinel"]))
        return batch


def train_and_score(
    model: str,
    root: str | Path,
    settings: FarmlandSettings = FarmlandSettings(),
    seed: int = 0,
    sentinel: str = "real",
    work_dir: str | Path | None = None,
) -> FarmlandScore:
    """Train ``model`` on the farmland train domains, then score it on the test domains.

    Args:
        model: ``"unet"`` or ``"utt"``.
        root: farmland root (see :func:`generate_farmland`).
        settings: data and training budget.
        seed: seed of the weights, the shuffling and the dropout.
        sentinel: ``"real"``, or ``"zeros"`` for the negative control (U-T&T only).
        work_dir: Lightning's ``default_root_dir`` (nothing is logged or checkpointed).

    Returns:
        the scores, with the number of torch threads the training used.
    """
    if sentinel not in SENTINEL_MODES:
        raise ValueError(f"sentinel must be one of {SENTINEL_MODES}, got {sentinel!r}")
    L.seed_everything(seed, verbose=False)
    data_class = _ZeroSentinelData if sentinel == "zeros" else FlairDataModule
    data = settings.data(model, str(root), data_class, val_domains=[])
    task = settings.task(model, **settings.task_overrides)
    seasonal, threads = fit_and_score_seasonal(task, data, settings.epochs, SEASONAL_CLASSES,
                                               f"the test domains of {root}", work_dir)
    return FarmlandScore(model=model, sentinel=sentinel, seed=seed, threads=threads, **seasonal)


def fit_and_score_seasonal(
    task: L.LightningModule,
    data: L.LightningDataModule,
    epochs: int,
    seasonal_classes: tuple[int, ...],
    where: str,
    work_dir: str | Path | None = None,
) -> tuple[dict[str, Any], int]:
    """Train ``task`` for ``epochs`` on CPU (no validation, no logs), test it, and score the seasonal classes.

    Args:
        task: the task to train (its ``test_result`` holds the test scores afterwards).
        data: its data module.
        epochs: training epochs.
        seasonal_classes: indices of the classes averaged in ``seasonal_iou``.
        where: the test set, for the message when it holds none of those classes.
        work_dir: Lightning's ``default_root_dir`` (nothing is logged or checkpointed).

    Returns:
        ``seasonal_iou`` (mean IoU over the seasonal classes present), ``seasonal_classes`` (their
        names), ``seasonal_class_iou`` and ``miou``; and the torch threads the training used.

    Raises:
        ValueError: no pixel of the seasonal classes in the test set.
    """
    trainer = L.Trainer(
        max_epochs=epochs, accelerator="cpu", devices=1, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        limit_val_batches=0, num_sanity_val_steps=0, deterministic=True,
        default_root_dir=str(work_dir) if work_dir else None,
    )  # fmt: skip
    threads = torch.get_num_threads()
    trainer.fit(task, data)
    trainer.test(task, datamodule=data, verbose=False)
    scores = task.test_result.overall()
    present = [k for k in seasonal_classes if scores.support[k] > 0]
    if not present:
        raise ValueError(f"no pixel of the seasonal classes in {where}")
    return {
        "seasonal_iou": float(np.nanmean(scores.iou[present])),
        "seasonal_classes": [scores.class_names[k] for k in present],
        "seasonal_class_iou": [float(scores.iou[k]) for k in present],
        "miou": float(scores.miou),
    }, threads

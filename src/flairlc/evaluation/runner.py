"""Scoring a trained checkpoint on a split, or a folder of predictions, against FLAIR masks."""

from __future__ import annotations

from pathlib import Path

import lightning as L
from torch.utils.data import DataLoader

from flairlc.data.collate import collate_flair
from flairlc.data.dataset import FlairDataset
from flairlc.data.errors import FlairDataError
from flairlc.data.layout import discover_patches
from flairlc.evaluation.predictions import evaluate_prediction_folder
from flairlc.evaluation.report import EvaluationResult
from flairlc.nomenclature import NomenclatureSpec


def evaluate_predictions(
    pred_dir: str | Path, root: str | Path, split: str = "test", nomenclature: NomenclatureSpec | None = None,
) -> EvaluationResult:
    """Score ``PRED_{id}.tif`` files against the masks of a split, matching patches by id, with
    the nomenclature the files carry (or ``nomenclature`` for files without it: see
    :func:`~flairlc.evaluation.predictions.evaluate_prediction_folder`)."""
    records = [r for r in discover_patches(root, splits=(split,)) if r.mask_path is not None]
    if not records:
        raise FlairDataError(root, f"no labelled patches in the {split} split")
    masks = {r.id: r.mask_path for r in records}
    domains = {r.id: r.domain for r in records}
    return evaluate_prediction_folder(pred_dir, masks, domains, nomenclature=nomenclature, progress=True)


def evaluate_checkpoint(
    checkpoint: str | Path, root: str | Path, split: str = "test", batch_size: int = 4,
    num_workers: int = 0, accelerator: str = "auto", devices: str | int = "auto",
) -> EvaluationResult:
    """Run a trained model over a split and score it with the paper's metric.

    The input settings (modalities, Sentinel-2 window, cloud filter, monthly average, preprocessing
    profile…) are those the model was trained with, stored in the checkpoint; only the root and
    split come from the arguments. Under DDP (``devices`` > 1) every patch is scored exactly once.
    """
    from flairlc.training.checkpoint import load_task

    task = load_task(checkpoint)
    series = task.series_preprocessing
    dataset = FlairDataset(
        discover_patches(root, splits=(split,)),
        modalities=[*task.required_modalities, "mask"],
        nomenclature=task.hparams["nomenclature"],
        sat_patch_size=task.sat_patch_size,
        filter_clouds=series.filter_clouds,
        cloud_max_cover=series.cloud_max_cover,
        cloud_prob_threshold=series.cloud_prob_threshold,
        average_monthly=series.average_monthly,
        reference_date=series.reference_date,
        geo_enc_size=task.hparams["geo_enc_size"],
        profile=series.profile,
    )
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=collate_flair)
    trainer = L.Trainer(accelerator=accelerator, devices=devices, logger=False, enable_checkpointing=False)
    trainer.test(task, dataloaders=loader, verbose=False)
    result: EvaluationResult = task.test_result
    result.metadata.update({"checkpoint": str(checkpoint), "root": str(root), "split": split})
    return result

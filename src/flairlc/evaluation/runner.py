"""Scoring a trained checkpoint on a split, or a folder of predictions, against FLAIR masks."""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import DataLoader

from flairlc.data.collate import collate_flair
from flairlc.data.dataset import FlairDataset
from flairlc.data.errors import FlairDataError
from flairlc.data.layout import discover_patches
from flairlc.evaluation.confusion import ConfusionAccumulator, confusion_matrix_torch
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
    split come from the arguments. The model (:class:`~flairlc.inference.TrainedModel`, no
    Lightning) runs on one device (:func:`evaluation_device`); every patch is scored once.
    """
    from flairlc.inference import load_trained_model

    device = evaluation_device(accelerator, devices)
    model = load_trained_model(checkpoint, map_location=device)
    series = model.series_preprocessing
    dataset = FlairDataset(
        discover_patches(root, splits=(split,)),
        modalities=[*model.required_modalities, "mask"],
        nomenclature=model.nomenclature,
        sat_patch_size=model.sat_patch_size,
        filter_clouds=series.filter_clouds,
        cloud_max_cover=series.cloud_max_cover,
        cloud_prob_threshold=series.cloud_prob_threshold,
        average_monthly=series.average_monthly,
        reference_date=series.reference_date,
        geo_enc_size=model.geo_enc_size,
        profile=series.profile,
    )
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=collate_flair,
                        pin_memory=device.type == "cuda")
    accumulator = ConfusionAccumulator(model.num_classes, class_names=model.class_names, exclude=model.ignored_classes)
    with torch.inference_mode():
        for batch in loader:
            inputs = {k: v.to(device, non_blocking=True) for k, v in batch.items() if isinstance(v, torch.Tensor)}
            prediction = model.predict_classes(inputs)
            for index, truth, predicted in zip(batch["index"].tolist(), inputs["mask"], prediction):
                matrix = confusion_matrix_torch(truth, predicted, model.num_classes, ignore_index=None)
                accumulator.add(matrix.cpu().numpy(), domain=dataset.records[index].domain)
    result = accumulator.result(metadata={"model": model.architecture, "num_patches": len(dataset)})
    result.metadata.update({"checkpoint": str(checkpoint), "root": str(root), "split": split})
    return result


def evaluation_device(accelerator: str = "auto", devices: str | int = "auto") -> torch.device:
    """The one device ``evaluate --checkpoint`` runs on, from Lightning-style options.

    Args:
        accelerator: ``"auto"`` (a CUDA GPU when there is one, else Apple's MPS, else the CPU),
            ``"cpu"``, ``"gpu"`` / ``"cuda"`` or ``"mps"``.
        devices: ``"auto"`` or 1 (the first device), or one GPU index as ``"N,"`` or ``[N]``.

    Raises:
        ValueError: an unknown accelerator, more than one device, or a device this machine lacks.
    """
    kinds = {"cpu": "cpu", "gpu": "cuda", "cuda": "cuda", "mps": "mps"}
    if accelerator == "auto":
        kind = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    elif accelerator in kinds:
        kind = kinds[accelerator]
    else:
        raise ValueError(f"--accelerator {accelerator}: expected auto, cpu, gpu, cuda or mps")
    index = _device_index(devices)
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--accelerator {accelerator}: PyTorch sees no CUDA GPU on this machine (use --accelerator cpu)")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--accelerator {accelerator}: Apple's MPS is not available on this machine (use --accelerator cpu)")
    if kind == "cuda" and index is not None and index >= torch.cuda.device_count():
        raise ValueError(f"--devices {devices}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    return torch.device(kind, index) if kind == "cuda" and index is not None else torch.device(kind)


def _device_index(devices: str | int | list[int]) -> int | None:
    """The GPU index ``devices`` names (``"N,"``, ``[N]``), None for the default, or a ValueError."""
    if isinstance(devices, (list, tuple)):
        if len(devices) == 1:
            return int(devices[0])
    else:
        text = str(devices).strip()
        if text in ("auto", "1"):
            return None
        if text.endswith(",") and text[:-1].isdigit():
            return int(text[:-1])
    raise ValueError(f"--devices {devices}: evaluate runs on one device: give 1, or a GPU index as 'N,'")
